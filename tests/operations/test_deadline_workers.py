"""Deadlines with real Celery workers and a real beat (PostgreSQL + Redis in CI): a run whose
node takes 20 s, with a deadline 10 s after its business time, is announced as predicted to
miss it before the deadline, and as missed within 2 s after it, to a local receiver of
Slack-format messages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from operations.models import FlowRun, NotificationAttempt
from operations.services import run_start
from tests.factories import build_flow
from tests.integration.workers import wait_for
from tests.scheduling.celery_procs import celery_processes

pytestmark = pytest.mark.integration

NODE_S = 20
DEADLINE_S = 10
# How late after its deadline the missed alert may arrive.
MISSED_WITHIN_S = 2.0


def _slack_posts(http_server, title: str) -> list:
    with http_server.lock:
        posts = list(http_server.posts)
    return [
        (at, body)
        for at, path, body in posts
        if path == "/slack" and title in body["blocks"][0]["text"]["text"]
    ]


def test_predicted_then_missed_deadline_alerts_reach_a_slack_receiver_in_time(
    celery_workers, http_server, tenant, admin_user, api, tmp_path
):
    # Given: a flow whose only node waits 20 s, a deadline 10 s after the business time,
    # alerts to a Slack incoming webhook (a local receiver) ...
    flow, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        name="late load",
        nodes=[{"name": "load", "type": "wait", "config": {"seconds": NODE_S}}],
        concurrency_policy="ignore",
        deadline={"after_fire_s": DEADLINE_S},
        notifications={"on_failure": True, "slack": [http_server.url("slack")]},
    )
    client = api(admin_user)
    with celery_processes(tmp_path, worker=False, beat=True) as procs:
        # ... and a first successful run, which is what the prediction learns from
        first = run_start(flow=flow, mode="try", user=admin_user)
        wait_for(
            lambda: FlowRun.objects.get(pk=first.pk).status == "succeeded",
            timeout=NODE_S + 30,
            what=lambda: f"the first run to succeed\n{celery_workers.log_tail()}",
        )

        # When: a run for a business time of now starts through the API (after a first
        # request: this process loads the API's modules then, which is not the product's time)
        assert client.get(f"/api/v1/runs/{first.pk}/").status_code == 200
        business_time = timezone.now()
        reply = client.post(
            f"/api/v1/flows/{flow.pk}/runs/",
            {"mode": "point_in_time", "business_time": business_time.isoformat()},
            format="json",
        )
        assert reply.status_code == 201, reply.content
        run_id = reply.json()["id"]
        deadline = parse_datetime(reply.json()["deadline_at"])
        assert deadline == business_time + timedelta(seconds=DEADLINE_S)

        # Then: the predicted alert arrives before the deadline ...
        [(risk_at, risk)] = wait_for(
            lambda: _slack_posts(http_server, "predicted to miss its deadline"),
            timeout=DEADLINE_S + 5,
            what=lambda: f"the predicted alert\n{procs['beat'].text()[-2000:]}",
        )
        body = client.get(f"/api/v1/runs/{run_id}/").json()
        assert body["deadline_state"] == "at_risk"
        # ... and the missed alert within 2 s after it, while the run still goes
        [(missed_at, missed)] = wait_for(
            lambda: _slack_posts(http_server, "missed its deadline"),
            timeout=DEADLINE_S + 10,
            what="the missed alert",
        )
        listed = client.get(f"/api/v1/runs/?flow={flow.pk}").json()
        rows = listed["results"] if isinstance(listed, dict) else listed
        assert {r["id"]: r["deadline_state"] for r in rows}[run_id] == "missed"
        assert FlowRun.objects.get(pk=run_id).status == "running"

    run = FlowRun.objects.get(pk=run_id)
    prediction = run.deadline_prediction
    predicted_finish = parse_datetime(prediction["finish"])
    print(
        f"\nbusiness time     {business_time.isoformat()}"
        f"\nrun created       {run.created_at.isoformat()}"
        f"\ndeadline          {deadline.isoformat()}"
        f"\npredicted at      {prediction['at']}  (the sweep that found it at risk)"
        f"\npredicted alert   {risk_at.isoformat()}  ({(risk_at - deadline).total_seconds():+.3f} s"
        f" from the deadline; predicted finish {predicted_finish.isoformat()})"
        f"\nmissed alert      {missed_at.isoformat()}  ({(missed_at - deadline).total_seconds():+.3f} s"
        " from the deadline)"
    )
    assert risk_at < deadline
    assert predicted_finish > deadline
    assert [n["node_name"] for n in prediction["nodes"]] == ["load"]
    assert deadline <= missed_at <= deadline + timedelta(seconds=MISSED_WITHIN_S)
    # Slack's format, with a link to the run page; each attempt recorded, one per kind.
    assert f"/runs/{run_id}/|Open run {run_id}>" in missed["blocks"][0]["text"]["text"]
    assert "Driven by: load" in risk["blocks"][0]["text"]["text"]
    sent = NotificationAttempt.objects.filter(run_id=run_id, channel="slack")
    assert sorted(sent.values_list("event", "ok")) == [
        ("deadline_missed", True),
        ("deadline_risk", True),
    ]
