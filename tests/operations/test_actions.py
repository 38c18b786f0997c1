"""O&M actions through the API: rerun, restore, rerun from a node, mark a node succeeded."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from flows.services import flow_publish, flow_stakeholders_set
from flows.services.graph import node_update
from operations.models import FlowRun, NodeRun, RunEvent
from operations.services import control, lifecycle, run_create_scheduled, run_start
from tests.factories import build_flow
from tests.operations.helpers import latest, script

pytestmark = pytest.mark.django_db


def attempts(run) -> dict:
    """{node name: number of attempts} of a run."""
    return {name: nr.attempt for name, nr in latest(run).items()}


def statuses(run) -> dict:
    return {name: nr.status for name, nr in latest(run).items()}


@pytest.fixture
def failing_flow(tenant, member_user):
    """a -> b -> c, with b failing its first attempt only (no retries), plus d on its own."""
    flow, _ = build_flow(
        tenant=tenant,
        owner=member_user,
        nodes=["a", script("b", fail_attempts=1), "c", "d"],
        edges=[("a", "b"), ("b", "c")],
        concurrency_policy="ignore",
        error_policy="complete_unrelated",
    )
    return flow


@pytest.fixture
def failed_run(failing_flow, member_user, engine):
    run = engine.call(run_start, flow=failing_flow, mode="try", user=member_user)
    engine.drain()
    run.refresh_from_db()
    assert run.status == "failed"
    assert statuses(run) == {
        "a": "succeeded",
        "b": "failed",
        "c": "upstream_failed",
        "d": "succeeded",
    }
    return run


def post(client, engine, url):
    """POST as the API would, the engine's messages collected for drain()."""
    return engine.call(client.post, url)


# --------------------------------------------------------------------------- restore


def test_restore_reruns_failed_and_not_run_nodes_in_the_same_run(
    api, failed_run, member_user, engine
):
    res = post(api(member_user), engine, f"/api/v1/runs/{failed_run.pk}/restore/")

    assert res.status_code == 200, res.content
    assert res.json()["status"] == "running" and res.json()["finished_at"] is None
    assert attempts(failed_run) == {"a": 1, "b": 2, "c": 2, "d": 1}
    engine.drain()
    failed_run.refresh_from_db()
    assert failed_run.status == "succeeded" and failed_run.nodes_open == 0
    assert set(statuses(failed_run).values()) == {"succeeded"}
    assert NodeRun.objects.filter(run=failed_run, node_name="b").count() == 2
    restored = RunEvent.objects.get(run=failed_run, kind=control.RUN_RESTORED)
    assert restored.user == member_user


def test_restore_of_a_succeeded_or_active_run_is_a_409(api, failing_flow, member_user, engine):
    active = engine.call(run_start, flow=failing_flow, mode="dry", user=member_user)
    res = api(member_user).post(f"/api/v1/runs/{active.pk}/restore/")
    assert res.status_code == 409 and "stop it" in str(res.json())

    engine.drain()
    active.refresh_from_db()
    assert active.status == "succeeded"
    res = api(member_user).post(f"/api/v1/runs/{active.pk}/restore/")
    assert res.status_code == 409 and "nothing to restore" in str(res.json())
    assert attempts(active) == {"a": 1, "b": 1, "c": 1, "d": 1}


def test_a_stopped_run_is_restored(api, failing_flow, member_user, engine):
    run = engine.call(run_start, flow=failing_flow, mode="dry", user=member_user)
    assert post(api(member_user), engine, f"/api/v1/runs/{run.pk}/stop/").status_code == 200
    run.refresh_from_db()
    assert run.status == "stopped"
    engine.drain()  # the revoked node messages find their nodes stopped

    assert post(api(member_user), engine, f"/api/v1/runs/{run.pk}/restore/").status_code == 200
    engine.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert set(attempts(run).values()) == {2}


# --------------------------------------------------------------------------- rerun


def test_rerun_creates_a_new_run_of_the_same_mode_and_business_time(
    api, failed_run, member_user, other_member, failing_flow, engine
):
    flow_stakeholders_set(flow=failing_flow, user=member_user, users=[other_member.pk])
    res = post(api(other_member), engine, f"/api/v1/runs/{failed_run.pk}/rerun/")

    assert res.status_code == 201, res.content
    body = res.json()
    assert body["id"] != failed_run.pk
    assert (body["mode"], body["trigger"], body["triggered_by"]) == (
        "try",
        "rerun",
        other_member.pk,
    )
    new = FlowRun.objects.get(pk=body["id"])
    assert new.business_time == failed_run.business_time
    assert new.snapshot == FlowRun.objects.get(pk=failed_run.pk).snapshot
    engine.drain()
    new.refresh_from_db()
    # b failed its first attempt only: in a new run it is attempt 1 again, so it fails again.
    assert new.status == "failed" and statuses(new)["b"] == "failed"
    assert RunEvent.objects.filter(
        run=failed_run, kind=control.RUN_RERUN, user=other_member
    ).exists()


def test_rerun_honours_the_skip_policy(api, failing_flow, member_user, engine):
    failing_flow.concurrency_policy = "skip"
    failing_flow.save()
    first = engine.call(run_start, flow=failing_flow, mode="dry", user=member_user)
    engine.drain()
    second = engine.call(run_start, flow=failing_flow, mode="dry", user=member_user)  # stays active

    res = post(api(member_user), engine, f"/api/v1/runs/{first.pk}/rerun/")

    assert res.status_code == 201
    assert res.json()["status"] == "skipped" and str(second.pk) in res.json()["skip_reason"]


def test_rerun_and_restore_use_the_version_that_ran(api, tenant, admin_user, engine):
    flow, nodes = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=["a", script("b", fail_attempts=1, output={"v": 1})],
        edges=[("a", "b")],
        concurrency_policy="ignore",
    )
    v1 = flow_publish(flow=flow, user=admin_user)
    run = engine.call(
        run_create_scheduled, flow_id=flow.pk, fire_time=dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    )
    engine.drain()
    run.refresh_from_db()
    assert run.status == "failed"
    node_update(node=nodes["b"], user=admin_user, config={"output": {"v": 2}})
    v2 = flow_publish(flow=flow, user=admin_user)
    assert v2.pk != v1.pk

    rerun = post(api(admin_user), engine, f"/api/v1/runs/{run.pk}/rerun/")
    restore = post(api(admin_user), engine, f"/api/v1/runs/{run.pk}/restore/")
    engine.drain()

    assert rerun.status_code == 201 and restore.status_code == 200
    new = FlowRun.objects.get(pk=rerun.json()["id"])
    assert new.version_id == v1.pk and new.mode == "scheduled"
    assert new.business_time == run.business_time
    assert latest(new)["b"].rendered_config["output"] == {"v": 1}
    run.refresh_from_db()
    assert run.version_id == v1.pk and run.status == "succeeded"
    b = latest(run)["b"]
    assert (b.attempt, b.output) == (2, {"v": 1})


# --------------------------------------------------------------------------- rerun from a node


def test_rerun_from_reruns_exactly_the_node_and_its_descendants(api, tenant, admin_user, engine):
    flow, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=["a", "b", "c", "d", "e"],
        edges=[("a", "b"), ("b", "c"), ("a", "d")],
        concurrency_policy="ignore",
    )
    run = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    engine.drain()
    b = latest(run)["b"]

    res = post(api(admin_user), engine, f"/api/v1/node-runs/{b.pk}/rerun-from/")

    assert res.status_code == 200, res.content
    assert res.json()["status"] == "running"
    engine.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert attempts(run) == {"a": 1, "b": 2, "c": 2, "d": 1, "e": 1}
    assert set(NodeRun.objects.filter(run=run, attempt=2).values_list("node_name", flat=True)) == {
        "b",
        "c",
    }
    assert set(statuses(run).values()) == {"succeeded"}
    event = RunEvent.objects.get(run=run, kind=control.NODE_RERUN_FROM)
    assert event.user == admin_user and event.node_run_id == b.pk


def test_rerun_from_while_the_run_is_active_is_a_409(api, failing_flow, member_user, engine):
    run = engine.call(run_start, flow=failing_flow, mode="dry", user=member_user)
    a = latest(run)["a"]
    res = api(member_user).post(f"/api/v1/node-runs/{a.pk}/rerun-from/")
    assert res.status_code == 409 and "still" in str(res.json())
    assert NodeRun.objects.filter(run=run, attempt=2).count() == 0


# --------------------------------------------------------------------------- mark success


def test_mark_success_lets_the_downstream_run(api, failed_run, member_user, engine):
    b = latest(failed_run)["b"]

    res = post(api(member_user), engine, f"/api/v1/node-runs/{b.pk}/mark-success/")

    assert res.status_code == 200, res.content
    engine.drain()
    failed_run.refresh_from_db()
    assert failed_run.status == "succeeded" and failed_run.finished_at is not None
    assert attempts(failed_run) == {"a": 1, "b": 1, "c": 2, "d": 1}
    assert set(statuses(failed_run).values()) == {"succeeded"}
    b.refresh_from_db()
    assert f"marked succeeded by {member_user.username}" in b.log
    event = RunEvent.objects.get(run=failed_run, kind=control.NODE_MARKED_SUCCEEDED)
    assert event.user == member_user and event.node_run_id == b.pk


def test_mark_success_reruns_the_nodes_the_error_policy_stopped(api, tenant, admin_user, engine):
    flow, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[script("a", fail=True), "b", "c"],
        edges=[("a", "b")],
        error_policy="stop_all",
        concurrency_policy="ignore",
    )
    run = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    # a runs (and fails) before c, whatever order the two roots were sent in: stop_all then
    # stops c, still queued.
    a = latest(run)["a"].pk
    engine.nodes.remove(a)
    engine.call(lifecycle.node_execute, a)
    engine.drain()
    run.refresh_from_db()
    assert run.status == "failed", statuses(run)
    stopped = {n for n, s in statuses(run).items() if s == "stopped"}
    assert stopped, statuses(run)

    res = post(api(admin_user), engine, f"/api/v1/node-runs/{latest(run)['a'].pk}/mark-success/")
    engine.drain()

    assert res.status_code == 200
    run.refresh_from_db()
    assert run.status == "succeeded", statuses(run)


def test_marking_a_node_that_did_not_fail_is_a_409(api, failing_flow, member_user, engine):
    run = engine.call(run_start, flow=failing_flow, mode="dry", user=member_user)
    client = api(member_user)
    pending = latest(run)["b"]
    res = client.post(f"/api/v1/node-runs/{pending.pk}/mark-success/")
    assert res.status_code == 409 and "pending" in str(res.json())

    a = latest(run)["a"]
    assert lifecycle.node_claim(a.pk) is not None  # a worker took it: running
    res = client.post(f"/api/v1/node-runs/{a.pk}/mark-success/")
    assert res.status_code == 409 and "running" in str(res.json())

    dry = engine.call(run_start, flow=failing_flow, mode="dry", user=member_user)
    engine.drain()
    done = latest(dry)["a"]
    res = client.post(f"/api/v1/node-runs/{done.pk}/mark-success/")
    assert res.status_code == 409 and "succeeded" in str(res.json())


def test_marking_an_earlier_attempt_is_a_409(api, failed_run, member_user, engine):
    b1 = latest(failed_run)["b"]
    post(api(member_user), engine, f"/api/v1/runs/{failed_run.pk}/restore/")
    engine.drain()
    res = api(member_user).post(f"/api/v1/node-runs/{b1.pk}/mark-success/")
    assert res.status_code == 409 and "earlier attempt" in str(res.json())


# --------------------------------------------------------------------------- who may act


def _url(action, run):
    if action in ("rerun", "restore"):
        return f"/api/v1/runs/{run.pk}/{action}/"
    return f"/api/v1/node-runs/{latest(run)['b'].pk}/{action}/"


ACTIONS = [("rerun", 201), ("restore", 200), ("rerun-from", 200), ("mark-success", 200)]
# The event each action records, with who did it.
ACTION_EVENTS = {
    "rerun": control.RUN_RERUN,
    "restore": control.RUN_RESTORED,
    "rerun-from": control.NODE_RERUN_FROM,
    "mark-success": control.NODE_MARKED_SUCCEEDED,
}


@pytest.mark.parametrize(("action", "code"), ACTIONS)
@pytest.mark.parametrize("who", ["owner", "stakeholder", "admin_user", "dba_user"])
def test_who_may_act(
    request, api, failed_run, failing_flow, member_user, other_member, engine, action, code, who
):
    if who == "owner":
        user = member_user
    elif who == "stakeholder":
        flow_stakeholders_set(flow=failing_flow, user=member_user, users=[other_member.pk])
        user = other_member
    else:
        user = request.getfixturevalue(who)
    res = post(api(user), engine, _url(action, failed_run))
    assert res.status_code == code, res.content
    engine.drain()
    # The action's own event, not the run-created event of the fixture's owner.
    assert RunEvent.objects.filter(run=failed_run, kind=ACTION_EVENTS[action], user=user).exists()


@pytest.mark.parametrize(("action", "code"), ACTIONS)
@pytest.mark.parametrize(
    ("who", "expected"), [("public", 403), ("private", 404), ("outsider", 404)]
)
def test_who_may_not_act(
    api, failed_run, failing_flow, other_member, outsider, action, code, who, expected
):
    if who == "public":
        failing_flow.is_public = True
        failing_flow.save()
    user = outsider if who == "outsider" else other_member
    before = NodeRun.objects.count(), FlowRun.objects.count()

    res = api(user).post(_url(action, failed_run))

    assert res.status_code == expected, res.content
    assert (NodeRun.objects.count(), FlowRun.objects.count()) == before
    failed_run.refresh_from_db()
    assert failed_run.status == "failed"


# --------------------------------------------------------------------------- at the same time


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs row locks")
def test_operators_restoring_at_once_restore_the_run_once(failing_flow, member_user, monkeypatch):
    from accounts.errors import ConflictError
    from operations import dispatch
    from operations.services import run_stop
    from tests.operations.test_concurrency import fire_together

    monkeypatch.setattr(dispatch, "publisher", lambda items: None)
    monkeypatch.setattr(dispatch, "relay_publisher", lambda items: None)
    monkeypatch.setattr(dispatch, "run_publisher", lambda name, arg: None)
    monkeypatch.setattr(dispatch, "revoke", lambda ids: None)
    run = run_start(flow=failing_flow, mode="dry", user=member_user)
    run_stop(run=run, user=member_user)

    def restore():
        try:
            return control.run_restore(run=FlowRun.objects.get(pk=run.pk), user=member_user).status
        except ConflictError as exc:
            return exc.message

    results = fire_together(8, restore)

    assert len([r for r in results if r in ("queued", "running")]) == 1, results
    assert RunEvent.objects.filter(run=run, kind=control.RUN_RESTORED).count() == 1
    assert set(attempts(run).values()) == {2}
    assert NodeRun.objects.filter(run=run).count() == 8
    run.refresh_from_db()
    assert run.nodes_open == 4 and run.status in ("queued", "running")


# --------------------------------------------------------------------------- real workers


@pytest.mark.integration
def test_on_workers_mark_success_then_rerun_from_run_the_downstream(
    celery_workers, http_server, tenant, admin_user, api
):
    from tests.integration.workers import wait_for

    flow, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[
            {"name": "fetch", "type": "http", "config": {"url": http_server.url("status/500")}},
            "load",
        ],
        edges=[("fetch", "load")],
        concurrency_policy="ignore",
    )
    run = run_start(flow=flow, mode="try", user=admin_user)

    def ended(status):
        def check():
            run.refresh_from_db()
            return run.status == status

        return check

    wait_for(ended("failed"), timeout=30, what="the run to fail")
    assert statuses(run) == {"fetch": "failed", "load": "upstream_failed"}

    fetch = latest(run)["fetch"]
    assert api(admin_user).post(f"/api/v1/node-runs/{fetch.pk}/mark-success/").status_code == 200
    wait_for(ended("succeeded"), timeout=30, what="the downstream to run after mark-success")
    assert statuses(run) == {"fetch": "succeeded", "load": "succeeded"}
    assert attempts(run) == {"fetch": 1, "load": 2}

    load = latest(run)["load"]
    assert api(admin_user).post(f"/api/v1/node-runs/{load.pk}/rerun-from/").status_code == 200
    wait_for(ended("succeeded"), timeout=30, what="the rerun from load to finish")
    assert attempts(run) == {"fetch": 1, "load": 3}


def test_mark_success_leaves_nodes_another_failure_still_blocks(api, tenant, admin_user, engine):
    flow, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[script("a", fail=True), script("b", fail=True), "c", "d"],
        edges=[("a", "c"), ("b", "c"), ("a", "d")],
        error_policy="complete_unrelated",
        concurrency_policy="ignore",
    )
    run = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    engine.drain()
    a = latest(run)["a"]

    res = post(api(admin_user), engine, f"/api/v1/node-runs/{a.pk}/mark-success/")
    engine.drain()

    assert res.status_code == 200
    run.refresh_from_db()
    assert run.status == "failed"
    assert statuses(run) == {
        "a": "succeeded",
        "b": "failed",
        "c": "upstream_failed",
        "d": "succeeded",
    }
    assert attempts(run) == {"a": 1, "b": 1, "c": 1, "d": 2}
