"""A sequence that counts requests for an admission of parked nodes (PostgreSQL only).

A worker that freed a slot while another admission runs does not wait for it: it bumps the
sequence, and the running admission looks again when it ends (slots.admit). Sequences are
outside transactions, so the bump is seen at once. SQLite's writers are serial already.
"""

from django.db import migrations

SEQUENCE = "operations_admission_wanted"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE}")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP SEQUENCE IF EXISTS {SEQUENCE}")


class Migration(migrations.Migration):
    dependencies = [("operations", "0011_merge_integr_control_fair")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
