"""Scheduled runs of many flows at once (a busy minute): same runs as one by one, fewer queries."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from config.db import insert_rows
from flows import services as flow_services
from operations import dispatch, tasks
from operations.models import FlowRun, NodeRun, RunEvent
from operations.services import run_start, runs_create_scheduled
from tests.factories import build_flow

pytestmark = pytest.mark.django_db

FIRE = datetime(2024, 3, 5, 10, tzinfo=UTC)


def published(tenant, owner, name, **fields):
    """a -> b, and c (a second root with a higher priority); published."""
    flow, _ = build_flow(
        tenant=tenant,
        owner=owner,
        name=name,
        nodes=["a", "b", {"name": "c", "priority": 5}],
        edges=[("a", "b")],
        **fields,
    )
    flow_services.flow_publish(flow=flow, user=owner)
    flow.refresh_from_db()
    return flow


def shape(run: FlowRun) -> dict:
    """What a user sees of a run that just started."""
    run.refresh_from_db()
    nodes = NodeRun.objects.filter(run=run).order_by("node_name")
    return {
        "status": run.status,
        "active": run.activated_at is not None,
        "open": (run.nodes_open, run.nodes_total),
        "nodes": {n.node_name: (n.status, n.queued_at is not None, n.attempt) for n in nodes},
        "events": list(RunEvent.objects.filter(run=run).values_list("kind", flat=True)),
    }


def test_a_batch_starts_each_run_as_a_single_scheduled_run_would(engine, tenant, admin_user):
    flows = [published(tenant, admin_user, f"batch-{i}") for i in range(3)]
    alone = published(tenant, admin_user, "alone")

    with engine.capture(execute=True):
        made = runs_create_scheduled(items=[(f.pk, FIRE) for f in flows])
    with engine.capture(execute=True):
        single = runs_create_scheduled(items=[(alone.pk, FIRE)])[(alone.pk, FIRE)]

    assert sorted(made) == sorted((f.pk, FIRE) for f in flows)
    expected = {
        "status": "queued",
        "active": True,
        "open": (3, 3),
        "nodes": {"a": ("queued", True, 1), "b": ("pending", False, 1), "c": ("queued", True, 1)},
        "events": ["run_created"],
    }
    assert [shape(run) for run in made.values()] == [expected] * 3
    assert shape(single) == expected
    # The roots were sent once each, after commit, the higher priority first within a run.
    names = dict(NodeRun.objects.values_list("pk", "node_name"))
    sent = [names[pk] for pk, _countdown in engine.sent]
    assert sent == ["c", "a"] * 4

    engine.drain()
    assert set(FlowRun.objects.values_list("status", flat=True)) == {"succeeded"}
    assert NodeRun.objects.filter(status="succeeded").count() == 12


def test_a_batch_hands_its_first_nodes_to_one_relay_message_that_sends_them(
    monkeypatch, django_capture_on_commit_callbacks, tenant, admin_user
):
    flows = [published(tenant, admin_user, f"relay-{i}") for i in range(3)]
    handed, sent = [], []
    monkeypatch.setattr(dispatch, "relay_publisher", handed.append)
    monkeypatch.setattr(dispatch, "publisher", sent.append)

    with django_capture_on_commit_callbacks(execute=True):
        made = runs_create_scheduled(items=[(f.pk, FIRE) for f in flows])

    # One hand-off after commit carrying the 6 queued roots; nothing sent one by one
    assert sent == [] and len(handed) == 1
    queued = NodeRun.objects.filter(run__in=made.values(), status="queued")
    assert {i: q for i, q, _, _ in handed[0]} == dict(queued.values_list("pk", "queued_at"))
    # The relay task, given the message as the broker carries it (JSON), sends exactly those
    # node messages (same ids and queued_at: the same task ids, which a stop revokes)
    payload = json.loads(json.dumps([dispatch._relay_item(item) for item in handed[0]]))
    tasks.relay_nodes.run(payload)
    assert sent == [handed[0]]


def test_each_fire_time_gets_one_run_however_often_it_is_asked(engine, tenant, admin_user):
    flows = [published(tenant, admin_user, f"once-{i}") for i in range(2)]
    items = [(f.pk, FIRE) for f in flows]

    with engine.capture(execute=True):
        first = runs_create_scheduled(items=items)
        again = runs_create_scheduled(items=items + items)

    assert len(first) == 2 and again == {}
    assert FlowRun.objects.filter(fire_time=FIRE).count() == 2


def test_a_flow_with_an_active_run_goes_through_its_concurrency_policy(engine, tenant, admin_user):
    busy = published(tenant, admin_user, "busy", concurrency_policy="skip")
    idle = published(tenant, admin_user, "idle", concurrency_policy="skip")
    with engine.capture(execute=True):
        running = run_start(flow=busy, mode="dry", user=admin_user)  # not drained: still active

    with engine.capture(execute=True):
        made = runs_create_scheduled(items=[(busy.pk, FIRE), (idle.pk, FIRE)])

    skipped, started = made[(busy.pk, FIRE)], made[(idle.pk, FIRE)]
    skipped.refresh_from_db()
    started.refresh_from_db()
    assert skipped.status == "skipped"
    assert f"run {running.pk}" in skipped.skip_reason
    assert started.status == "queued" and started.activated_at is not None


def test_two_fire_times_of_one_flow_in_a_batch_queue_behind_each_other(engine, tenant, admin_user):
    flow = published(tenant, admin_user, "twice", concurrency_policy="skip")
    later = FIRE + timedelta(minutes=1)

    with engine.capture(execute=True):
        made = runs_create_scheduled(items=[(flow.pk, later), (flow.pk, FIRE)])

    first, second = made[(flow.pk, FIRE)], made[(flow.pk, later)]
    second.refresh_from_db()
    # Fire times in order: the earlier one starts, the later one meets it under `skip`.
    assert first.pk < second.pk
    assert second.status == "skipped"


def test_unpublished_frozen_and_missing_flows_get_no_run(engine, tenant, admin_user):
    frozen = published(tenant, admin_user, "frozen")
    frozen.is_frozen = True
    frozen.save(update_fields=["is_frozen"])
    draft, _ = build_flow(tenant=tenant, owner=admin_user, name="draft", nodes=["x"])
    ok = published(tenant, admin_user, "ok")

    with engine.capture(execute=True):
        made = runs_create_scheduled(
            items=[(frozen.pk, FIRE), (draft.pk, FIRE), (999_999, FIRE), (ok.pk, FIRE)]
        )

    assert list(made) == [(ok.pk, FIRE)]


def _queries_for(count, tenant, owner, tag, engine):
    flows = [published(tenant, owner, f"{tag}-{i}") for i in range(count)]
    with engine.capture(execute=True), CaptureQueriesContext(connection) as ctx:
        made = runs_create_scheduled(items=[(f.pk, FIRE) for f in flows])
    assert len(made) == count
    return len(ctx.captured_queries)


def test_a_batch_costs_the_same_number_of_queries_for_2_or_10_flows(
    engine, tenant, admin_user, settings
):
    # Fair share's state (limits, worker slots) is read once a second and shared by every
    # run of every batch: read it now and keep it, so each batch counts only its own queries.
    from operations.services import slots

    settings.TRIBUTARY_FAIR_REFRESH_SECONDS = 3600
    slots.fair_state(fresh=True)
    small = _queries_for(2, tenant, admin_user, "small", engine)
    large = _queries_for(10, tenant, admin_user, "large", engine)

    assert large == small
    assert small <= 10


def test_a_run_starts_the_same_whether_it_joins_an_active_run_or_not(engine, tenant, admin_user):
    # `ignore`: a second run starts beside the first. The first joins no active run (it is
    # inserted already activated); the second goes through the concurrency policy.
    flow = published(tenant, admin_user, "both", concurrency_policy="ignore")

    with engine.capture(execute=True):
        alone = run_start(flow=flow, mode="try", user=admin_user)
    with engine.capture(execute=True):
        beside = run_start(flow=flow, mode="try", user=admin_user)

    assert (
        shape(alone)
        == shape(beside)
        == {
            "status": "queued",
            "active": True,
            "open": (3, 3),
            "nodes": {
                "a": ("queued", True, 1),
                "b": ("pending", False, 1),
                "c": ("queued", True, 1),
            },
            "events": ["run_created"],
        }
    )
    for run in (alone, beside):
        created = RunEvent.objects.get(run=run, kind="run_created")
        assert created.user == admin_user and run.triggered_by == admin_user
    engine.drain()
    assert set(FlowRun.objects.values_list("status", flat=True)) == {"succeeded"}


def test_rows_inserted_in_bulk_read_back_as_saved_one_by_one(tenant, admin_user):
    """config.db.insert_rows stores what Model.save() stores: JSON, UUIDs, datetimes, defaults."""
    flow, _ = build_flow(tenant=tenant, owner=admin_user, nodes=["a"], name="rows")
    fields = dict(
        tenant_id=tenant.pk,
        flow=flow,
        snapshot={"nodes": [{"id": 1, "name": "ä"}], "n": None},
        mode="try",
        trigger="manual",
        business_time=FIRE,
        fire_time=FIRE + timedelta(minutes=1),
        triggered_by=admin_user,
        error_policy="stop_all",
        concurrency_policy="parallel_same_node",
        batch=uuid.uuid4(),
        batch_index=3,
        nodes_total=2,
        nodes_open=2,
    )
    saved = FlowRun(**fields)
    saved.save()
    bulk = [FlowRun(**{**fields, "batch_index": i, "fire_time": None}) for i in range(2)]
    insert_rows(bulk)

    assert all(run.pk and not run._state.adding for run in bulk)
    columns = [f.attname for f in FlowRun._meta.concrete_fields if f.attname != "id"]
    stored = {r["id"]: r for r in FlowRun.objects.values("id", *columns)}
    assert len(stored) == 3
    for index, run in enumerate(bulk):
        got = dict(stored[run.pk])
        expected = {**stored[saved.pk], "batch_index": index, "fire_time": None}
        del got["id"], expected["id"]
        # created_at is set as each row is written
        assert got.pop("created_at") >= expected.pop("created_at")
        assert got == expected
