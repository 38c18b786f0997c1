"""Deadlines: the flow setting (validated, versioned, exported), a run's deadline_at and
deadline_state, and the sweep that alerts once when a run is predicted to miss its deadline
(critical path of the nodes still to run at their p90) and once when it is missed."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from flows.models import TaskFlow
from operations import alerts, dispatch
from operations.models import FlowRun, NodeRun
from operations.services import (
    deadline_check,
    deadline_state,
    deadline_sweep,
    deadlines,
    run_start,
)
from tests.factories import build_flow
from tests.operations.helpers import script

pytestmark = pytest.mark.django_db

UTC = dt.UTC
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def _fresh_p90s():
    deadlines.clear_cache()
    yield
    deadlines.clear_cache()


@pytest.fixture
def timed(monkeypatch):
    """The checks the sweep sends for deadlines before its next round: (name, args, eta)."""
    sent = []
    monkeypatch.setattr(
        dispatch, "timed_task_publisher", lambda name, args, eta: sent.append((name, args, eta))
    )
    return sent


@pytest.fixture
def sent(monkeypatch, timed):
    """The alerts the sweep queues: (run id, event, detail)."""
    queued = []
    monkeypatch.setattr(
        alerts,
        "alert_event",
        lambda *, run_id, event, detail=None: queued.append((run_id, event, detail)),
    )
    return queued


# ------------------------------------------------------------------ the setting


@pytest.mark.parametrize(
    "value",
    [
        {"after_fire_s": 0},
        {"after_fire_s": "10"},
        {"after_fire_s": True},
        {"at": "24:00"},
        {"at": "6:00"},
        {"at": "06:60"},
        {"at": 600},
        {"at": "06:00", "after_fire_s": 10},
        {"when": "06:00"},
        "06:00",
        [],
    ],
)
def test_a_bad_deadline_is_a_400_naming_it(api, tenant, member_user, value):
    flow, _ = build_flow(tenant=tenant, owner=member_user, nodes=["a"])
    reply = api(member_user).patch(f"/api/v1/flows/{flow.pk}/", {"deadline": value}, format="json")
    assert reply.status_code == 400, reply.content
    assert "deadline" in reply.json()


def test_the_deadline_is_set_shown_exported_and_frozen_into_the_version(api, tenant, member_user):
    flow, _ = build_flow(tenant=tenant, owner=member_user, nodes=["a"], name="nightly")
    client = api(member_user)
    reply = client.patch(f"/api/v1/flows/{flow.pk}/", {"deadline": {"at": "06:30"}}, format="json")
    assert reply.status_code == 200, reply.content
    assert reply.json()["deadline"] == {"at": "06:30"}
    # Published: the version's snapshot keeps it, whatever the flow says later.
    assert client.post(f"/api/v1/flows/{flow.pk}/publish/", {}, format="json").status_code in (
        200,
        201,
    )
    client.patch(f"/api/v1/flows/{flow.pk}/", {"deadline": None}, format="json")
    flow.refresh_from_db()
    assert flow.deadline is None
    assert flow.published_version.snapshot["flow"]["deadline"] == {"at": "06:30"}
    # Exported and imported back.
    client.patch(f"/api/v1/flows/{flow.pk}/", {"deadline": {"after_fire_s": 900}}, format="json")
    document = client.get(f"/api/v1/flows/{flow.pk}/export/?format=json").json()
    assert document["deadline"] == {"after_fire_s": 900}
    document["name"] = "nightly copy"
    reply = client.post("/api/v1/flows/import/", document, format="json")
    assert reply.status_code == 201, reply.content
    assert reply.json()["deadline"] == {"after_fire_s": 900}
    document["name"], document["deadline"] = "nightly bad", {"at": "25:00"}
    reply = client.post("/api/v1/flows/import/", document, format="json")
    assert reply.status_code == 400 and "at: a wall-clock time" in str(reply.json())


# ------------------------------------------------------------------ deadline_at


def test_deadline_after_the_fire_time_and_at_a_wall_clock_time_in_the_zone():
    fire = dt.datetime(2024, 3, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    assert deadlines.deadline_for({"after_fire_s": 7200}, fire, SHANGHAI) == fire + dt.timedelta(
        hours=2
    )
    # 10:00 Shanghai on the fire time's date is still ahead: that day.
    assert deadlines.deadline_for({"at": "10:00"}, fire, SHANGHAI) == dt.datetime(
        2024, 3, 1, 2, 0, tzinfo=UTC
    )
    # 06:00 Shanghai has passed at 09:00: the next day's.
    assert deadlines.deadline_for({"at": "06:00"}, fire, SHANGHAI) == dt.datetime(
        2024, 3, 1, 22, 0, tzinfo=UTC
    )
    assert deadlines.deadline_for(None, fire, SHANGHAI) is None


def test_runs_get_a_deadline_from_their_version_except_tests_and_old_dates(
    engine, tenant, member_user
):
    flow, _ = build_flow(
        tenant=tenant,
        owner=member_user,
        nodes=["a"],
        deadline={"after_fire_s": 600},
        concurrency_policy="ignore",
    )
    now = timezone.now()
    run = engine.call(
        run_start, flow=flow, mode="point_in_time", user=member_user, business_time=now
    )
    assert run.deadline_at == now + dt.timedelta(seconds=600)
    assert deadline_state(run) == "on_time"
    old = engine.call(
        run_start,
        flow=flow,
        mode="point_in_time",
        user=member_user,
        business_time=now - dt.timedelta(days=3),
    )
    test = engine.call(run_start, flow=flow, mode="try", user=member_user)
    assert old.deadline_at is None and test.deadline_at is None
    assert deadline_state(test) is None


# ------------------------------------------------------------------ the sweep


def _history(flow, member_user, engine, seconds: dict[str, float]) -> None:
    """One successful run whose nodes took `seconds` (what the p90s are made of)."""
    run = engine.call(
        run_start,
        flow=flow,
        mode="try",
        user=member_user,
    )
    engine.drain()
    start = timezone.now() - dt.timedelta(hours=1)
    at = start
    for name, took in seconds.items():
        node = NodeRun.objects.get(run=run, node_name=name, is_latest=True)
        node.started_at, node.finished_at = at, at + dt.timedelta(seconds=took)
        node.save(update_fields=["started_at", "finished_at"])
        at = node.finished_at
    FlowRun.objects.filter(pk=run.pk).update(started_at=start, finished_at=at)


def test_a_run_predicted_to_miss_alerts_once_early_then_once_when_missed(
    engine, tenant, member_user, sent
):
    # Given: extract -> load, and a side node; history says extract 30 s, load 60 s, side 5 s
    flow, _ = build_flow(
        tenant=tenant,
        owner=member_user,
        nodes=[script("extract"), script("load"), script("side")],
        edges=[("extract", "load")],
        deadline={"after_fire_s": 100},
        concurrency_policy="ignore",
    )
    _history(flow, member_user, engine, {"extract": 30, "load": 60, "side": 5})
    now = timezone.now()
    run = engine.call(
        run_start, flow=flow, mode="point_in_time", user=member_user, business_time=now
    )
    # The node messages are not executed: extract "started" 20 s ago, side is done.
    NodeRun.objects.filter(run=run, node_name="extract").update(
        status="running", started_at=now - dt.timedelta(seconds=20)
    )
    NodeRun.objects.filter(run=run, node_name="side").update(
        status="succeeded", started_at=now, finished_at=now
    )
    FlowRun.objects.filter(pk=run.pk).update(status="running", started_at=now)

    # When: the sweep looks 1 s after the business time: 10 s of extract + 60 s of load
    # = now + 71 s, inside the deadline of now + 100 s
    assert deadline_sweep(now=now + dt.timedelta(seconds=1))["at_risk"] == 0
    assert sent == []
    # ... and 40 s later, extract still running (0 s left at its p90) + load's 60 s: 101 s
    deadline_sweep(now=now + dt.timedelta(seconds=41))
    [(run_id, event, detail)] = sent
    assert (run_id, event) == (run.pk, "deadline_risk")
    assert [n["node_name"] for n in detail["nodes"]] == ["extract", "load"]
    assert detail["predicted_finish"] == (now + dt.timedelta(seconds=101)).isoformat()
    run.refresh_from_db()
    assert deadline_state(run, now + dt.timedelta(seconds=41)) == "at_risk"
    # Then: a later sweep does not alert again, until the deadline passes: missed, once
    deadline_sweep(now=now + dt.timedelta(seconds=50))
    assert len(sent) == 1
    report = deadline_sweep(now=now + dt.timedelta(seconds=100, milliseconds=300))
    assert report["missed"] == 1
    assert [e for _, e, _ in sent] == ["deadline_risk", "deadline_missed"]
    deadline_sweep(now=now + dt.timedelta(seconds=102))
    assert len(sent) == 2
    run.refresh_from_db()
    assert deadline_state(run) == "missed"
    # The API shows the state in the list and the detail, with the prediction.
    body = _api_run(run, member_user)
    assert body["deadline_state"] == "missed" and body["deadline_prediction"]["nodes"]


def _api_run(run, user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user=user)
    listed = client.get(f"/api/v1/runs/?flow={run.flow_id}").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert {r["id"]: r["deadline_state"] for r in rows}[run.pk] == "missed"
    return client.get(f"/api/v1/runs/{run.pk}/").json()


def test_a_run_not_started_at_its_deadline_is_missed_and_a_finished_one_is_not_swept(
    engine, tenant, member_user, sent
):
    flow, _ = build_flow(
        tenant=tenant,
        owner=member_user,
        nodes=["a"],
        deadline={"after_fire_s": 10},
        concurrency_policy="ignore",
    )
    now = timezone.now()
    waiting = engine.call(
        run_start, flow=flow, mode="point_in_time", user=member_user, business_time=now
    )
    done = engine.call(
        run_start, flow=flow, mode="point_in_time", user=member_user, business_time=now
    )
    FlowRun.objects.filter(pk=done.pk).update(
        status="succeeded", finished_at=now + dt.timedelta(seconds=5)
    )
    deadline_sweep(now=now + dt.timedelta(seconds=11))
    assert [(r, e) for r, e, _ in sent] == [(waiting.pk, "deadline_missed")]
    done.refresh_from_db()
    assert deadline_state(done) == "on_time"


def test_a_scheduled_run_counts_from_its_fire_time_even_when_created_late(
    tenant, member_user, django_capture_on_commit_callbacks
):
    from flows.services import flow_publish
    from operations.services import run_create_scheduled, run_rerun

    flow, _ = build_flow(
        tenant=tenant,
        owner=member_user,
        nodes=["a"],
        deadline={"after_fire_s": 60},
        concurrency_policy="ignore",
    )
    flow_publish(flow=flow, user=member_user)
    # The version keeps the deadline it was published with.
    TaskFlow.objects.filter(pk=flow.pk).update(deadline={"after_fire_s": 5})
    fire = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=5)
    with django_capture_on_commit_callbacks(execute=False):
        run = run_create_scheduled(flow_id=flow.pk, fire_time=fire)
    assert run.deadline_at == fire + dt.timedelta(seconds=60)
    assert FlowRun.objects.get(pk=run.pk).deadline_at == fire + dt.timedelta(seconds=60)
    assert deadline_state(run) == "missed"
    # A rerun of it now has no deadline: its date's deadline passed before it was asked for.
    FlowRun.objects.filter(pk=run.pk).update(status="failed", finished_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=False):
        again = run_rerun(run=FlowRun.objects.get(pk=run.pk), user=member_user)
    assert again.deadline_at is None


def test_a_deadline_before_the_next_sweep_gets_a_check_at_that_moment(
    engine, tenant, member_user, sent, timed
):
    flow, _ = build_flow(
        tenant=tenant,
        owner=member_user,
        nodes=["a"],
        deadline={"after_fire_s": 30},
        concurrency_policy="ignore",
    )
    now = timezone.now()
    run = engine.call(
        run_start, flow=flow, mode="point_in_time", user=member_user, business_time=now
    )
    deadline = now + dt.timedelta(seconds=30)
    # A sweep 5 s before: nothing to do yet. 0.8 s before: a check timed at the deadline.
    assert deadline_sweep(now=deadline - dt.timedelta(seconds=5))["timed"] == 0
    assert deadline_sweep(now=deadline - dt.timedelta(milliseconds=800))["timed"] == 1
    assert timed == [("operations.deadline_check", [run.pk], deadline)]
    assert sent == []
    # The check at the deadline finds the run still going: missed, once.
    assert deadline_check(run_id=run.pk, now=deadline) == "missed"
    assert deadline_check(run_id=run.pk, now=deadline) is None
    assert deadline_sweep(now=deadline + dt.timedelta(seconds=1))["missed"] == 0
    assert [e for _, e, _ in sent] == ["deadline_missed"]


def test_a_missed_deadline_reaches_the_tenants_webhooks_too(engine, tenant, member_user, sent):
    import json

    from flows.models import WebhookDelivery
    from flows.webhooks.services import webhook_create

    # Given a subscription to missed deadlines and a run not started at its deadline
    webhook_create(
        tenant=tenant,
        user=member_user,
        url="https://hooks.example.com/deadlines",
        events=["run.deadline_missed"],
        secret="s" * 20,
    )
    flow, _ = build_flow(
        tenant=tenant,
        owner=member_user,
        nodes=["a"],
        deadline={"after_fire_s": 10},
        concurrency_policy="ignore",
    )
    now = timezone.now()
    run = engine.call(
        run_start, flow=flow, mode="point_in_time", user=member_user, business_time=now
    )
    # When the sweep finds it missed
    deadline_sweep(now=now + dt.timedelta(seconds=11))
    # Then the alert channels and the webhook get the same event, once
    assert [(r, e) for r, e, _ in sent] == [(run.pk, "deadline_missed")]
    [delivery] = WebhookDelivery.objects.filter(tenant=tenant)
    body = json.loads(delivery.body)
    assert body["type"] == "run.deadline_missed"
    assert body["data"]["run"]["id"] == run.pk
    assert body["data"]["deadline"]["deadline_at"] == (now + dt.timedelta(seconds=10)).isoformat()
    deadline_sweep(now=now + dt.timedelta(seconds=12))
    assert WebhookDelivery.objects.filter(tenant=tenant).count() == 1
