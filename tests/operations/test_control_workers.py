"""Trigger rules and disabled nodes on real Celery workers (PostgreSQL/Redis in CI).

A cleanup node (`one_failed`) runs after a failure under every error policy while the
nodes that need success follow the policy; the run still fails. A disabled node is not
executed, its row says `disabled`, and its downstream runs on.
"""

from __future__ import annotations

import datetime as dt

import pytest

from operations.models import FlowRun, NodeRun
from operations.services import run_start
from tests.factories import build_flow
from tests.integration.workers import wait_for

pytestmark = pytest.mark.integration

BT = dt.datetime(2024, 1, 15, tzinfo=dt.UTC)
TERMINAL = {"succeeded", "failed", "stopped", "skipped"}


def statuses(run) -> dict:
    return dict(NodeRun.objects.filter(run=run, is_latest=True).values_list("node_name", "status"))


def finished(run, timeout: float = 60) -> FlowRun:
    def done():
        run.refresh_from_db()
        return run.status in TERMINAL

    wait_for(done, timeout=timeout, what=f"run {run.pk} to finish")
    return run


@pytest.mark.parametrize("policy", ["complete_running", "stop_all", "complete_unrelated"])
def test_cleanup_node_runs_after_a_failure_under_every_policy(
    celery_workers, http_server, tenant, admin_user, policy
):
    # Given load fails, next needs its success, cleanup runs when one upstream failed, and
    # always (all_done) runs once both are finished
    flow, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        error_policy=policy,
        nodes=[
            {"name": "load", "type": "http", "config": {"url": http_server.url("status/500")}},
            "next",
            {"name": "cleanup", "trigger_rule": "one_failed"},
            {"name": "always", "trigger_rule": "all_done"},
            {"name": "fine", "trigger_rule": "none_failed"},
        ],
        edges=[
            ("load", "next"),
            ("load", "cleanup"),
            ("next", "always"),
            ("cleanup", "always"),
            ("cleanup", "fine"),
        ],
    )
    run = run_start(flow=flow, mode="point_in_time", user=admin_user, business_time=BT)
    # Then the cleanup and the always-node ran, and the run failed all the same
    assert finished(run).status == "failed"
    assert statuses(run) == {
        "load": "failed",
        "next": "upstream_failed",
        "cleanup": "succeeded",
        "always": "succeeded",
        "fine": "stopped" if policy != "complete_unrelated" else "succeeded",
    }


def test_cleanup_is_skipped_and_one_success_runs_when_nothing_failed(
    celery_workers, tenant, admin_user
):
    flow, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[
            "a",
            "b",
            {"name": "cleanup", "trigger_rule": "one_failed"},
            {"name": "either", "trigger_rule": "one_success"},
            {"name": "all_bad", "trigger_rule": "all_failed"},
        ],
        edges=[("a", "cleanup"), ("a", "either"), ("b", "either"), ("a", "all_bad")],
    )
    run = run_start(flow=flow, mode="point_in_time", user=admin_user, business_time=BT)
    assert finished(run).status == "succeeded"
    assert statuses(run) == {
        "a": "succeeded",
        "b": "succeeded",
        "cleanup": "skipped",
        "either": "succeeded",
        "all_bad": "skipped",
    }


def test_disabled_node_is_not_executed_and_its_downstream_runs(
    celery_workers, http_server, tenant, admin_user, api
):
    # Given a disabled http node that would fail if it ran
    flow, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[
            "first",
            {
                "name": "off",
                "type": "http",
                "config": {"url": http_server.url("status/500")},
                "enabled": False,
            },
            "after",
            {"name": "off_root", "enabled": False},
        ],
        edges=[("first", "off"), ("off", "after")],
    )
    run = run_start(flow=flow, mode="point_in_time", user=admin_user, business_time=BT)
    assert finished(run).status == "succeeded"
    assert statuses(run) == {
        "first": "succeeded",
        "off": "disabled",
        "after": "succeeded",
        "off_root": "disabled",
    }
    assert not http_server.hits  # never called
    body = api(admin_user, tenant).get(f"/api/v1/runs/{run.pk}/").json()
    shown = {nr["node_name"]: nr for nr in body["node_runs"]}
    assert shown["off"]["status"] == "disabled" and shown["off"]["started_at"] is None


def test_node_scoped_try_run_and_a_dry_run_satisfying_a_dependant(
    celery_workers, tenant, admin_user
):
    # Given a flow whose dependency check waits for `upstream` at the same hour
    upstream, _ = build_flow(tenant=tenant, owner=admin_user, nodes=["load"], name="upstream")
    dep = {
        "name": "dep",
        "type": "dependency_check",
        "config": {"flow": upstream.pk, "cycle": "hour", "offset": 0, "poll_s": 1},
    }
    flow, nodes = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=["first", dep, "after"],
        edges=[("first", "dep"), ("dep", "after")],
    )
    # When a try run starts from dep: it passes without checking, first is not run
    run = run_start(flow=flow, mode="try", user=admin_user, from_node=nodes["dep"].pk)
    assert finished(run).status == "succeeded"
    assert statuses(run) == {"first": "not_run", "dep": "succeeded", "after": "succeeded"}
    # And a whole run at BT waits until a dry run of upstream at BT records a success
    run = run_start(flow=flow, mode="point_in_time", user=admin_user, business_time=BT)
    wait_for(
        lambda: NodeRun.objects.filter(run=run, node_name="dep", status="deferred").exists(),
        timeout=30,
        what="the dependency check to wait",
    )
    dry = run_start(flow=upstream, mode="dry", user=admin_user, business_time=BT)
    assert finished(dry).status == "succeeded" and dry.business_time == BT
    assert finished(run).status == "succeeded"
