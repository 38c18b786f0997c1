"""schedule_sync keeps exactly one beat entry per schedulable flow, idempotently."""

import json
from zoneinfo import ZoneInfo

import pytest
from django_celery_beat.models import CrontabSchedule, PeriodicTask, PeriodicTasks

from flows import services as flow_services
from scheduling import services
from scheduling.models import Schedule

pytestmark = pytest.mark.django_db


def save(flow, user, *, publish=False, **fields):
    """Save the schedule (the draft); with `publish`, publish the flow (and so the schedule)."""
    fields.setdefault("start_date", None)
    schedule = services.schedule_save(flow=flow, user=user, **fields)
    if publish:
        flow_services.flow_publish(flow=flow, user=user)
        flow.refresh_from_db()
        schedule.refresh_from_db()
    return schedule


def entry(schedule):
    return PeriodicTask.objects.filter(name=f"flow-schedule:{schedule.pk}").first()


def beat_state():
    """Everything beat reads, to compare before and after."""
    return (
        list(PeriodicTask.objects.order_by("pk").values()),
        list(CrontabSchedule.objects.order_by("pk").values_list("pk", flat=True)),
        PeriodicTasks.last_change(),
    )


def test_schedule_of_a_never_published_flow_has_no_beat_entry(flow, member_user):
    schedule = save(flow, member_user, cron="0 3 * * *")

    assert entry(schedule) is None
    assert schedule.active_since is None


def test_publishing_creates_the_entry_with_the_cron_and_zone(flow, member_user):
    schedule = save(flow, member_user, cron="15 3 * * 1,4", timezone="Europe/Berlin")

    flow_services.flow_publish(flow=flow, user=member_user)

    task = entry(schedule)
    assert task is not None and task.enabled
    assert task.task == "scheduling.tasks.fire_schedule"
    assert json.loads(task.kwargs) == {"schedule_id": schedule.pk}
    cron = task.crontab
    assert (cron.minute, cron.hour, cron.day_of_month, cron.month_of_year, cron.day_of_week) == (
        "15",
        "3",
        "*",
        "*",
        "1,4",
    )
    assert cron.timezone == ZoneInfo("Europe/Berlin")
    # Our code enforces the window, not beat.
    assert task.start_time is None and task.expires is None
    schedule.refresh_from_db()
    assert schedule.active_since is not None


def test_sync_twice_changes_nothing(published_flow, member_user):
    save(published_flow, member_user, cron="0 * * * *")
    before = beat_state()

    services.schedule_sync(flow=published_flow)
    services.schedule_sync(flow=published_flow)

    assert beat_state() == before


def test_editing_the_schedule_updates_the_same_entry_once_published(published_flow, member_user):
    schedule = save(published_flow, member_user, cron="0 * * * *", publish=True)
    task_id = entry(schedule).pk
    before = beat_state()

    save(published_flow, member_user, cron="*/10 * * * *", timezone="America/New_York")

    # The draft changed, beat did not: it fires what was published.
    assert beat_state() == before
    changed_before = PeriodicTasks.last_change()

    flow_services.flow_publish(flow=published_flow, user=member_user)

    task = entry(schedule)
    assert task.pk == task_id
    assert PeriodicTask.objects.filter(name__startswith="flow-schedule:").count() == 1
    assert (task.crontab.minute, task.crontab.timezone) == ("*/10", ZoneInfo("America/New_York"))
    assert PeriodicTasks.last_change() > changed_before


def test_schedules_with_the_same_calendar_share_a_crontab_row(make_flow, member_user):
    first = save(make_flow("a", publish=True), member_user, cron="0 5 * * *", publish=True)
    second = save(make_flow("b", publish=True), member_user, cron="0 5 * * *", publish=True)

    assert entry(first).crontab_id == entry(second).crontab_id


@pytest.mark.parametrize("action", ["unpublish", "freeze", "disable"])
def test_unpublish_freeze_and_disable_turn_the_entry_off(published_flow, member_user, action):
    schedule = save(published_flow, member_user, cron="0 * * * *", publish=True)

    if action == "unpublish":
        flow_services.flow_unpublish(flow=published_flow, user=member_user)
    elif action == "freeze":
        flow_services.flow_freeze(flow=published_flow, user=member_user)
    else:
        save(published_flow, member_user, cron="0 * * * *", enabled=False)
        assert entry(schedule).enabled  # disabling is an edit: it takes effect when published
        flow_services.flow_publish(flow=published_flow, user=member_user)

    task = entry(schedule)
    assert task is not None and not task.enabled
    schedule.refresh_from_db()
    assert schedule.active_since is None


def test_unfreeze_and_republish_turn_it_back_on(published_flow, member_user):
    schedule = save(published_flow, member_user, cron="0 * * * *", publish=True)
    flow_services.flow_freeze(flow=published_flow, user=member_user)

    flow_services.flow_unfreeze(flow=published_flow, user=member_user)
    assert entry(schedule).enabled

    flow_services.flow_unpublish(flow=published_flow, user=member_user)
    flow_services.flow_publish(flow=published_flow, user=member_user)
    assert entry(schedule).enabled
    assert PeriodicTask.objects.filter(name__startswith="flow-schedule:").count() == 1


def test_deleting_the_flow_removes_its_entry(published_flow, member_user):
    schedule = save(published_flow, member_user, cron="0 * * * *")

    services.schedule_delete_for_flow(flow=published_flow, user=member_user)
    flow_services.flow_delete(flow=published_flow, user=member_user)

    assert entry(schedule) is None
    assert not Schedule.objects.filter(pk=schedule.pk).exists()


def test_an_entry_left_by_a_deleted_flow_is_removed_harmlessly(published_flow, member_user):
    schedule = save(published_flow, member_user, cron="0 * * * *")
    other = save(
        flow_services.flow_create(tenant=published_flow.tenant, user=member_user, name="kept"),
        member_user,
        cron="0 1 * * *",
    )
    flow_services.flow_delete(flow=published_flow, user=member_user)  # cascades, entry stays

    # Beat fires the orphan once: nothing runs and the entry goes away.
    assert services.schedule_fire(schedule_id=schedule.pk) is None
    assert entry(schedule) is None
    assert Schedule.objects.filter(pk=other.pk).exists()


def test_schedule_delete_for_flow_after_the_cascade_prunes_orphans(published_flow, member_user):
    schedule = save(published_flow, member_user, cron="0 * * * *")
    flow_services.flow_delete(flow=published_flow, user=member_user)

    services.schedule_delete_for_flow(flow=published_flow)

    assert entry(schedule) is None


def test_the_migration_keeps_existing_published_flows_firing_their_saved_schedule(
    published_flow, member_user
):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("scheduling.migrations.0003_schedule_published_copy")
    schedule = save(published_flow, member_user, cron="0 3 * * *", publish=True)
    never = save(
        flow_services.flow_create(tenant=published_flow.tenant, user=member_user, name="draft"),
        member_user,
        cron="0 4 * * *",
    )
    # Before the copy existed, the saved schedule (edited after publishing) fired.
    Schedule.objects.filter(pk=schedule.pk).update(
        cron="0 5 * * *", published=None, published_version=None
    )

    migration.copy_saved_schedules(apps, None)

    schedule.refresh_from_db()
    never.refresh_from_db()
    assert schedule.published["cron"] == "0 5 * * *" and not schedule.draft_differs
    assert schedule.published_version_id == published_flow.published_version_id
    assert never.published is None
    services.schedule_sync(flow=published_flow)
    assert entry(schedule).crontab.hour == "5"


def test_the_published_schedule_is_the_published_versions_own(published_flow, member_user):
    # (what a rollback to an older version would rely on: the fired schedule follows the
    # version that is published, not the draft)
    save(published_flow, member_user, cron="0 3 * * *", publish=True)
    older = published_flow.published_version
    schedule = save(published_flow, member_user, cron="0 4 * * *", publish=True)
    assert schedule.published["cron"] == "0 4 * * *"

    published_flow.published_version = older
    published_flow.save()
    services.schedule_sync(flow=published_flow)

    schedule.refresh_from_db()
    assert schedule.published["cron"] == "0 3 * * *" and schedule.cron == "0 4 * * *"
    assert schedule.draft_differs
    assert entry(schedule).crontab.hour == "3"
