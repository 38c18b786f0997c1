"""The beat scheduler sends many due entries without per-entry queries and reloads on edits."""

import json
import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from django_celery_beat import schedulers as dcb_schedulers
from django_celery_beat.models import CrontabSchedule, PeriodicTask, PeriodicTasks

from config.celery_app import app
from scheduling import beat

pytestmark = pytest.mark.django_db

ENTRIES = 30


@pytest.fixture
def crontab():
    return CrontabSchedule.objects.create(minute="*", timezone=ZoneInfo("UTC"))


@pytest.fixture
def due_entries(crontab):
    """Entries every minute whose last run was two minutes ago: all due now."""
    earlier = timezone.now() - timedelta(minutes=2)
    for i in range(ENTRIES):
        PeriodicTask(
            name=f"flow-schedule:{1000 + i}",
            task="scheduling.tasks.fire_schedule",
            crontab=crontab,
            kwargs=json.dumps({"schedule_id": 1000 + i}),
            last_run_at=earlier,
        ).save()


@pytest.fixture
def scheduler(monkeypatch):
    # Beat closes "old" connections between ticks; inside the test's transaction that
    # would close the connection under the test, so keep it open here.
    monkeypatch.setattr(dcb_schedulers, "close_old_connections", lambda: None)
    monkeypatch.setattr(beat, "close_old_connections", lambda: None)
    sched = beat.TributaryScheduler(app=app, lazy=False)
    sched.__dict__["producer"] = None  # nothing leaves: sends are recorded below
    sent, batches = [], []
    monkeypatch.setattr(sched, "apply_async", lambda entry, **kw: sent.append(entry.name))
    monkeypatch.setattr(sched, "send_fire_batch", lambda ids: batches.append(list(ids)))
    sched.sent, sched.batches = sent, batches
    return sched


def woken(sched) -> list[int]:
    return [pk for batch in sched.batches for pk in batch]


def flush(sched, count):
    """Tick until `count` schedules were woken up (each due entry is a tick answering 0)."""
    for _ in range(count * 3):
        if len(woken(sched)) >= count:
            break
        sched.tick()
    return woken(sched)


def test_sends_every_due_entry_in_a_constant_number_of_queries(
    due_entries, scheduler, django_assert_max_num_queries
):
    scheduler.tick()  # first tick: loads the entries and builds the heap

    with django_assert_max_num_queries(3):
        woke = flush(scheduler, ENTRIES)

    assert sorted(woke) == [1000 + i for i in range(ENTRIES)]


def test_schedules_due_at_once_are_woken_up_in_batches_of_fire_batch(
    due_entries, scheduler, monkeypatch
):
    monkeypatch.setattr(beat, "FIRE_BATCH", 8)
    scheduler.tick()

    flush(scheduler, ENTRIES)

    # 30 due schedules: three full messages, then the rest when nothing else is due
    assert [len(batch) for batch in scheduler.batches] == [8, 8, 8, 6]
    assert len(set(woken(scheduler))) == ENTRIES
    # Other entries (beat's housekeeping) are still sent one by one, as stock beat does.
    assert not any(name.startswith("flow-schedule:") for name in scheduler.sent)


def test_loading_entries_takes_one_query_for_all_schedules(
    due_entries, scheduler, django_assert_max_num_queries
):
    with django_assert_max_num_queries(4):
        entries = scheduler.all_as_schedule()

    assert sum(name.startswith("flow-schedule:") for name in entries) == ENTRIES


def test_sync_writes_last_run_at_in_one_update_without_forcing_a_reload(
    due_entries, scheduler, django_assert_max_num_queries
):
    scheduler.tick()
    flush(scheduler, ENTRIES)
    changed = PeriodicTasks.last_change()

    with django_assert_max_num_queries(1):
        scheduler.sync()

    assert scheduler._dirty == set()
    tasks = PeriodicTask.objects.filter(name__startswith="flow-schedule:")
    assert all(t.total_run_count == 1 for t in tasks)
    assert all(timezone.now() - t.last_run_at < timedelta(minutes=1) for t in tasks)
    assert PeriodicTasks.last_change() == changed


def test_an_edit_reaches_beat_within_a_second(crontab, scheduler, monkeypatch):
    clock = [scheduler._last_change_check + beat.CHANGE_CHECK_SECONDS]
    monkeypatch.setattr(beat.time, "monotonic", lambda: clock[0])
    scheduler.tick()
    assert "flow-schedule:77" not in scheduler.schedule

    task = PeriodicTask(
        name="flow-schedule:77", task="scheduling.tasks.fire_schedule", crontab=crontab
    )
    task.save()  # bumps PeriodicTasks, as schedule_sync does
    clock[0] += 0.5
    assert "flow-schedule:77" not in scheduler.schedule  # checked at most once a second
    clock[0] += beat.CHANGE_CHECK_SECONDS

    assert "flow-schedule:77" in scheduler.schedule
    assert scheduler.max_interval <= beat.MAX_LOOP_SECONDS


def test_a_due_answer_is_shared_only_by_enabled_entries_of_the_same_crontab_and_last_run(
    crontab,
):
    beat.TributaryEntry._due_memo.clear()
    now = timezone.now()
    earlier = now - timedelta(minutes=2)

    def entry(pk, last_run_at, *, enabled=True, cron=crontab):
        task = PeriodicTask(
            name=f"flow-schedule:{pk}",
            task="scheduling.tasks.fire_schedule",
            crontab=cron,
            kwargs=json.dumps({"schedule_id": pk}),
            last_run_at=last_run_at,
            enabled=enabled,
        )
        task.save()
        return beat.TributaryEntry(task, app=app)

    first, same = entry(1, earlier).is_due(), entry(2, earlier).is_due()
    assert first.is_due and same.is_due
    assert 0 <= same.next <= first.next <= 60  # seconds to the next minute, as time passes
    # A schedule that has just run is not due, though its crontab was due a moment ago
    assert not entry(3, now).is_due().is_due
    # A disabled one is not due either
    assert not entry(4, earlier, enabled=False).is_due().is_due
    # Another crontab (02:00 daily in the future) answers for itself
    nightly = CrontabSchedule.objects.create(
        minute="0", hour=str((now.hour + 2) % 24), timezone=ZoneInfo("UTC")
    )
    assert not entry(5, now - timedelta(minutes=1), cron=nightly).is_due().is_due


def test_beat_does_not_write_last_run_times_just_before_entries_fall_due(scheduler):
    from celery.beat import event_t

    scheduler._last_sync = time.monotonic() - 10 * scheduler.sync_every  # a sync is due
    entry = object()

    scheduler._heap = [event_t(time.time() + 0.5, 5, entry)]
    assert not scheduler.should_sync()  # it would hold back the wake-ups half a second away
    scheduler._heap = [event_t(time.time() + 30, 5, entry)]
    assert scheduler.should_sync()
    scheduler._heap = []
    assert scheduler.should_sync()
