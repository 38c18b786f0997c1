"""Restoring a parent whose sub-flow failed restores the failed child (no workers)."""

from __future__ import annotations

import pytest

from flows.services import flow_publish
from operations.models import FlowRun
from operations.services import node_rerun_from, run_restore, run_start
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


def test_restoring_a_failed_loop_reruns_only_the_items_that_failed(tenant, admin_user, engine):
    # Given a loop over three items whose child fails its first attempt for item 1 only
    child_flow, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        name="per item",
        parameters=[{"name": "n", "type": "string", "required": True}],
        nodes=[script("work", fail_attempts="${n}")],
    )
    flow_publish(flow=child_flow, user=admin_user)
    loop, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[
            {
                "name": "each",
                "type": "foreach",
                "config": {
                    "flow": child_flow.pk,
                    "items": [{"n": "0"}, {"n": "1"}, {"n": "0"}],
                    "parameters": {"n": "${item.n}"},
                },
            }
        ],
    )
    run = engine.call(run_start, flow=loop, mode="try", user=admin_user)
    engine.drain()
    run.refresh_from_db()
    children = {c.parent_key: c for c in FlowRun.objects.filter(parent_run=run)}
    assert run.status == "failed"
    assert {k: c.status for k, c in children.items()} == {
        "0": "succeeded",
        "1": "failed",
        "2": "succeeded",
    }
    # When the parent is restored
    engine.call(run_restore, run=run, user=admin_user)
    engine.drain()
    # Then item 1's child was restored, items 0 and 2 were kept as they were (not run again),
    # and the loop's new attempt owns all three.
    run.refresh_from_db()
    assert run.status == "succeeded"
    each = latest(run)["each"]
    assert each.attempt == 2
    after = {c.parent_key: c for c in FlowRun.objects.filter(parent_run=run)}
    assert {k: c.pk for k, c in after.items()} == {k: c.pk for k, c in children.items()}
    assert {k: c.status for k, c in after.items()} == dict.fromkeys("012", "succeeded")
    assert {k: latest(c)["work"].attempt for k, c in after.items()} == {"0": 1, "1": 2, "2": 1}
    assert all(c.parent_node_run_id == each.pk for c in after.values())


def test_rerunning_a_loop_that_succeeded_runs_every_item_again(tenant, admin_user, engine):
    child_flow, _ = build_flow(
        tenant=tenant, owner=admin_user, name="per item", nodes=[script("work")]
    )
    flow_publish(flow=child_flow, user=admin_user)
    loop, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[
            {
                "name": "each",
                "type": "foreach",
                "config": {"flow": child_flow.pk, "items": [{"n": "a"}, {"n": "b"}]},
            }
        ],
    )
    run = engine.call(run_start, flow=loop, mode="try", user=admin_user)
    engine.drain()
    first = set(FlowRun.objects.filter(parent_run=run).values_list("pk", flat=True))
    assert len(first) == 2
    # When the loop node is rerun after it succeeded, both items run anew.
    engine.call(node_rerun_from, node_run=latest(run)["each"], user=admin_user)
    engine.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    latest_children = FlowRun.objects.filter(parent_node_run=latest(run)["each"])
    assert latest_children.count() == 2
    assert not first & set(latest_children.values_list("pk", flat=True))
