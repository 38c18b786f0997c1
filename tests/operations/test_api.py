"""The runs API: who may start, see and operate runs; bad input; constant query counts."""

from __future__ import annotations

import datetime as dt

import pytest

from flows.services import flow_stakeholders_set
from operations.models import FlowRun, NodeRun
from operations.services import run_start
from tests.factories import ScheduleFactory, build_flow, chain_flow
from tests.operations.helpers import script

pytestmark = pytest.mark.django_db


@pytest.fixture
def flow(tenant, member_user):
    flow, _ = chain_flow(tenant=tenant, owner=member_user, length=2, concurrency_policy="ignore")
    return flow


def runs_url(flow):
    return f"/api/v1/flows/{flow.pk}/runs/"


# --------------------------------------------------------------------------- starting runs


def test_owner_try_runs_and_gets_the_run_with_its_nodes(api, flow, member_user, engine):
    res = engine.call(api(member_user).post, runs_url(flow), {"mode": "try"}, format="json")

    assert res.status_code == 201, res.content
    body = res.json()
    assert body["mode"] == "try" and body["trigger"] == "manual" and body["status"] == "queued"
    assert body["version"] is None and body["triggered_by"] == member_user.pk
    assert [n["node_name"] for n in body["node_runs"]] == ["n1", "n2"]
    assert {n["status"] for n in body["node_runs"]} == {"queued", "pending"}
    engine.drain()
    detail = api(member_user).get(f"/api/v1/runs/{body['id']}/").json()
    assert detail["status"] == "succeeded"
    assert [(n["status"], n["attempts"]) for n in detail["node_runs"]] == [("succeeded", 1)] * 2


@pytest.mark.parametrize("who", ["stakeholder", "admin_user", "dba_user"])
def test_stakeholders_admins_and_dbas_may_test_run(
    request, api, flow, member_user, other_member, who
):
    if who == "stakeholder":
        flow_stakeholders_set(flow=flow, user=member_user, users=[other_member.pk])
        user = other_member
    else:
        user = request.getfixturevalue(who)
    res = api(user).post(runs_url(flow), {"mode": "dry"}, format="json")
    assert res.status_code == 201, res.content


def test_other_members_may_see_a_public_flows_runs_but_not_start_or_stop_them(
    api, flow, member_user, other_member
):
    flow.is_public = True
    flow.save()
    run = run_start(flow=flow, mode="try", user=member_user)

    assert api(other_member).post(runs_url(flow), {"mode": "try"}, format="json").status_code == 403
    assert api(other_member).get(f"/api/v1/runs/{run.pk}/").status_code == 200
    assert api(other_member).post(f"/api/v1/runs/{run.pk}/stop/").status_code == 403
    assert FlowRun.objects.get(pk=run.pk).status == "queued"


def test_private_flows_and_their_runs_are_invisible_to_other_members(
    api, flow, member_user, other_member
):
    run = run_start(flow=flow, mode="try", user=member_user)
    node_run = NodeRun.objects.filter(run=run).first()

    client = api(other_member)
    assert client.post(runs_url(flow), {"mode": "try"}, format="json").status_code == 404
    assert client.get(runs_url(flow)).status_code == 404
    assert client.get(f"/api/v1/runs/{run.pk}/").status_code == 404
    assert client.post(f"/api/v1/runs/{run.pk}/stop/").status_code == 404
    assert client.get(f"/api/v1/node-runs/{node_run.pk}/log/").status_code == 404
    assert client.get("/api/v1/runs/").json()["count"] == 0


def test_another_tenants_runs_answer_404(api, flow, member_user, outsider):
    run = run_start(flow=flow, mode="try", user=member_user)
    client = api(outsider)
    assert client.get(f"/api/v1/runs/{run.pk}/").status_code == 404
    assert client.post(f"/api/v1/runs/{run.pk}/pause/").status_code == 404
    assert client.post(runs_url(flow), {"mode": "try"}, format="json").status_code == 404
    assert client.get("/api/v1/runs/").json()["count"] == 0


def test_anonymous_requests_are_refused(api, flow, member_user):
    run = run_start(flow=flow, mode="try", user=member_user)
    assert api().get("/api/v1/runs/").status_code in (401, 403)
    assert api().post(f"/api/v1/runs/{run.pk}/stop/").status_code in (401, 403)
    assert api().post(runs_url(flow), {"mode": "try"}, format="json").status_code in (401, 403)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"mode": "sometimes"}, "mode"),
        ({}, "mode"),
        ({"mode": "point_in_time"}, "business_time"),
        ({"mode": "point_in_time", "business_time": "yesterday"}, "business_time"),
        ({"mode": "try", "parallelism": 0}, "parallelism"),
        ({"mode": "try", "parallelism": 33}, "parallelism"),
        ({"mode": "try", "parallelism": "many"}, "parallelism"),
        ({"mode": "try", "order": "sideways"}, "order"),
        (
            {"mode": "time_range", "start": "2024-01-02T00:00:00Z", "end": "2024-01-01T00:00:00Z"},
            "end",
        ),
        (
            {"mode": "time_range", "start": "2024-01-01T00:00:00Z", "end": "2024-01-03T00:00:00Z"},
            "start",
        ),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, flow, member_user, payload, field):
    res = api(member_user).post(runs_url(flow), payload, format="json")
    assert res.status_code == 400
    assert field in res.json(), res.json()
    assert not FlowRun.objects.exists()


def test_a_time_range_answers_its_runs(api, flow, member_user, engine):
    ScheduleFactory(flow=flow, cron="0 6 * * *", start_date=dt.date(2024, 1, 1))
    res = engine.call(
        api(member_user).post,
        runs_url(flow),
        {
            "mode": "time_range",
            "start": "2024-01-01T00:00:00Z",
            "end": "2024-01-03T23:00:00Z",
            "parallelism": 2,
        },
        format="json",
    )
    assert res.status_code == 201, res.content
    runs = res.json()["runs"]
    assert [r["business_time"] for r in runs] == [
        "2024-01-01T06:00:00Z",
        "2024-01-02T06:00:00Z",
        "2024-01-03T06:00:00Z",
    ]
    assert {r["trigger"] for r in runs} == {"backfill"}
    too_long = api(member_user).post(
        runs_url(flow),
        {"mode": "time_range", "start": "2024-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
        format="json",
    )
    assert too_long.status_code == 400 and "end" in too_long.json()


# --------------------------------------------------------------------------- reading runs


def test_runs_list_filters(api, tenant, flow, member_user, admin_user, engine):
    other, _ = chain_flow(tenant=tenant, owner=admin_user, length=1, name="other")
    first = engine.call(run_start, flow=flow, mode="try", user=member_user)
    engine.drain()
    engine.call(run_start, flow=flow, mode="dry", user=admin_user)
    engine.call(
        run_start,
        flow=other,
        mode="point_in_time",
        user=admin_user,
        business_time=dt.datetime(2023, 5, 1, tzinfo=dt.UTC),
    )
    client = api(admin_user)

    def ids(query):
        res = client.get(f"/api/v1/runs/{query}")
        assert res.status_code == 200, res.content
        return [r["id"] for r in res.json()["results"]]

    assert len(ids("")) == 3
    assert ids(f"?flow={other.pk}") == list(
        FlowRun.objects.filter(flow=other).values_list("pk", flat=True)
    )
    assert ids("?status=succeeded") == [first.pk]
    assert len(ids("?mode=dry")) == 1
    assert len(ids(f"?triggered_by={member_user.pk}")) == 1
    assert len(ids("?business_time_before=2024-01-01T00:00:00Z")) == 1
    assert len(ids("?business_time_after=2024-01-01T00:00:00Z")) == 2
    assert len(ids("?trigger=manual")) == 3
    assert client.get("/api/v1/runs/?status=bogus").status_code == 400
    assert "status" in client.get("/api/v1/runs/?status=bogus").json()
    assert len(api(member_user).get(runs_url(flow)).json()["results"]) == 2


def test_a_member_lists_runs_of_public_and_own_flows_only(
    api, tenant, flow, member_user, other_member, admin_user
):
    public, _ = chain_flow(tenant=tenant, owner=admin_user, length=1, name="public", is_public=True)
    private, _ = chain_flow(tenant=tenant, owner=admin_user, length=1, name="private")
    for f in (flow, public, private):
        run_start(flow=f, mode="try", user=admin_user)
    seen = {r["flow_name"] for r in api(other_member).get("/api/v1/runs/").json()["results"]}
    assert seen == {"public"}
    seen = {r["flow_name"] for r in api(member_user).get("/api/v1/runs/").json()["results"]}
    assert seen == {flow.name, "public"}


def test_runs_list_query_count_does_not_grow_with_runs(
    api, tenant, member_user, other_member, django_assert_max_num_queries
):
    flow, _ = chain_flow(
        tenant=tenant, owner=member_user, length=1, concurrency_policy="ignore", is_public=True
    )
    run_start(flow=flow, mode="try", user=member_user)
    client = api(other_member)
    client.get("/api/v1/runs/")  # warm caches (content types, ...)
    with django_assert_max_num_queries(6) as few:
        client.get("/api/v1/runs/")
    for _ in range(10):
        run_start(flow=flow, mode="try", user=member_user)
    with django_assert_max_num_queries(len(few.captured_queries)):
        res = client.get("/api/v1/runs/")
    assert res.json()["count"] == 11


def test_run_detail_shows_the_latest_attempt_and_the_number_of_attempts(
    api, tenant, member_user, engine
):
    flow, _ = build_flow(
        tenant=tenant, owner=member_user, nodes=[script("flaky", fail_attempts=1, retries=1)]
    )
    run = engine.call(run_start, flow=flow, mode="try", user=member_user)
    engine.drain()
    body = api(member_user).get(f"/api/v1/runs/{run.pk}/").json()
    assert body["status"] == "succeeded"
    [node] = body["node_runs"]
    assert (node["status"], node["attempt"], node["attempts"]) == ("succeeded", 2, 2)
    assert node["started_at"] and node["finished_at"] and node["output"] == {}


def test_node_run_log_is_readable(api, tenant, member_user, engine):
    flow, _ = build_flow(
        tenant=tenant, owner=member_user, nodes=[script("talk", log_lines=["hello", "world"])]
    )
    run = engine.call(run_start, flow=flow, mode="try", user=member_user)
    engine.drain()
    node_run = NodeRun.objects.get(run=run)
    body = api(member_user).get(f"/api/v1/node-runs/{node_run.pk}/log/").json()
    assert body["status"] == "succeeded" and not body["truncated"]
    lines = body["log"].splitlines()
    assert lines[1].endswith(" hello") and lines[2].endswith(" world")
    assert lines[0][:4].isdigit()  # timestamped


# --------------------------------------------------------------------------- actions


def test_stop_pause_resume_through_the_api(api, flow, member_user, engine):
    run = engine.call(run_start, flow=flow, mode="try", user=member_user)
    client = api(member_user)

    res = engine.call(client.post, f"/api/v1/runs/{run.pk}/pause/")
    assert res.status_code == 200 and res.json()["status"] == "paused"
    assert client.post(f"/api/v1/runs/{run.pk}/pause/").status_code == 409
    res = engine.call(client.post, f"/api/v1/runs/{run.pk}/resume/")
    assert res.status_code == 200 and res.json()["status"] == "queued"
    res = engine.call(client.post, f"/api/v1/runs/{run.pk}/stop/")
    assert res.status_code == 200 and res.json()["status"] == "stopped"
    assert {n["status"] for n in res.json()["node_runs"]} == {"stopped"}
    assert client.post(f"/api/v1/runs/{run.pk}/stop/").status_code == 409


@pytest.mark.django_db
def test_out_of_range_ids_and_dates_are_400_not_500(api, tenant, admin_user):
    from tests.factories import FlowFactory

    client = api(admin_user)
    res = client.get("/api/v1/runs/?flow=1180591620717411303424")
    assert res.status_code == 400 and "flow" in res.json()
    res = client.get("/api/v1/runs/?triggered_by=99999999999999999999999")
    assert res.status_code == 400 and "triggered_by" in res.json()
    flow = FlowFactory(tenant=tenant, owner=admin_user)
    client.put(
        f"/api/v1/flows/{flow.pk}/schedule/",
        {"cron": "0 0 * * *", "timezone": "UTC"},
        format="json",
    )
    res = client.post(
        f"/api/v1/flows/{flow.pk}/runs/",
        {"mode": "time_range", "start": "0001-01-01T00:00:00Z", "end": "9999-12-31T00:00:00Z"},
        format="json",
    )
    assert res.status_code == 400, res.content


def test_finished_run_detail_names_its_critical_path(api, tenant, member_user, engine):
    # Given: a diamond a → (fast, slow) → z whose slow branch took longest
    import datetime as _dt

    flow, _ = build_flow(
        tenant=tenant,
        owner=member_user,
        nodes=["a", "fast", "slow", "z"],
        edges=[("a", "fast"), ("a", "slow"), ("fast", "z"), ("slow", "z")],
    )
    res = engine.call(api(member_user).post, runs_url(flow), {"mode": "try"}, format="json")
    run_id = res.json()["id"]
    assert api(member_user).get(f"/api/v1/runs/{run_id}/").json()["critical_path"] == []
    engine.drain()
    start = _dt.datetime(2024, 1, 1, tzinfo=_dt.UTC)
    spans = {"a": (0, 1), "fast": (1, 2), "slow": (1, 6), "z": (6, 7)}
    for name, (begin, end) in spans.items():
        NodeRun.objects.filter(run_id=run_id, node_name=name).update(
            started_at=start + _dt.timedelta(seconds=begin),
            finished_at=start + _dt.timedelta(seconds=end),
        )
    # When: the finished run is read; Then: the chain through the slow branch is named
    path = api(member_user).get(f"/api/v1/runs/{run_id}/").json()["critical_path"]
    assert [(p["node_name"], p["duration_s"]) for p in path] == [
        ("a", 1.0),
        ("slow", 5.0),
        ("z", 1.0),
    ]
