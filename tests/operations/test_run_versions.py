"""Which version a run executes: the draft, the latest published version or a number."""

from __future__ import annotations

import pytest

from flows.services import flow_publish
from operations.models import FlowRun
from tests.factories import ScheduleFactory, chain_flow

pytestmark = pytest.mark.django_db

BT = "2024-01-15T10:00:00Z"


@pytest.fixture
def flow(tenant, member_user):
    flow, _ = chain_flow(tenant=tenant, owner=member_user, length=2, concurrency_policy="ignore")
    return flow


def _post(api, user, flow, body):
    return api(user).post(f"/api/v1/flows/{flow.pk}/runs/", body, format="json")


def _edit_after_publishing(flow, user):
    """Version 1 has nodes n1, n2; the draft gains n3."""
    flow_publish(flow=flow, user=user)
    flow.nodes.create(tenant=flow.tenant, name="n3", type="noop", config={})


def _node_names(body) -> list[str]:
    return [n["node_name"] for n in body["node_runs"]]


def test_point_in_time_runs_the_published_version_by_default(api, flow, member_user):
    _edit_after_publishing(flow, member_user)

    res = _post(api, member_user, flow, {"mode": "point_in_time", "business_time": BT})

    assert res.status_code == 201, res.content
    assert res.json()["version"] == 1
    assert _node_names(res.json()) == ["n1", "n2"]
    assert FlowRun.objects.get(pk=res.json()["id"]).snapshot is None


def test_time_range_runs_the_published_version_by_default(api, flow, member_user):
    ScheduleFactory(flow=flow, cron="0 6 * * *")
    _edit_after_publishing(flow, member_user)

    res = _post(
        api,
        member_user,
        flow,
        {"mode": "time_range", "start": "2024-01-15T00:00:00Z", "end": "2024-01-16T23:00:00Z"},
    )

    assert res.status_code == 201, res.content
    runs = res.json()["runs"]
    assert runs and {r["version"] for r in runs} == {1}


@pytest.mark.parametrize("mode", ["try", "dry"])
def test_try_and_dry_runs_run_the_draft_by_default(api, flow, member_user, mode):
    _edit_after_publishing(flow, member_user)

    res = _post(api, member_user, flow, {"mode": mode})

    assert res.status_code == 201, res.content
    assert res.json()["version"] is None
    assert _node_names(res.json()) == ["n1", "n2", "n3"]


def test_point_in_time_of_a_never_published_flow_runs_the_draft(api, flow, member_user):
    res = _post(api, member_user, flow, {"mode": "point_in_time", "business_time": BT})

    assert res.status_code == 201, res.content
    assert res.json()["version"] is None


@pytest.mark.parametrize(
    ("version", "expected", "names"),
    [
        ("draft", None, ["n1", "n2", "n3"]),
        ("published", 2, ["n1", "n2", "n3"]),
        (1, 1, ["n1", "n2"]),
        ("1", 1, ["n1", "n2"]),
    ],
)
def test_a_request_names_the_version(api, flow, member_user, version, expected, names):
    _edit_after_publishing(flow, member_user)
    flow.refresh_from_db()
    flow_publish(flow=flow, user=member_user)  # version 2 has n3

    res = _post(api, member_user, flow, {"mode": "try", "version": version})

    assert res.status_code == 201, res.content
    assert res.json()["version"] == expected
    assert _node_names(res.json()) == names


@pytest.mark.parametrize("version", [7, "published", "latest", 0, -1, True, {"n": 1}])
def test_a_version_that_does_not_exist_is_a_400_naming_version(api, flow, member_user, version):
    # Given a flow never published, nothing but the draft exists.
    res = _post(
        api, member_user, flow, {"mode": "point_in_time", "business_time": BT, "version": version}
    )

    assert res.status_code == 400, res.content
    assert "version" in res.json()
    assert not FlowRun.objects.exists()


def test_another_flows_version_number_is_not_this_flows(api, tenant, flow, member_user):
    other, _ = chain_flow(tenant=tenant, owner=member_user, length=1)
    flow_publish(flow=other, user=member_user)

    res = _post(api, member_user, flow, {"mode": "try", "version": 1})

    assert res.status_code == 400 and "version" in res.json()


def test_rerun_keeps_the_version_the_run_ran(api, flow, member_user, engine):
    _edit_after_publishing(flow, member_user)
    res = engine.call(_post, api, member_user, flow, {"mode": "point_in_time", "business_time": BT})
    engine.drain()
    run_id = res.json()["id"]

    again = engine.call(api(member_user).post, f"/api/v1/runs/{run_id}/rerun/")

    assert again.status_code in (200, 201), again.content
    assert again.json()["version"] == 1
    assert _node_names(again.json()) == ["n1", "n2"]
