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


def test_a_child_that_finished_during_the_parents_check_brings_the_next_check_forward(
    tenant, admin_user, engine
):
    import datetime as dt

    from django.utils import timezone

    from operations.models import NodeRun
    from operations.services.lifecycle import Deferred
    from operations.services.lifecycle.retry import node_defer

    # Given a parent node in the middle of a check (running), whose child run finished
    # after the check began: the child's wake-up found the node running, not deferred ...
    child_flow, _ = build_flow(tenant=tenant, owner=admin_user, name="child", nodes=["c"])
    parent, _ = build_flow(tenant=tenant, owner=admin_user, nodes=["sub"])
    run = engine.call(run_start, flow=parent, mode="try", user=admin_user)
    node = NodeRun.objects.get(run=run, node_name="sub")
    NodeRun.objects.filter(pk=node.pk).update(status="running")
    checked_at = timezone.now() - dt.timedelta(seconds=1)
    child = engine.call(run_start, flow=child_flow, mode="try", user=admin_user)
    FlowRun.objects.filter(pk=child.pk).update(
        parent_run=run, parent_node_run=node, status="succeeded", finished_at=timezone.now()
    )
    engine.sent.clear()
    # ... when the check defers for its usual 10 s poll, the next check is sent now instead.
    engine.call(
        node_defer, node.pk, Deferred(seconds=10, state={}, checked_at=checked_at), "", 3600
    )
    assert engine.sent == [(node.pk, 0.0)]
    # A child that finished before the check began was seen by it: the poll keeps its delay.
    NodeRun.objects.filter(pk=node.pk).update(status="running")
    engine.sent.clear()
    engine.call(
        node_defer,
        node.pk,
        Deferred(seconds=10, state={}, checked_at=timezone.now()),
        "",
        3600,
    )
    assert engine.sent == [(node.pk, 10)]


def test_a_sub_flow_runs_only_a_flow_its_owner_may_run(tenant, admin_user, member_user, engine):
    from flows.services import FlowProblems, flow_stakeholders_set

    # Given another person's published flow, and a member's flow that runs it as a sub-flow
    target, _ = build_flow(tenant=tenant, owner=admin_user, name="target", nodes=["t"])
    flow_publish(flow=target, user=admin_user)
    parent, _ = build_flow(
        tenant=tenant,
        owner=member_user,
        name="parent",
        nodes=[{"name": "sub", "type": "subflow", "config": {"flow": target.pk}}],
    )
    # When the member may not operate the target, publishing names the node and the flow
    with pytest.raises(FlowProblems) as err:
        flow_publish(flow=parent, user=member_user)
    assert "the flow's owner may not run flow 'target'" in str(err.value.problems["sub"])
    # Once the target's owner makes the member a stakeholder, it publishes and runs
    flow_stakeholders_set(flow=target, user=admin_user, users=[member_user.pk])
    flow_publish(flow=parent, user=member_user)
    run = engine.call(run_start, flow=parent, mode="try", user=member_user)
    engine.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert FlowRun.objects.get(parent_run=run).status == "succeeded"
    # When the right is withdrawn later, the node fails saying why, and no child starts
    flow_stakeholders_set(flow=target, user=admin_user, users=[])
    again = engine.call(run_start, flow=parent, mode="try", user=member_user)
    engine.drain()
    again.refresh_from_db()
    assert again.status == "failed"
    assert "the flow's owner may not run flow 'target'" in latest(again)["sub"].error
    assert not FlowRun.objects.filter(parent_run=again).exists()


def test_a_sub_flows_parameters_take_the_parents_variables(tenant, admin_user, engine):
    # Given a child declaring `region`, and a parent whose run parameter `area` feeds it
    child_flow, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        name="child",
        parameters=[{"name": "region", "type": "string", "required": True}],
        nodes=[script("c")],
    )
    flow_publish(flow=child_flow, user=admin_user)
    parent, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        parameters=[{"name": "area", "type": "string", "required": True}],
        nodes=[
            {
                "name": "sub",
                "type": "subflow",
                "config": {"flow": child_flow.pk, "parameters": {"region": "${area}-west"}},
            }
        ],
    )
    # When the parent runs with area=eu, the child gets region=eu-west
    run = engine.call(
        run_start, flow=parent, mode="try", user=admin_user, parameters={"area": "eu"}
    )
    engine.drain()
    run.refresh_from_db()
    child = FlowRun.objects.get(parent_run=run)
    assert (run.status, child.status) == ("succeeded", "succeeded")
    assert child.parameters == {"region": "eu-west"}
