"""Sub-flows on real Celery workers: a child run of the target's published version, waited
for without a worker, its outputs on the node; stop acts on the child; publishing refuses a
cycle of flows."""

from __future__ import annotations

import datetime as dt

import pytest

from flows.services import FlowProblems, flow_publish
from operations.models import FlowRun, NodeRun
from operations.services import run_start, run_stop
from tests.factories import build_flow
from tests.integration.workers import wait_for

pytestmark = pytest.mark.integration

BT = dt.datetime(2024, 1, 15, 10, tzinfo=dt.UTC)
TERMINAL = {"succeeded", "failed", "stopped", "skipped"}


def statuses(run) -> dict:
    return dict(NodeRun.objects.filter(run=run, is_latest=True).values_list("node_name", "status"))


def finished(run, timeout: float = 90) -> FlowRun:
    def done():
        run.refresh_from_db()
        return run.status in TERMINAL

    wait_for(done, timeout=timeout, what=f"run {run.pk} to finish")
    return run


def published(tenant, owner, name, nodes, edges=()):
    flow, by_name = build_flow(tenant=tenant, owner=owner, nodes=nodes, edges=edges, name=name)
    flow_publish(flow=flow, user=owner)
    flow.refresh_from_db()
    return flow, by_name


def test_subflow_runs_the_child_and_takes_its_outputs(
    celery_workers, http_server, tenant, admin_user, api
):
    # Given a published child flow whose http node exports status
    child_flow, _ = published(
        tenant,
        admin_user,
        "child",
        [{"name": "call", "type": "http", "config": {"url": http_server.url("status/200")}}],
    )
    parent, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        name="parent",
        nodes=[
            {"name": "sub", "type": "subflow", "config": {"flow": child_flow.pk}},
            {
                "name": "after",
                "type": "http",
                "config": {"url": http_server.url("status/${status}")},
            },
        ],
        edges=[("sub", "after")],
    )
    # When the parent runs at a business time
    run = run_start(flow=parent, mode="point_in_time", user=admin_user, business_time=BT)
    assert finished(run).status == "succeeded"
    # Then a child run of the published version ran at the same business time
    child = FlowRun.objects.get(parent_run=run)
    sub = NodeRun.objects.get(run=run, node_name="sub", is_latest=True)
    assert child.parent_node_run_id == sub.pk and child.business_time == BT
    assert child.version_id == child_flow.published_version_id and child.status == "succeeded"
    assert sub.output["status"] == 200 and sub.output["child_run"] == child.pk
    assert http_server.hits["/status/200"] == 2  # the child's call, then after's with ${status}
    body = api(admin_user, tenant).get(f"/api/v1/runs/{child.pk}/").json()
    assert body["parent_run"] == run.pk and body["parent_node_run"] == sub.pk
    body = api(admin_user, tenant).get(f"/api/v1/runs/{run.pk}/").json()
    assert [c["id"] for c in body["child_runs"]] == [child.pk]


def test_a_failed_child_fails_the_node_and_stopping_the_parent_stops_the_child(
    celery_workers, http_server, tenant, admin_user
):
    failing, _ = published(
        tenant,
        admin_user,
        "failing",
        [{"name": "boom", "type": "http", "config": {"url": http_server.url("status/500")}}],
    )
    parent, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[{"name": "sub", "type": "subflow", "config": {"flow": failing.pk}}],
    )
    run = run_start(flow=parent, mode="point_in_time", user=admin_user, business_time=BT)
    assert finished(run).status == "failed"
    assert statuses(run) == {"sub": "failed"}
    assert "failed" in NodeRun.objects.get(run=run, node_name="sub", is_latest=True).error

    # A child held in a blocked http call: stopping the parent stops it.
    slow, _ = published(
        tenant,
        admin_user,
        "slow",
        [{"name": "hold", "type": "http", "config": {"url": http_server.url("block/hold")}}],
    )
    parent2, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[{"name": "sub", "type": "subflow", "config": {"flow": slow.pk}}],
    )
    run = run_start(flow=parent2, mode="point_in_time", user=admin_user, business_time=BT)
    child = wait_for(
        lambda: FlowRun.objects.filter(parent_run=run).first(), timeout=30, what="the child run"
    )
    wait_for(lambda: http_server.waiting("hold"), timeout=30, what="the child's node to run")
    run_stop(run=run, user=admin_user)
    http_server.release("hold")
    assert finished(run).status == "stopped"
    assert finished(child).status == "stopped"


def test_publishing_refuses_a_cycle_of_flows(tenant, admin_user, db):
    a, _ = build_flow(tenant=tenant, owner=admin_user, nodes=["x"], name="a")
    flow_publish(flow=a, user=admin_user)
    b, _ = published(
        tenant, admin_user, "b", [{"name": "run_a", "type": "subflow", "config": {"flow": a.pk}}]
    )
    # a now runs b, which runs a: refused, naming the cycle
    from flows.models import TaskNode

    TaskNode.objects.create(
        tenant=tenant, flow=a, name="run_b", type="subflow", config={"flow": b.pk}
    )
    with pytest.raises(FlowProblems) as err:
        flow_publish(flow=a, user=admin_user)
    assert "a → b → a" in str(err.value.problems["run_b"])


def test_pausing_and_resuming_the_parent_pause_and_resume_the_child(
    celery_workers, http_server, tenant, admin_user
):
    from operations.services import run_pause, run_resume

    # Given a child flow whose first node is held by the server, then a second node
    slow, _ = published(
        tenant,
        admin_user,
        "slow two",
        [
            {"name": "hold", "type": "http", "config": {"url": http_server.url("block/p")}},
            "then",
        ],
        [("hold", "then")],
    )
    parent, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[{"name": "sub", "type": "subflow", "config": {"flow": slow.pk}}],
    )
    run = run_start(flow=parent, mode="point_in_time", user=admin_user, business_time=BT)
    child = wait_for(
        lambda: FlowRun.objects.filter(parent_run=run).first(), timeout=30, what="the child run"
    )
    wait_for(lambda: http_server.waiting("p"), timeout=30, what="the child's node to run")
    # When the parent is paused, the child is paused: its running node finishes, no more
    run_pause(run=run, user=admin_user)
    child.refresh_from_db()
    assert child.status == "paused"
    http_server.release("p")
    wait_for(
        lambda: NodeRun.objects.filter(run=child, node_name="hold", status="succeeded").exists(),
        timeout=30,
        what="the held node to finish",
    )
    assert NodeRun.objects.get(run=child, node_name="then", is_latest=True).status == "pending"
    # And resuming the parent resumes the child, which finishes, and so does the parent
    run_resume(run=run, user=admin_user)
    assert finished(child).status == "succeeded"
    assert finished(run).status == "succeeded"
