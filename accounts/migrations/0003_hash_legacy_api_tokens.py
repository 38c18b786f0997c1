"""Carry DRF authtoken keys (plain text, never expiring) over as hashed, expiring ApiTokens.

rest_framework.authtoken is no longer installed; where its table exists, each key becomes
an ApiToken with every scope that expires after API_TOKEN_LIFETIME, and the table is
emptied so no plain-text key stays in the database.
"""

import hashlib

from django.conf import settings
from django.db import migrations
from django.utils import timezone

SCOPES = ["flows:read", "flows:write", "runs:read", "runs:write", "admin"]


def forwards(apps, schema_editor):
    connection = schema_editor.connection
    if "authtoken_token" not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("accounts", "ApiToken")
    quoted = schema_editor.quote_name("authtoken_token")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {schema_editor.quote_name('key')}, user_id FROM {quoted}")
        rows = cursor.fetchall()
    expires = timezone.now() + settings.API_TOKEN_LIFETIME
    for key, user_id in rows:
        ApiToken.objects.create(
            user_id=user_id,
            name="carried over from the old never-expiring token",
            key_hash=hashlib.sha256(key.encode()).hexdigest(),
            prefix=key[:6],
            scopes=SCOPES,
            expires_at=expires,
        )
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {quoted}")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_service_accounts_api_tokens_auditor")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
