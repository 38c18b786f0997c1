"""Bulk actions on runs that real Celery workers are executing: pause, resume and stop through
POST /api/v1/runs/bulk/, each run ending where its single action would take it, and every
action in the tenant's audit trail with its reason."""

from __future__ import annotations

import pytest

from operations.models import FlowRun, NodeRun
from operations.services import run_start
from tests.factories import build_flow
from tests.integration.workers import wait_for

pytestmark = pytest.mark.integration

BULK = "/api/v1/runs/bulk/"


def test_bulk_pause_resume_and_stop_on_running_runs(
    celery_workers, tenant, member_user, admin_user, api
):
    # Given two runs whose first node waits a minute on the workers, and a quick run
    flow, _ = build_flow(
        tenant=tenant,
        owner=member_user,
        name="slow-load",
        nodes=[{"name": "hold", "type": "wait", "config": {"seconds": 60}}, "after"],
        edges=[("hold", "after")],
        concurrency_policy="ignore",
    )
    quick, _ = build_flow(tenant=tenant, owner=member_user, name="quick", nodes=["only"])
    slow = [run_start(flow=flow, mode="try", user=member_user) for _ in range(2)]
    done = run_start(flow=quick, mode="try", user=member_user)
    for run in slow:
        # Started: running, or (after its first check, a few ms in) deferred until the
        # minute is up, which the API shows as running.
        wait_for(
            lambda run=run: (
                NodeRun.objects.filter(
                    run=run, node_name="hold", status__in=("running", "deferred")
                )
                .exclude(started_at=None)
                .exists()
            ),
            timeout=60,
            what=f"run {run.pk}'s wait node to start",
        )
    wait_for(
        lambda: FlowRun.objects.get(pk=done.pk).status == "succeeded",
        timeout=60,
        what="the quick run to succeed",
    )
    ids = [r.pk for r in slow]
    client = api(member_user)

    # When the operator pauses all three, resumes the two slow ones, then stops them
    res = client.post(
        BULK, {"action": "pause", "runs": [*ids, done.pk], "reason": "freeze"}, format="json"
    )
    assert res.status_code == 200, res.content
    body = res.json()
    assert [r["result"] for r in body["results"]] == ["done", "done", "refused"]
    assert body["results"][2]["status"] == 409
    assert {FlowRun.objects.get(pk=i).status for i in ids} == {"paused"}
    res = client.post(BULK, {"action": "resume", "runs": ids}, format="json")
    assert res.json()["done"] == 2, res.content
    res = client.post(BULK, {"action": "stop", "runs": ids, "reason": "wrong day"}, format="json")
    assert res.json()["done"] == 2, res.content

    # Then both runs end stopped on the workers, their waiting nodes with them
    for run_id in ids:
        wait_for(
            lambda run_id=run_id: FlowRun.objects.get(pk=run_id).status == "stopped",
            timeout=60,
            what=f"run {run_id} to end stopped",
        )
        assert set(
            NodeRun.objects.filter(run_id=run_id, is_latest=True).values_list("status", flat=True)
        ) == {"stopped"}, celery_workers.log_tail()
    # ... and the audit trail has each run's action and each bulk request, newest first
    entries = api(admin_user).get("/api/v1/audit/", {"object_type": "run"}).json()["results"]
    got = [(e["action"], e["object_id"], e["reason"]) for e in entries]
    assert got == [
        ("bulk", None, "wrong day"),
        ("stop", ids[1], "wrong day"),
        ("stop", ids[0], "wrong day"),
        ("bulk", None, ""),
        ("resume", ids[1], ""),
        ("resume", ids[0], ""),
        ("bulk", None, "freeze"),
        ("pause", ids[1], "freeze"),
        ("pause", ids[0], "freeze"),
    ]
