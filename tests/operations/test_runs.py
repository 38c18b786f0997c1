"""Creating runs: concurrency policies, scheduled runs exactly once, time ranges."""

from __future__ import annotations

import datetime as dt
from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError

from flows.services import flow_freeze, flow_publish, flow_unpublish
from operations.models import FlowRun, NodeRun
from operations.services import lifecycle, run_create_scheduled, run_start
from tests.factories import ScheduleFactory, build_flow, chain_flow
from tests.operations.helpers import latest

pytestmark = pytest.mark.django_db


def statuses(run) -> dict:
    return {name: nr.status for name, nr in latest(run).items()}


def node_id(run, name) -> int:
    return NodeRun.objects.get(run=run, node_name=name, is_latest=True).pk


# --------------------------------------------------------------------------- concurrency


def test_skip_records_a_skipped_run_naming_the_active_one(tenant, admin_user, engine):
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=2, concurrency_policy="skip")
    first = engine.call(run_start, flow=flow, mode="try", user=admin_user)

    second = engine.call(run_start, flow=flow, mode="try", user=admin_user)

    assert second.status == "skipped" and second.finished_at
    assert f"run {first.pk}" in second.skip_reason
    assert set(statuses(second).values()) == {"skipped"}
    engine.drain()
    first.refresh_from_db()
    assert first.status == "succeeded"
    # Once nothing is active, a trigger runs again.
    third = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    assert third.status == "queued"


def test_ignore_runs_the_new_trigger_independently(tenant, admin_user, engine):
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=2, concurrency_policy="ignore")
    first = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    second = engine.call(run_start, flow=flow, mode="try", user=admin_user)

    assert second.previous_run is None
    assert statuses(second) == {"n1": "queued", "n2": "pending"}
    engine.drain()
    for run in (first, second):
        run.refresh_from_db()
        assert run.status == "succeeded"


def test_parallel_same_node_waits_for_the_same_node_of_the_previous_run(
    tenant, admin_user, engine, api
):
    flow, _ = chain_flow(
        tenant=tenant, owner=admin_user, length=2, concurrency_policy="parallel_same_node"
    )
    first = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    claim = lifecycle.node_claim(node_id(first, "n1"))  # n1 of the first run is running

    second = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    assert second.previous_run_id == first.pk
    assert second.status == "waiting"
    assert statuses(second) == {"n1": "waiting", "n2": "pending"}
    # The waiting node says why, in the API too.
    shown = api(admin_user, tenant).get(f"/api/v1/runs/{second.pk}/").json()["node_runs"]
    reasons = {nr["node_name"]: nr["waiting_reason"] for nr in shown}
    assert reasons == {"n1": "concurrency_policy", "n2": None}

    # When n1 of the first run finishes, n1 of the second starts (no polling).
    engine.call(lifecycle.node_finish, claim, lifecycle.Success())
    assert statuses(second)["n1"] == "waiting"  # until the wake-up task runs
    assert list(engine.run_tasks) == [("run_evaluate", second.pk)]
    engine.step()
    assert statuses(second)["n1"] == "queued"
    assert latest(second)["n1"].waiting_reason == ""  # no longer held
    # n2 of the second run is gated by n2 of the first, which is queued now.
    engine.call(lifecycle.node_execute, node_id(second, "n1"))
    assert statuses(second)["n2"] == "waiting"
    engine.drain()
    for run in (first, second):
        run.refresh_from_db()
        assert run.status == "succeeded"
    n1_first = latest(first)["n1"]
    n1_second = latest(second)["n1"]
    assert n1_second.started_at >= n1_first.finished_at
    assert latest(second)["n2"].started_at >= latest(first)["n2"].finished_at


def test_parallel_downstream_waits_for_the_node_and_its_downstream_in_the_previous_run(
    tenant, admin_user, engine
):
    flow, _ = chain_flow(
        tenant=tenant, owner=admin_user, length=3, concurrency_policy="parallel_downstream"
    )
    first = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    engine.step()  # n1 of the first run done; n2 queued
    second = engine.call(run_start, flow=flow, mode="try", user=admin_user)

    # n1 of the first run has finished, but its downstream n2, n3 have not.
    assert statuses(second)["n1"] == "waiting"
    engine.call(lifecycle.node_execute, node_id(first, "n2"))
    while engine.run_tasks:
        engine.step()
    assert statuses(second)["n1"] == "waiting"
    engine.call(lifecycle.node_execute, node_id(first, "n3"))
    while engine.run_tasks:
        engine.step()
    assert statuses(second)["n1"] == "queued"
    assert latest(second)["n1"].waiting_reason == ""  # no longer held
    engine.drain()
    second.refresh_from_db()
    assert second.status == "succeeded"
    assert latest(second)["n1"].started_at >= latest(first)["n3"].finished_at


def test_the_previous_run_is_the_latest_unfinished_one(tenant, admin_user, engine):
    flow, _ = chain_flow(
        tenant=tenant, owner=admin_user, length=1, concurrency_policy="parallel_same_node"
    )
    first = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    second = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    third = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    assert (second.previous_run_id, third.previous_run_id) == (first.pk, second.pk)
    engine.drain()
    finished = list(FlowRun.objects.order_by("id").values_list("status", flat=True))
    assert finished == ["succeeded"] * 3
    starts = [latest(r)["n1"].started_at for r in (first, second, third)]
    assert starts == sorted(starts)


# --------------------------------------------------------------------------- scheduled runs


@pytest.fixture
def published_flow(tenant, admin_user):
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=2, concurrency_policy="ignore")
    version = flow_publish(flow=flow, user=admin_user)
    flow.refresh_from_db()
    return flow, version


def test_scheduled_run_uses_the_latest_published_version_once_per_fire_time(published_flow, engine):
    flow, version = published_flow
    at = datetime(2024, 3, 1, 2, 0, tzinfo=UTC)

    run = engine.call(run_create_scheduled, flow_id=flow.pk, fire_time=at)
    again = engine.call(run_create_scheduled, flow_id=flow.pk, fire_time=at)

    assert again is None
    assert run.version_id == version.pk and run.snapshot is None
    assert (run.mode, run.trigger, run.business_time, run.fire_time) == (
        "scheduled",
        "schedule",
        at,
        at,
    )
    engine.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert FlowRun.objects.filter(flow=flow, fire_time=at).count() == 1


def test_scheduled_runs_ignore_unpublished_edits(published_flow, admin_user, engine):
    from flows.models import TaskNode

    flow, version = published_flow
    TaskNode.objects.create(tenant=flow.tenant, flow=flow, name="draft-only", type="noop")
    run = engine.call(
        run_create_scheduled, flow_id=flow.pk, fire_time=datetime(2024, 3, 1, tzinfo=UTC)
    )
    assert set(latest(run)) == {"n1", "n2"}


def test_unpublished_or_frozen_flows_fire_nothing(published_flow, admin_user):
    flow, _ = published_flow
    flow_freeze(flow=flow, user=admin_user)
    assert run_create_scheduled(flow_id=flow.pk, fire_time=datetime(2024, 3, 1, tzinfo=UTC)) is None
    flow.refresh_from_db()
    flow_unpublish(flow=flow, user=admin_user)
    assert run_create_scheduled(flow_id=flow.pk, fire_time=datetime(2024, 3, 2, tzinfo=UTC)) is None
    draft, _ = chain_flow(tenant=flow.tenant, owner=admin_user, length=1)
    assert (
        run_create_scheduled(flow_id=draft.pk, fire_time=datetime(2024, 3, 2, tzinfo=UTC)) is None
    )
    assert not FlowRun.objects.exists()


# --------------------------------------------------------------------------- time ranges


@pytest.fixture
def daily_flow(tenant, admin_user):
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=2, concurrency_policy="skip")
    ScheduleFactory(flow=flow, cron="0 0 * * *", timezone="UTC", start_date=dt.date(2024, 1, 1))
    return flow


def test_time_range_creates_one_run_per_fire_time_serially(daily_flow, admin_user, engine):
    # n1 renders the run's bizdate (the day before its business time).
    n1 = daily_flow.nodes.get(name="n1")
    n1.type, n1.config = "test_script", {"day": "${bizdate}"}
    n1.save()
    runs = engine.call(
        run_start,
        flow=daily_flow,
        mode="time_range",
        user=admin_user,
        start=datetime(2024, 1, 10, tzinfo=UTC),
        end=datetime(2024, 1, 12, 12, tzinfo=UTC),
    )
    assert [r.business_time.day for r in runs] == [10, 11, 12]
    assert [r.status for r in runs] == ["queued", "queued", "queued"]
    assert [r.activated_at is not None for r in runs] == [True, False, False]
    assert {r.trigger for r in runs} == {"backfill"}

    engine.drain()
    runs = list(FlowRun.objects.filter(batch=runs[0].batch).order_by("batch_index"))
    assert [r.status for r in runs] == ["succeeded"] * 3  # skip does not apply within a range
    # Serial: each run started after the previous one finished.
    assert runs[0].finished_at <= runs[1].started_at and runs[1].finished_at <= runs[2].started_at
    bizdates = [latest(r)["n1"].rendered_config for r in runs]
    assert bizdates == [{"day": "2024-01-09"}, {"day": "2024-01-10"}, {"day": "2024-01-11"}]


def test_time_range_newest_first_with_parallelism(daily_flow, admin_user, engine):
    runs = engine.call(
        run_start,
        flow=daily_flow,
        mode="time_range",
        user=admin_user,
        start=datetime(2024, 1, 1, tzinfo=UTC),
        end=datetime(2024, 1, 5, tzinfo=UTC),
        order="desc",
        parallelism=2,
    )
    assert [r.business_time.day for r in runs] == [5, 4, 3, 2, 1]
    assert [r.activated_at is not None for r in runs] == [True, True, False, False, False]
    engine.drain()
    assert set(FlowRun.objects.values_list("status", flat=True)) == {"succeeded"}


def test_a_range_with_too_many_fire_times_is_refused(daily_flow, admin_user):
    with pytest.raises(ValidationError) as exc:
        run_start(
            flow=daily_flow,
            mode="time_range",
            user=admin_user,
            start=datetime(2024, 1, 1, tzinfo=UTC),
            end=datetime(2026, 1, 1, tzinfo=UTC),
        )
    assert "500" in exc.value.message_dict["end"][0]


def test_a_range_without_fire_times_is_refused(daily_flow, admin_user):
    with pytest.raises(ValidationError) as exc:
        run_start(
            flow=daily_flow,
            mode="time_range",
            user=admin_user,
            start=datetime(2024, 1, 1, 1, tzinfo=UTC),
            end=datetime(2024, 1, 1, 2, tzinfo=UTC),
        )
    assert "start" in exc.value.message_dict


def test_backfill_runs_honour_the_policy_towards_other_runs(daily_flow, admin_user, engine):
    other = engine.call(run_start, flow=daily_flow, mode="try", user=admin_user)
    runs = engine.call(
        run_start,
        flow=daily_flow,
        mode="time_range",
        user=admin_user,
        start=datetime(2024, 1, 1, tzinfo=UTC),
        end=datetime(2024, 1, 1, tzinfo=UTC),
    )
    assert runs[0].status == "skipped" and f"run {other.pk}" in runs[0].skip_reason


def test_business_time_of_a_point_in_time_run(tenant, admin_user, engine):
    flow, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[{"name": "a", "type": "test_script", "config": {"d": "${bizdate}"}}],
    )
    at = datetime(2024, 1, 15, tzinfo=UTC)
    run = engine.call(run_start, flow=flow, mode="point_in_time", user=admin_user, business_time=at)
    engine.drain()
    assert latest(run)["a"].rendered_config == {"d": "2024-01-14"}
