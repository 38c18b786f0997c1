"""The O&M overviews over runs executed by real Celery worker processes: /metrics served by
this (web) process reports the work the workers did, and a run that really took longer is
flagged by the trends."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from flows.models import TaskNode
from operations.models import FlowRun, NodeRun
from operations.services import run_start
from tests.factories import build_flow
from tests.integration.workers import wait_for

pytestmark = pytest.mark.integration

TERMINAL = {"succeeded", "failed", "stopped", "skipped"}
HOLD_S = 4.0  # at least this long the slow run's node is kept running


def finished(run, timeout: float = 60) -> FlowRun:
    def done():
        run.refresh_from_db()
        return run.status in TERMINAL

    wait_for(done, timeout=timeout, what=f"run {run.pk} to finish")
    return run


def samples(client) -> dict:
    res = client.get("/metrics")
    assert res.status_code == 200
    out = {}
    for family in text_string_to_metric_families(res.content.decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


@override_settings(METRICS_SETTLE_SECONDS=0)
def test_metrics_and_trends_report_what_the_workers_did(
    celery_workers, http_server, tenant, admin_user, api, client
):
    # Given a flow whose http node answers at once, run three times on the workers
    flow, nodes = build_flow(
        tenant=tenant,
        owner=admin_user,
        name="fetch",
        nodes=[{"name": "fetch", "type": "http", "config": {"url": http_server.url("status/200")}}],
        concurrency_policy="ignore",
    )
    quick = [finished(run_start(flow=flow, mode="try", user=admin_user)) for _ in range(3)]
    assert [r.status for r in quick] == ["succeeded"] * 3, celery_workers.log_tail()

    # When a fourth run's node is held until it is far longer than any of them (a cold
    # worker's first run can be slow: the hold follows what the quick runs really took)
    longest = max(
        (r.finished_at - r.started_at).total_seconds()
        for r in FlowRun.objects.filter(pk__in=[r.pk for r in quick])
    )
    hold = max(HOLD_S, 2 * longest + 1.5)
    TaskNode.objects.filter(pk=nodes["fetch"].pk).update(
        config={"url": http_server.url("block/slow")}
    )
    slow = run_start(flow=flow, mode="try", user=admin_user)
    node = wait_for(
        lambda: NodeRun.objects.filter(
            run=slow, status="running", started_at__isnull=False
        ).first(),
        what="the slow node to start",
    )
    wait_for(
        lambda: (timezone.now() - node.started_at).total_seconds() >= hold,
        timeout=hold + 5,
        what="the hold to pass",
    )
    http_server.release("slow")
    assert finished(slow).status == "succeeded"

    # Then the trends flag that run, and its node
    body = api(admin_user).get(f"/api/v1/flows/{flow.pk}/stats/").json()
    assert [r["id"] for r in body["runs"]] == [r.pk for r in [*quick, slow]]
    (flagged,) = body["flagged"]
    assert flagged["run"] == slow.pk and flagged["duration_s"] >= hold
    assert [n["node_name"] for n in flagged["slow_nodes"]] == ["fetch"]

    # ... and /metrics, answered by this process, counts the workers' runs and node attempts
    seen = samples(client)
    runs = (
        "tributary_runs_finished_total",
        frozenset({"tenant": tenant.slug, "state": "succeeded"}.items()),
    )
    assert seen[runs] == 4
    attempts = frozenset({"node_type": "http", "outcome": "succeeded"}.items())
    assert seen[("tributary_node_duration_seconds_count", attempts)] == 4
    assert seen[("tributary_node_duration_seconds_sum", attempts)] >= hold
    # the slow attempt is above the 1 s bucket, the quick ones (normally) below it
    assert seen[("tributary_node_duration_seconds_bucket", attempts | {("le", "1.0")})] <= 3
    assert seen[("tributary_queue_depth", frozenset({"queue": "celery"}.items()))] == 0
    assert seen[("tributary_broker_up", frozenset())] == 1
