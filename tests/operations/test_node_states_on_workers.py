"""Node states a user can read, on real Celery workers: a started wait is running, not queued.

A dependency_check node that checks, finds nothing and comes back later holds no worker
between two checks; it is "deferred" (running, to the user). These tests hold such a node
in its wait, fail another node under each error policy, pause and stop the run, and check
that the deferred node is treated as the started node it is: complete_running and
complete_unrelated let it finish its wait, stop_all and a stop stop it, a pause lets it
finish its wait but starts nothing after it. The dependency is released by creating the
succeeded run it waits for; the failing node is an http node held by the test's server.
"""

from __future__ import annotations

import datetime as dt

import pytest

from operations.models import FlowRun, NodeRun
from operations.services import run_pause, run_resume, run_start, run_stop
from tests.factories import build_flow
from tests.integration.workers import wait_for

pytestmark = pytest.mark.integration

BT = dt.datetime(2024, 1, 15, tzinfo=dt.UTC)
TERMINAL = {"succeeded", "failed", "stopped", "skipped"}


def node(run, name) -> NodeRun:
    return NodeRun.objects.get(run=run, node_name=name, is_latest=True)


def node_status(run, name, status, timeout: float = 30) -> NodeRun:
    return wait_for(
        lambda: NodeRun.objects.filter(
            run=run, node_name=name, is_latest=True, status=status
        ).first(),
        timeout=timeout,
        what=f"node {name} of run {run.pk} to be {status}",
    )


def statuses(run) -> dict:
    return dict(NodeRun.objects.filter(run=run, is_latest=True).values_list("node_name", "status"))


def finished(run, timeout: float = 30) -> FlowRun:
    def done():
        run.refresh_from_db()
        return run.status in TERMINAL

    wait_for(done, timeout=timeout, what=f"run {run.pk} to finish")
    return run


@pytest.fixture
def upstream(tenant, admin_user):
    """The flow the dependency_check waits for, and a way to let it succeed."""
    flow, _ = build_flow(tenant=tenant, owner=admin_user, nodes=["load"], name="upstream")

    def succeed():
        FlowRun.objects.create(
            tenant=tenant,
            flow=flow,
            mode="scheduled",
            business_time=BT,
            status="succeeded",
            error_policy="complete_running",
            concurrency_policy="ignore",
        )

    flow.succeed = succeed
    return flow


def dep(upstream):
    return {
        "name": "dep",
        "type": "dependency_check",
        "config": {"flow": upstream.pk, "poll_s": 1, "timeout_s": 120},
    }


def flow_with_a_wait_and_a_failure(tenant, owner, server, upstream, policy):
    """`dep` waits for the upstream flow; `fail` answers 500 when the test releases it."""
    flow, _ = build_flow(
        tenant=tenant,
        owner=owner,
        error_policy=policy,
        nodes=[
            dep(upstream),
            "dep_down",
            {"name": "fail", "type": "http", "config": {"url": server.url("block/fail/500")}},
            "fail_down",
        ],
        edges=[("dep", "dep_down"), ("fail", "fail_down")],
    )
    return flow


def _wait_then_fail(run, server):
    """Once `dep` waits between two checks and `fail` runs, `fail` fails."""
    node_status(run, "dep", "deferred")
    wait_for(lambda: server.waiting("fail"), what="the failing node to run")
    server.release("fail")
    node_status(run, "fail", "failed")


def test_a_started_wait_is_deferred_and_the_api_says_when_it_checks_next(
    celery_workers, tenant, admin_user, upstream, api
):
    flow, _ = build_flow(tenant=tenant, owner=admin_user, nodes=[dep(upstream)])
    run = run_start(flow=flow, mode="point_in_time", user=admin_user, business_time=BT)
    waiting = node_status(run, "dep", "deferred")

    body = api(admin_user, tenant).get(f"/api/v1/runs/{run.pk}/").json()
    (shown,) = body["node_runs"]
    assert shown["status"] == "deferred" and shown["started_at"] is not None
    assert shown["next_attempt_at"] is not None and shown["waiting_reason"] is None
    assert waiting.worker  # it was claimed, so it has started ...
    assert body["status"] == "running"  # ... and its run is running

    upstream.succeed()
    assert finished(run).status == "succeeded"
    assert node(run, "dep").attempt == 1  # the same attempt, checked again


def test_complete_running_lets_a_deferred_node_finish_its_wait(
    celery_workers, http_server, tenant, admin_user, upstream
):
    flow = flow_with_a_wait_and_a_failure(
        tenant, admin_user, http_server, upstream, "complete_running"
    )
    run = run_start(flow=flow, mode="point_in_time", user=admin_user, business_time=BT)
    _wait_then_fail(run, http_server)

    # The failure was decided when it was recorded: the started wait goes on.
    assert node(run, "dep").status in ("deferred", "running")
    upstream.succeed()
    assert finished(run).status == "failed"
    assert statuses(run) == {
        "dep": "succeeded",
        "dep_down": "stopped",  # nothing starts after the failure
        "fail": "failed",
        "fail_down": "upstream_failed",
    }


def test_complete_unrelated_lets_a_deferred_node_and_its_downstream_run(
    celery_workers, http_server, tenant, admin_user, upstream
):
    flow = flow_with_a_wait_and_a_failure(
        tenant, admin_user, http_server, upstream, "complete_unrelated"
    )
    run = run_start(flow=flow, mode="point_in_time", user=admin_user, business_time=BT)
    _wait_then_fail(run, http_server)

    assert node(run, "dep").status in ("deferred", "running")
    upstream.succeed()
    assert finished(run).status == "failed"
    assert statuses(run) == {
        "dep": "succeeded",
        "dep_down": "succeeded",
        "fail": "failed",
        "fail_down": "upstream_failed",
    }


def test_stop_all_stops_a_deferred_node_at_once(
    celery_workers, http_server, tenant, admin_user, upstream
):
    flow = flow_with_a_wait_and_a_failure(tenant, admin_user, http_server, upstream, "stop_all")
    run = run_start(flow=flow, mode="point_in_time", user=admin_user, business_time=BT)
    _wait_then_fail(run, http_server)

    assert finished(run).status == "failed"
    assert statuses(run) == {
        "dep": "stopped",
        "dep_down": "stopped",
        "fail": "failed",
        "fail_down": "upstream_failed",
    }


def test_pause_lets_a_deferred_node_finish_its_wait_and_starts_nothing_after_it(
    celery_workers, tenant, admin_user, upstream
):
    flow, _ = build_flow(
        tenant=tenant, owner=admin_user, nodes=[dep(upstream), "after"], edges=[("dep", "after")]
    )
    run = run_start(flow=flow, mode="point_in_time", user=admin_user, business_time=BT)
    node_status(run, "dep", "deferred")

    run_pause(run=run, user=admin_user)
    # Paused: the started wait is not put back to pending; it keeps checking.
    assert node(run, "dep").status in ("deferred", "running")
    upstream.succeed()
    node_status(run, "dep", "succeeded")
    # Its success was recorded in a paused run: the next node was not started.
    assert node(run, "after").status == "pending"
    run.refresh_from_db()
    assert run.status == "paused"

    run_resume(run=run, user=admin_user)
    assert finished(run).status == "succeeded"
    assert statuses(run) == {"dep": "succeeded", "after": "succeeded"}


def test_stop_stops_a_deferred_node(celery_workers, tenant, admin_user, upstream):
    flow, _ = build_flow(
        tenant=tenant, owner=admin_user, nodes=[dep(upstream), "after"], edges=[("dep", "after")]
    )
    run = run_start(flow=flow, mode="point_in_time", user=admin_user, business_time=BT)
    node_status(run, "dep", "deferred")

    run_stop(run=run, user=admin_user)
    assert finished(run).status == "stopped"
    assert statuses(run) == {"dep": "stopped", "after": "stopped"}
