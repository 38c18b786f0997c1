"""The run page says what a node is doing in words a user reads (issue 14 §3).

A deferred node (started, waiting between checks without a worker) reads as running and
waiting; a node held back by the concurrency policy says why; an upstream-failed node has
its own colour, not failed's red.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from flows import services
from flows.snapshot import flow_snapshot
from operations.models import FlowRun, NodeRun
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def _colour(page, name: str) -> str:
    return page.locator(f"[data-testid='node-status-{name}'] .badge").evaluate(
        "el => getComputedStyle(el).backgroundColor"
    )


def test_run_page_reads_deferred_held_and_upstream_failed_nodes(page, tenant, member_user):
    flow = services.flow_create(tenant=tenant, user=member_user, name="states")
    services.graph_replace(
        flow=flow,
        user=member_user,
        nodes=[
            {"key": "a", "name": "extract", "type": "noop"},
            {"key": "b", "name": "load", "type": "noop"},
            {"key": "w", "name": "wait for file", "type": "wait", "config": {"seconds": 60}},
            {"key": "h", "name": "held", "type": "noop"},
        ],
        edges=[{"upstream": "a", "downstream": "b"}],
    )
    flow.refresh_from_db()
    now = timezone.now()
    run = FlowRun.objects.create(
        tenant=tenant,
        flow=flow,
        snapshot=flow_snapshot(flow),
        mode="try",
        trigger="manual",
        business_time=now,
        status="running",
        triggered_by=member_user,
        error_policy=flow.error_policy,
        concurrency_policy=flow.concurrency_policy,
        started_at=now,
    )
    ids = {n.name: n.pk for n in flow.nodes.all()}
    rows = {
        "extract": {"status": "failed", "started_at": now, "finished_at": now},
        "load": {"status": "upstream_failed", "finished_at": now},
        "wait for file": {"status": "deferred", "started_at": now, "next_attempt_at": now},
        "held": {"status": "waiting", "waiting_reason": "concurrency_policy"},
    }
    for name, fields in rows.items():
        NodeRun.objects.create(
            tenant=tenant,
            run=run,
            node_id=ids[name],
            node_name=name,
            node_type="wait" if name == "wait for file" else "noop",
            **fields,
        )

    sign_in(page, member_user)
    page.goto(f"/runs/{run.pk}/")
    deferred = page.locator("[data-testid='node-status-wait for file']")
    deferred.wait_for()
    assert "running" in deferred.inner_text().lower()
    assert "wait" in deferred.inner_text().lower()
    held = page.locator("[data-testid='node-status-held']").inner_text().lower()
    assert "held by" in held and "concurrency policy" in held
    assert "upstream" in page.locator("[data-testid='node-status-load']").inner_text().lower()
    assert _colour(page, "load") != _colour(page, "extract")
