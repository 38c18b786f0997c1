# Node states a user can read: a started wait/dependency_check node between two checks is
# "deferred" (it was "queued"), and a held-back node says why (waiting_reason).

from django.db import migrations, models


def queued_waits_to_deferred(apps, schema_editor):
    """A queued node that has deferred before is a started node between two checks."""
    NodeRun = apps.get_model("operations", "NodeRun")
    NodeRun.objects.filter(status="queued", defer_count__gt=0).update(status="deferred")
    NodeRun.objects.filter(status="waiting").update(waiting_reason="concurrency_policy")


def deferred_to_queued(apps, schema_editor):
    NodeRun = apps.get_model("operations", "NodeRun")
    NodeRun.objects.filter(status="deferred").update(status="queued")


class Migration(migrations.Migration):

    dependencies = [
        ('operations', '0003_drop_indexes_led_by_composites'),
    ]

    operations = [
        migrations.AddField(
            model_name='noderun',
            name='waiting_reason',
            field=models.CharField(blank=True, choices=[('', 'Not held back'), ('concurrency_policy', "The flow's concurrency policy")], default='', max_length=32),
        ),
        migrations.AlterField(
            model_name='noderun',
            name='status',
            field=models.CharField(choices=[('pending', 'Pending'), ('waiting', 'Waiting'), ('queued', 'Queued'), ('running', 'Running'), ('deferred', 'Running (waiting for its next check)'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('upstream_failed', 'Upstream failed'), ('skipped', 'Skipped'), ('stopped', 'Stopped')], default='pending', max_length=16),
        ),
        migrations.RunPython(queued_waits_to_deferred, deferred_to_queued),
    ]
