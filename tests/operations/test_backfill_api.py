"""Selective and cascading backfills through POST /flows/{id}/runs/ (mode time_range)."""

from __future__ import annotations

import pytest

from flows.services import flow_publish
from operations.models import FlowRun, NodeRun
from tests.factories import ScheduleFactory, build_flow

pytestmark = pytest.mark.django_db

RANGE = {"mode": "time_range", "start": "2024-01-15T00:00:00Z", "end": "2024-01-17T23:00:00Z"}


@pytest.fixture
def flow(tenant, member_user):
    """a -> b -> c and a -> d, daily at 06:00, published."""
    flow, nodes = build_flow(
        tenant=tenant,
        owner=member_user,
        nodes=["a", "b", "c", "d"],
        edges=[("a", "b"), ("b", "c"), ("a", "d")],
        name="sales",
        concurrency_policy="ignore",
    )
    ScheduleFactory(flow=flow, cron="0 6 * * *")
    flow_publish(flow=flow, user=member_user)
    flow.refresh_from_db()
    flow.n = nodes
    return flow


def _post(api, user, flow, body, engine=None):
    post = api(user).post
    if engine is None:
        return post(f"/api/v1/flows/{flow.pk}/runs/", body, format="json")
    # As a request would: the runs' first nodes leave when its transaction commits.
    return engine.call(post, f"/api/v1/flows/{flow.pk}/runs/", body, format="json")


def _states(run_id) -> dict:
    return dict(NodeRun.objects.filter(run_id=run_id).values_list("node_name", "status"))


def test_start_nodes_run_only_their_subtree_in_every_run(api, flow, member_user, engine):
    res = _post(api, member_user, flow, {**RANGE, "start_nodes": [flow.n["b"].pk]}, engine)

    assert res.status_code == 201, res.content
    runs = res.json()["runs"]
    assert len(runs) == 3
    engine.drain()
    for run in runs:
        assert FlowRun.objects.get(pk=run["id"]).status == "succeeded"
        assert _states(run["id"]) == {
            "a": "not_run",
            "b": "succeeded",
            "c": "succeeded",
            "d": "not_run",
        }


def test_start_nodes_without_downstream(api, flow, member_user, engine):
    body = {**RANGE, "start_nodes": [flow.n["b"].pk], "include_downstream": False}

    res = _post(api, member_user, flow, body, engine)

    assert res.status_code == 201, res.content
    engine.drain()
    for run in res.json()["runs"]:
        assert _states(run["id"]) == {
            "a": "not_run",
            "b": "succeeded",
            "c": "not_run",
            "d": "not_run",
        }
        assert FlowRun.objects.get(pk=run["id"]).status == "succeeded"


@pytest.mark.parametrize("bad", [[999_999], [], ["x"]])
def test_unknown_start_nodes_are_a_400_naming_the_field(api, flow, member_user, bad):
    res = _post(api, member_user, flow, {**RANGE, "start_nodes": bad})

    assert res.status_code == 400, res.content
    assert "start_nodes" in res.json()
    assert not FlowRun.objects.exists()


def test_start_nodes_belong_to_time_ranges(api, flow, member_user):
    res = _post(api, member_user, flow, {"mode": "try", "start_nodes": [flow.n["b"].pk]})

    assert res.status_code == 400 and "start_nodes" in res.json()


# --------------------------------------------------------------------------- only, plan_only


def _plan(api, user, flow, **body):
    res = _post(api, user, flow, {**RANGE, "plan_only": True, **body})
    assert res.status_code == 200, res.content
    return res.json()


def _days(plan) -> list[int]:
    return [int(r["business_time"][8:10]) for r in plan["runs"]]


def test_only_missing_and_failed_pick_their_fire_times(api, flow, member_user, engine):
    from operations.models import OperationRecord

    res = _post(api, member_user, flow, RANGE, engine)
    assert res.status_code == 201, res.content
    engine.drain()
    runs = {int(r["business_time"][8:10]): r["id"] for r in res.json()["runs"]}
    FlowRun.objects.filter(pk=runs[16]).update(status="failed")
    FlowRun.objects.filter(pk=runs[17]).delete()
    records, count = OperationRecord.objects.count(), FlowRun.objects.count()

    assert _days(_plan(api, member_user, flow)) == [15, 16, 17]
    assert _days(_plan(api, member_user, flow, only="missing")) == [16, 17]
    assert _days(_plan(api, member_user, flow, only="failed")) == [16]
    # a plan creates nothing, not even an audit record
    assert (OperationRecord.objects.count(), FlowRun.objects.count()) == (records, count)

    # a later version makes every date missing again (its runs were of version 1)
    flow.nodes.create(tenant=flow.tenant, name="e", type="noop", config={})
    flow_publish(flow=flow, user=member_user)
    plan = _plan(api, member_user, flow, only="missing", start_nodes=[flow.n["d"].pk])
    assert _days(plan) == [15, 16, 17]
    assert plan["count"] == 3 and plan["runs"][0]["nodes"] == ["d"]
    assert plan["runs"][0]["flow"] == flow.pk and plan["runs"][0]["version"] == 2

    res = _post(api, member_user, flow, {**RANGE, "only": "failed", "reason": "fix 16"}, engine)
    assert res.status_code == 201, res.content
    assert [r["business_time"][:10] for r in res.json()["runs"]] == ["2024-01-16"]


def test_only_refuses_unknown_values_and_other_modes(api, flow, member_user):
    res = _post(api, member_user, flow, {**RANGE, "only": "some"})
    assert res.status_code == 400 and "only" in res.json()
    res = _post(api, member_user, flow, {"mode": "try", "plan_only": True})
    assert res.status_code == 400 and "plan_only" in res.json()


# --------------------------------------------------------------------------- downstream_flows


def _dependant(tenant, owner, upstream, name, **fields):
    """A published flow whose dependency check waits for `upstream` on the same day."""
    dep = {
        "name": "wait",
        "type": "dependency_check",
        "config": {"flow": upstream.pk, "cycle": "day", "offset": 0, "poll_s": 1},
    }
    flow, _ = build_flow(
        tenant=tenant,
        owner=owner,
        nodes=[dep, "load"],
        edges=[("wait", "load")],
        name=name,
        concurrency_policy="ignore",
        **fields,
    )
    return flow


@pytest.fixture
def cascade(tenant, member_user, flow):
    """sales <- (waits for) mart (daily at 07:00) <- report (no schedule)."""
    mart = _dependant(tenant, member_user, flow, "mart")
    ScheduleFactory(flow=mart, cron="0 7 * * *")
    flow_publish(flow=mart, user=member_user)
    report = _dependant(tenant, member_user, mart, "report")
    flow_publish(flow=report, user=member_user)
    mart.refresh_from_db()
    report.refresh_from_db()
    return mart, report


def test_downstream_flows_plan_and_run_each_date_in_dependency_order(
    api, flow, cascade, member_user, engine
):
    body = {**RANGE, "end": "2024-01-16T23:00:00Z", "downstream_flows": True}

    plan = _plan(api, member_user, flow, end=body["end"], downstream_flows=True)

    shown = [(r["flow_name"], r["business_time"]) for r in plan["runs"]]
    assert shown == [
        ("sales", "2024-01-15T06:00:00Z"),
        ("mart", "2024-01-15T07:00:00Z"),
        ("report", "2024-01-15T06:00:00Z"),
        ("sales", "2024-01-16T06:00:00Z"),
        ("mart", "2024-01-16T07:00:00Z"),
        ("report", "2024-01-16T06:00:00Z"),
    ]
    assert plan["runs"][1]["nodes"] == ["wait", "load"]
    assert not FlowRun.objects.exists()

    res = _post(api, member_user, flow, body, engine)

    assert res.status_code == 201, res.content
    runs = res.json()["runs"]
    assert [(r["flow"], r["business_time"]) for r in runs] == [
        (r["flow"], r["business_time"]) for r in plan["runs"]
    ]
    engine.drain()
    finished = list(FlowRun.objects.order_by("batch_index"))
    assert [r.status for r in finished] == ["succeeded"] * 6
    # serially, in dependency order: each run started after the one before it finished
    for before, after in zip(finished, finished[1:], strict=False):
        assert after.started_at >= before.finished_at


def test_downstream_flows_need_the_right_to_run_each_flow(
    api, flow, cascade, member_user, other_member
):
    mart, report = cascade
    TaskFlow = type(report)
    TaskFlow.objects.filter(pk=report.pk).update(owner=other_member, is_public=True)

    res = _post(api, member_user, flow, {**RANGE, "downstream_flows": True, "plan_only": True})

    assert res.status_code == 403, res.content
    assert "report" in str(res.json()) and "mart" not in str(res.json())
    res = _post(api, member_user, flow, {**RANGE, "downstream_flows": True})
    assert res.status_code == 403 and not FlowRun.objects.exists()
    # without the cascade the backfill of the caller's own flow is fine
    assert _post(api, member_user, flow, {**RANGE, "plan_only": True}).status_code == 200
