"""Backfills on real Celery workers (PostgreSQL/Redis in CI), through the API: a plan, a
selective backfill that runs only the chosen subtree, a cascade across two flows, and a
failed-only backfill."""

from __future__ import annotations

import pytest

from flows.services import flow_publish
from operations.models import FlowRun, NodeRun
from tests.factories import ScheduleFactory, build_flow
from tests.integration.workers import wait_for

pytestmark = pytest.mark.integration

RANGE = {"mode": "time_range", "start": "2024-01-15T00:00:00Z", "end": "2024-01-16T23:00:00Z"}
TERMINAL = {"succeeded", "failed", "stopped", "skipped"}


def statuses(run_id) -> dict:
    rows = NodeRun.objects.filter(run_id=run_id, is_latest=True)
    return dict(rows.values_list("node_name", "status"))


def all_finished(ids, timeout: float = 90) -> list[FlowRun]:
    def done():
        return FlowRun.objects.filter(pk__in=ids, status__in=TERMINAL).count() == len(ids)

    wait_for(done, timeout=timeout, what=f"runs {ids} to finish")
    return list(FlowRun.objects.filter(pk__in=ids).order_by("batch_index"))


def test_plan_selective_cascade_and_failed_only_backfills(celery_workers, api, tenant, admin_user):
    sales, nodes = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=["extract", "load", "report"],
        edges=[("extract", "load"), ("load", "report")],
        name="sales",
    )
    ScheduleFactory(flow=sales, cron="0 6 * * *")
    flow_publish(flow=sales, user=admin_user)
    dep = {
        "name": "wait",
        "type": "dependency_check",
        "config": {"flow": sales.pk, "cycle": "day", "offset": 0, "poll_s": 1},
    }
    mart, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[dep, "build"],
        edges=[("wait", "build")],
        name="mart",
    )
    ScheduleFactory(flow=mart, cron="0 7 * * *")
    flow_publish(flow=mart, user=admin_user)
    client = api(admin_user, tenant)
    url = f"/api/v1/flows/{sales.pk}/runs/"
    body = {**RANGE, "start_nodes": [nodes["load"].pk], "downstream_flows": True}

    # The plan: two dates, sales then mart on each, and nothing created
    plan = client.post(url, {**body, "plan_only": True}, format="json")
    assert plan.status_code == 200, plan.content
    assert [(r["flow_name"], r["business_time"], r["nodes"]) for r in plan.json()["runs"]] == [
        ("sales", "2024-01-15T06:00:00Z", ["load", "report"]),
        ("mart", "2024-01-15T07:00:00Z", ["wait", "build"]),
        ("sales", "2024-01-16T06:00:00Z", ["load", "report"]),
        ("mart", "2024-01-16T07:00:00Z", ["wait", "build"]),
    ]
    assert not FlowRun.objects.exists()

    # The selective cascade runs only load and report of sales, then mart, date by date
    res = client.post(url, {**body, "reason": "reload Jan 15-16"}, format="json")
    assert res.status_code == 201, res.content
    runs = all_finished([r["id"] for r in res.json()["runs"]])
    assert [(r.flow_id, r.status) for r in runs] == [
        (sales.pk, "succeeded"),
        (mart.pk, "succeeded"),
        (sales.pk, "succeeded"),
        (mart.pk, "succeeded"),
    ]
    for run in runs[0::2]:
        assert statuses(run.pk) == {
            "extract": "not_run",
            "load": "succeeded",
            "report": "succeeded",
        }
    for before, after in zip(runs, runs[1:], strict=False):
        assert after.started_at >= before.finished_at

    # failed-only: the 16th of sales failed; only it runs again
    FlowRun.objects.filter(pk=runs[2].pk).update(status="failed")
    res = client.post(url, {**RANGE, "only": "failed"}, format="json")
    assert res.status_code == 201, res.content
    assert [r["business_time"] for r in res.json()["runs"]] == ["2024-01-16T06:00:00Z"]
    (again,) = all_finished([res.json()["runs"][0]["id"]])
    assert again.status == "succeeded"
    assert set(statuses(again.pk).values()) == {"succeeded"}
    res = client.post(url, {**RANGE, "only": "failed", "plan_only": True}, format="json")
    assert res.json()["count"] == 0
