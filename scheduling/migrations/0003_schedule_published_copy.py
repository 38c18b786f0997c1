"""The schedule that fires becomes a published copy (Schedule.published).

Until now the saved schedule fired as soon as it was saved. So that every flow keeps
firing exactly as it does today, the copy of each schedule whose flow has a published
version is the schedule as it is saved now (not as that version's snapshot holds it):
the next publish replaces it with the version's schedule.
"""

import django.db.models.deletion
from django.db import migrations, models


def _as_snapshot(schedule) -> dict:
    # Schedule.as_snapshot(), which historical models do not have.
    return {
        "enabled": schedule.enabled,
        "kind": schedule.kind,
        "cron": schedule.cron,
        "interval": schedule.interval,
        "time": schedule.time.strftime("%H:%M") if schedule.time else None,
        "days": list(schedule.days or []),
        "start_date": schedule.start_date.isoformat() if schedule.start_date else None,
        "end_date": schedule.end_date.isoformat() if schedule.end_date else None,
        "timezone": schedule.timezone,
    }


def copy_saved_schedules(apps, schema_editor):
    Schedule = apps.get_model("scheduling", "Schedule")
    for schedule in Schedule.objects.select_related("flow").filter(
        flow__published_version__isnull=False
    ):
        schedule.published = _as_snapshot(schedule)
        schedule.published_version_id = schedule.flow.published_version_id
        schedule.save(update_fields=["published", "published_version"])


class Migration(migrations.Migration):
    dependencies = [
        ("flows", "0009_merge_input_integr_control_fair"),
        ("scheduling", "0002_drop_indexes_led_by_composites"),
    ]

    operations = [
        migrations.AddField(
            model_name="schedule",
            name="published",
            field=models.JSONField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="schedule",
            name="published_version",
            field=models.ForeignKey(
                blank=True,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="flows.flowversion",
            ),
        ),
        migrations.RunPython(copy_saved_schedules, migrations.RunPython.noop),
    ]
