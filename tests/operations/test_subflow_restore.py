"""Restoring a parent whose sub-flow failed restores the failed child (no workers)."""

from __future__ import annotations

import pytest

from flows.services import flow_publish
from operations.models import FlowRun
from operations.services import run_restore, run_start
from tests.factories import build_flow
from tests.operations.helpers import latest, script

pytestmark = pytest.mark.django_db


def test_restoring_the_parent_restores_its_failed_child(tenant, admin_user, engine):
    # Given a child whose node fails its first attempt only
    child_flow, _ = build_flow(
        tenant=tenant, owner=admin_user, name="child", nodes=[script("flaky", fail_attempts=1)]
    )
    flow_publish(flow=child_flow, user=admin_user)
    parent, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[{"name": "sub", "type": "subflow", "config": {"flow": child_flow.pk}}],
    )
    run = engine.call(run_start, flow=parent, mode="try", user=admin_user)
    engine.drain()
    run.refresh_from_db()
    child = FlowRun.objects.get(parent_run=run)
    assert (run.status, child.status) == ("failed", "failed")
    # When the parent is restored
    engine.call(run_restore, run=run, user=admin_user)
    engine.drain()
    # Then the same child was restored (its node's second attempt) and both succeeded
    run.refresh_from_db()
    child.refresh_from_db()
    assert (run.status, child.status) == ("succeeded", "succeeded")
    assert FlowRun.objects.filter(parent_run=run).count() == 1
    assert latest(child)["flaky"].attempt == 2
    assert child.parent_node_run_id == latest(run)["sub"].pk
