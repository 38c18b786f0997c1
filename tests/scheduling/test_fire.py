"""Firing: the latest due fire time, once; never outside the window, frozen, disabled or too late."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from flows import services as flow_services
from operations.models import FlowRun
from scheduling import selectors, services
from scheduling.models import Schedule, ScheduleFiring
from scheduling.tasks import fire_schedule
from tests.scheduling.helpers import publish_at

pytestmark = pytest.mark.django_db

T0 = datetime(2024, 3, 1, tzinfo=UTC)  # the schedule became active then


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def schedule_on(flow, user, *, cron="0 10 * * *", zone="UTC", **fields):
    """Save the schedule and, on a published flow, publish it (active since T0)."""
    fields.setdefault("start_date", T0.date())
    schedule = services.schedule_save(
        flow=flow, user=user, cron=cron, timezone=zone, now=T0, **fields
    )
    if flow.published_version_id is not None:
        schedule = publish_at(flow, user, T0)
    return schedule


def backdate(schedule, flow):
    """Pretend the schedule was saved and the flow first published at T0."""
    schedule.created_at = T0
    schedule.save_without_historical_record(update_fields=["created_at"])
    flow.versions.update(created_at=T0)


def scheduled_runs(flow):
    return list(FlowRun.objects.filter(flow=flow, mode="scheduled").order_by("fire_time"))


def test_fires_the_due_fire_time_once(published_flow, member_user):
    schedule = schedule_on(published_flow, member_user)
    now = utc(2024, 3, 5, 10, 0, 1)

    run = services.schedule_fire(schedule_id=schedule.pk, now=now)
    again = services.schedule_fire(schedule_id=schedule.pk, now=now + timedelta(seconds=20))

    assert run is not None and again is None
    runs = scheduled_runs(published_flow)
    assert [r.pk for r in runs] == [run.pk]
    assert runs[0].fire_time == runs[0].business_time == utc(2024, 3, 5, 10)
    assert runs[0].version_id == published_flow.published_version_id
    firing = ScheduleFiring.objects.get(flow=published_flow)
    assert (firing.run_id, firing.fire_time, firing.source) == (run.pk, utc(2024, 3, 5, 10), "beat")


def test_the_task_is_delivered_twice_and_fires_once(published_flow, member_user):
    schedule = schedule_on(published_flow, member_user, cron="* * * * *")
    schedule.active_since = timezone.now() - timedelta(minutes=2)
    schedule.save_without_historical_record(update_fields=["active_since"])

    fire_schedule(schedule.pk)
    fire_schedule(schedule_id=schedule.pk)

    runs = scheduled_runs(published_flow)
    assert len(runs) == 1
    firing = ScheduleFiring.objects.get(flow=published_flow)
    # Lateness is measured from the fire time to the commit that made the run live, so it
    # is at least the creation stamp's delay (stamped before that commit) ...
    created = (runs[0].created_at - runs[0].fire_time).total_seconds()
    assert created < firing.lateness
    # ... and no later than the moment the firing task returned.
    assert firing.lateness <= (timezone.now() - runs[0].fire_time).total_seconds()
    # (beat may wake us up to EARLY_TOLERANCE before the fire time)
    assert -services.EARLY_TOLERANCE.total_seconds() <= firing.lateness < 65


def test_a_beat_a_moment_early_fires_the_coming_time(published_flow, member_user):
    schedule = schedule_on(published_flow, member_user)

    run = services.schedule_fire(schedule_id=schedule.pk, now=utc(2024, 3, 5, 9, 59, 58))

    assert run is not None and run.fire_time == utc(2024, 3, 5, 10)


@pytest.mark.parametrize(
    ("late", "fires"),
    [(timedelta(minutes=4, seconds=59), True), (timedelta(minutes=5, seconds=1), False)],
)
def test_a_fire_time_older_than_the_grace_window_is_missed(
    published_flow, member_user, late, fires
):
    schedule = schedule_on(published_flow, member_user)
    backdate(schedule, published_flow)

    run = services.schedule_fire(schedule_id=schedule.pk, now=utc(2024, 3, 5, 10) + late)

    assert (run is not None) is fires
    missed = selectors.missed_fire_times(
        flow=published_flow, since=utc(2024, 3, 5), until=utc(2024, 3, 5, 23), now=utc(2024, 3, 6)
    )
    assert missed == ([] if fires else [utc(2024, 3, 5, 10)])


@pytest.mark.parametrize(
    "window",
    [
        {"start_date": datetime(2024, 3, 6).date()},
        {"start_date": datetime(2024, 2, 1).date(), "end_date": datetime(2024, 3, 4).date()},
    ],
)
def test_nothing_fires_outside_the_start_and_end_dates(published_flow, member_user, window):
    schedule = schedule_on(published_flow, member_user, **window)

    assert services.schedule_fire(schedule_id=schedule.pk, now=utc(2024, 3, 5, 10, 0, 1)) is None
    assert scheduled_runs(published_flow) == []


def test_end_date_is_inclusive_in_the_schedules_zone(published_flow, member_user):
    # 23:30 in Berlin on the end date is 22:30 UTC that day.
    schedule = schedule_on(
        published_flow,
        member_user,
        cron="30 23 * * *",
        zone="Europe/Berlin",
        end_date=datetime(2024, 3, 5).date(),
    )

    assert services.schedule_fire(schedule_id=schedule.pk, now=utc(2024, 3, 5, 22, 30, 1))
    assert services.schedule_fire(schedule_id=schedule.pk, now=utc(2024, 3, 6, 22, 30, 1)) is None


@pytest.mark.parametrize("state", ["frozen", "unpublished", "disabled"])
def test_frozen_unpublished_or_disabled_fires_nothing(published_flow, member_user, state):
    schedule = schedule_on(published_flow, member_user)
    if state == "frozen":
        flow_services.flow_freeze(flow=published_flow, user=member_user)
    elif state == "unpublished":
        flow_services.flow_unpublish(flow=published_flow, user=member_user)
    else:
        schedule_on(published_flow, member_user, enabled=False)

    assert services.schedule_fire(schedule_id=schedule.pk, now=utc(2024, 3, 5, 10, 0, 1)) is None
    assert services.schedule_sweep(now=utc(2024, 3, 5, 10, 1)) == 0
    assert scheduled_runs(published_flow) == []


def test_a_never_published_flow_never_fires(flow, member_user):
    schedule = schedule_on(flow, member_user)

    assert services.schedule_fire(schedule_id=schedule.pk, now=utc(2024, 3, 5, 10, 0, 1)) is None
    assert scheduled_runs(flow) == []


def test_times_before_the_schedule_became_active_are_not_fired_late(published_flow, member_user):
    # Published at 10:02: the 10:00 fire time is not fired 2 minutes late.
    services.schedule_save(
        flow=published_flow,
        user=member_user,
        cron="0 10 * * *",
        start_date=T0.date(),
        now=utc(2024, 3, 5, 10, 2),
    )
    schedule = publish_at(published_flow, member_user, utc(2024, 3, 5, 10, 2))

    assert services.schedule_fire(schedule_id=schedule.pk, now=utc(2024, 3, 5, 10, 2, 30)) is None
    assert services.schedule_sweep(now=utc(2024, 3, 5, 10, 3)) == 0


def test_sweep_fires_a_dst_shifted_time_beat_skipped_once(published_flow, member_user):
    # 02:30 does not exist in Berlin on 2024-03-31: it fires at 03:00 CEST (01:00 UTC).
    schedule_on(published_flow, member_user, cron="30 2 * * *", zone="Europe/Berlin")

    assert services.schedule_sweep(now=utc(2024, 3, 31, 1, 0, 5)) == 0  # beat's turn first
    assert services.schedule_sweep(now=utc(2024, 3, 31, 1, 0, 30)) == 1
    assert services.schedule_sweep(now=utc(2024, 3, 31, 1, 1)) == 0

    runs = scheduled_runs(published_flow)
    assert [r.fire_time for r in runs] == [utc(2024, 3, 31, 1)]
    assert ScheduleFiring.objects.get(flow=published_flow).source == "sweep"


def test_sweep_catches_up_a_backlog_in_batches_each_fire_time_once(
    make_flow, member_user, monkeypatch
):
    # Beat was down over 10:00 and 10:01 for five every-minute schedules: ten fire times.
    monkeypatch.setattr(services, "SWEEP_BATCH", 3)
    flows = [make_flow(f"backlog-{i}", publish=True) for i in range(5)]
    for flow in flows:
        schedule_on(flow, member_user, cron="* * * * *")
    start = utc(2024, 3, 5, 9, 59, 30)
    Schedule.objects.update(active_since=start)

    assert services.schedule_sweep(now=utc(2024, 3, 5, 10, 1, 30)) == 10
    assert services.schedule_sweep(now=utc(2024, 3, 5, 10, 1, 40)) == 0

    for flow in flows:
        assert [r.fire_time for r in scheduled_runs(flow)] == [
            utc(2024, 3, 5, 10),
            utc(2024, 3, 5, 10, 1),
        ]
    assert set(ScheduleFiring.objects.values_list("source", flat=True)) == {"sweep"}


def test_beat_in_the_repeated_hour_does_not_fire_a_second_time(published_flow, member_user):
    # 01:30 happens twice in New York on 2024-11-03; only the first (05:30 UTC) fires.
    schedule = schedule_on(published_flow, member_user, cron="30 1 * * *", zone="America/New_York")

    first = services.schedule_fire(schedule_id=schedule.pk, now=utc(2024, 11, 3, 5, 30, 1))
    second = services.schedule_fire(schedule_id=schedule.pk, now=utc(2024, 11, 3, 6, 30, 1))

    assert first is not None and second is None
    assert [r.fire_time for r in scheduled_runs(published_flow)] == [utc(2024, 11, 3, 5, 30)]


def test_a_schedule_edit_fires_only_once_the_flow_is_published(published_flow, member_user):
    schedule = schedule_on(published_flow, member_user, cron="0 10 * * *")

    services.schedule_save(
        flow=published_flow,
        user=member_user,
        cron="0 11 * * *",
        start_date=T0.date(),
        now=utc(2024, 3, 5, 9, 30),
    )

    # The draft is saved; the published schedule fires, the draft's time does not.
    assert services.schedule_fire(schedule_id=schedule.pk, now=utc(2024, 3, 5, 10, 0, 1))
    assert services.schedule_fire(schedule_id=schedule.pk, now=utc(2024, 3, 5, 11, 0, 1)) is None
    assert services.schedule_sweep(now=utc(2024, 3, 5, 11, 1)) == 0

    publish_at(published_flow, member_user, utc(2024, 3, 5, 11, 30))

    assert services.schedule_fire(schedule_id=schedule.pk, now=utc(2024, 3, 6, 10, 0, 1)) is None
    assert services.schedule_fire(schedule_id=schedule.pk, now=utc(2024, 3, 6, 11, 0, 1))
    assert [r.fire_time for r in scheduled_runs(published_flow)] == [
        utc(2024, 3, 5, 10),
        utc(2024, 3, 6, 11),
    ]


def test_a_schedule_edit_leaves_the_next_fire_time_until_published(published_flow, member_user):
    schedule_on(published_flow, member_user, cron="0 10 * * *")
    now = utc(2024, 3, 5, 9)

    schedule = services.schedule_save(
        flow=published_flow, user=member_user, cron="30 8 * * *", timezone="Asia/Shanghai"
    )

    assert schedule.draft_differs
    assert selectors.schedule_state(schedule=schedule, flow=published_flow, now=now) == (
        "active",
        utc(2024, 3, 5, 10),
    )
    published_flow.refresh_from_db()
    assert published_flow.has_unpublished_changes

    schedule = publish_at(published_flow, member_user)

    assert not schedule.draft_differs
    state, next_fire = selectors.schedule_state(schedule=schedule, flow=published_flow, now=now)
    assert (state, next_fire) == ("active", utc(2024, 3, 6, 0, 30))
    assert str(next_fire.tzinfo) == "Asia/Shanghai"


def test_a_schedule_saved_after_publishing_fires_once_published(published_flow, member_user):
    schedule = services.schedule_save(
        flow=published_flow, user=member_user, cron="0 10 * * *", start_date=T0.date(), now=T0
    )

    assert selectors.schedule_state(schedule=schedule, flow=published_flow)[0] == "not_published"
    assert services.schedule_fire(schedule_id=schedule.pk, now=utc(2024, 3, 5, 10, 0, 1)) is None

    publish_at(published_flow, member_user, T0)

    assert services.schedule_fire(schedule_id=schedule.pk, now=utc(2024, 3, 5, 10, 0, 1))


# --------------------------------------------------------------------------- missed and ranges


def test_missed_fire_times_while_frozen_are_listed_not_replayed(api, published_flow, member_user):
    schedule = schedule_on(published_flow, member_user, cron="0 * * * *")
    backdate(schedule, published_flow)
    services.schedule_fire(schedule_id=schedule.pk, now=utc(2024, 3, 5, 10, 0, 1))
    flow_services.flow_freeze(flow=published_flow, user=member_user)
    assert services.schedule_fire(schedule_id=schedule.pk, now=utc(2024, 3, 5, 11, 0, 1)) is None

    res = api(member_user).get(
        f"/api/v1/flows/{published_flow.pk}/schedule/missed/",
        {"since": "2024-03-05T10:00:00Z", "until": "2024-03-05T12:00:00Z"},
    )

    assert res.status_code == 200, res.json()
    assert res.json() == {
        "fire_times": ["2024-03-05T11:00:00+00:00", "2024-03-05T12:00:00+00:00"],
        "count": 2,
    }
    assert len(scheduled_runs(published_flow)) == 1


def test_fire_times_in_range_for_a_backfill(published_flow, member_user):
    schedule_on(
        published_flow,
        member_user,
        cron="0 0 * * 1,4",
        start_date=datetime(2023, 8, 3).date(),
        end_date=datetime(2023, 8, 31).date(),
    )

    times = selectors.fire_times_in_range(
        flow=published_flow, start=utc(2023, 8, 7), end=utc(2023, 9, 30)
    )

    assert [t.day for t in times] == [7, 10, 14, 17, 21, 24, 28, 31]


def test_fire_times_in_range_refuses_a_flow_without_schedule(flow):
    with pytest.raises(ValidationError) as exc:
        selectors.fire_times_in_range(flow=flow, start=utc(2024, 1, 1), end=utc(2024, 1, 2))
    assert "give the flow a schedule first" in exc.value.message_dict["start"][0]


def test_fire_times_in_range_has_one_limit_with_one_message(published_flow, member_user):
    schedule_on(published_flow, member_user, cron="* * * * *")
    start = T0 + timedelta(days=1)
    # The limit is the engine's too: a time-range run through the API meets the same one.
    fits = selectors.fire_times_in_range(
        flow=published_flow,
        start=start,
        end=start + timedelta(minutes=selectors.MAX_RANGE_RUNS - 1),
    )
    assert len(fits) == selectors.MAX_RANGE_RUNS
    with pytest.raises(ValidationError) as exc:
        selectors.fire_times_in_range(
            flow=published_flow,
            start=start,
            end=start + timedelta(minutes=selectors.MAX_RANGE_RUNS),
        )
    assert exc.value.message_dict == {
        "end": [f"more than {selectors.MAX_RANGE_RUNS} fire times fall in this range; shorten it"]
    }


# --------------------------------------------------------------------------- concurrency


@pytest.mark.django_db(transaction=True)
def test_concurrent_fires_of_one_fire_time_create_one_run(make_flow, member_user):
    flow = make_flow("concurrent", publish=True)
    schedule = schedule_on(flow, member_user)
    now = utc(2024, 3, 5, 10, 0, 1)
    barrier = threading.Barrier(4)
    results, errors = [], []

    def fire():
        try:
            barrier.wait(timeout=10)
            results.append(services.schedule_fire(schedule_id=schedule.pk, now=now))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=fire) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert errors == []
    assert sum(r is not None for r in results) == 1
    assert len(scheduled_runs(flow)) == 1
    assert ScheduleFiring.objects.filter(flow=flow).count() == 1


def test_a_new_worker_process_parses_the_plans_of_firing_schedules_before_its_first_task(
    make_flow, member_user, django_assert_num_queries
):
    from operations import plan

    firing = [make_flow(f"warm-{i}", publish=True) for i in range(3)]
    for flow in firing:
        schedule_on(flow, member_user, cron="* * * * *")
    paused = make_flow("paused", publish=True)
    schedule_on(paused, member_user, cron="* * * * *", enabled=False)
    plan.clear_cache()

    assert services.plans_warm() == 3

    # The engine finds them parsed: no snapshot is loaded when their minute comes
    versions = [flow.published_version for flow in firing]
    with django_assert_num_queries(0):
        assert set(plan.plans_for_versions(versions)) == {v.pk for v in versions}
    # The disabled schedule's flow was left alone: its snapshot is loaded when needed
    left_alone = paused.published_version
    with django_assert_num_queries(1):
        plan.plans_for_versions([left_alone])
