"""The O&M grid (GET /api/v1/runs/grid/): flows by business date in the flow's schedule zone,
the latest run's status per date and every run's id, filters, visibility and query counts."""

from __future__ import annotations

import datetime as dt

import pytest

from operations.services import run_rerun, run_start
from tests.factories import FlowFactory, ScheduleFactory, TenantFactory, build_flow
from tests.operations.helpers import script

pytestmark = pytest.mark.django_db

URL = "/api/v1/runs/grid/"
WINDOW = {"from": "2024-01-13", "to": "2024-01-16"}


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def ran(engine, flow, user, business_time: str, **kwargs):
    """A point-in-time run of the flow, driven to its end by the engine."""
    run = engine.call(
        run_start,
        flow=flow,
        mode="point_in_time",
        user=user,
        business_time=at(business_time),
        **kwargs,
    )
    engine.drain()
    run.refresh_from_db()
    return run


def rows(res) -> dict:
    assert res.status_code == 200, res.content
    return {row["flow_name"]: row for row in res.json()["results"]}


def cells(row) -> dict:
    return {c["date"]: c for c in row["cells"]}


@pytest.fixture
def flows(tenant, member_user):
    tokyo, _ = build_flow(
        tenant=tenant,
        owner=member_user,
        name="tokyo",
        nodes=[script("a")],
        concurrency_policy="ignore",
    )
    ScheduleFactory(flow=tokyo, cron="0 5 * * *", timezone="Asia/Tokyo")
    utc, _ = build_flow(
        tenant=tenant,
        owner=member_user,
        name="unscheduled",
        nodes=[script("a", fail=True)],
        concurrency_policy="ignore",
    )
    return tokyo, utc


def test_a_run_lands_on_its_business_date_in_the_flow_schedule_zone(
    api, engine, flows, member_user
):
    tokyo, utc = flows
    # 2024-01-14 20:00 UTC is 05:00 on the 15th in Tokyo, still the 14th in UTC.
    t_run = ran(engine, tokyo, member_user, "2024-01-14T20:00:00+00:00")
    u_run = ran(engine, utc, member_user, "2024-01-14T20:00:00+00:00")

    body = api(member_user).get(URL, WINDOW).json()

    assert body["from"] == "2024-01-13" and body["to"] == "2024-01-16"
    assert body["dates"] == ["2024-01-13", "2024-01-14", "2024-01-15", "2024-01-16"]
    by_flow = {row["flow_name"]: row for row in body["results"]}
    assert by_flow["tokyo"]["timezone"] == "Asia/Tokyo"
    assert by_flow["tokyo"]["cells"] == [
        {"date": "2024-01-15", "status": "succeeded", "latest_run": t_run.pk, "runs": [t_run.pk]}
    ]
    assert by_flow["unscheduled"]["timezone"] == "UTC"
    assert by_flow["unscheduled"]["cells"] == [
        {"date": "2024-01-14", "status": "failed", "latest_run": u_run.pk, "runs": [u_run.pk]}
    ]


def test_a_date_shows_its_latest_run_and_every_run_of_the_date(api, engine, flows, member_user):
    _tokyo, utc = flows
    first = ran(engine, utc, member_user, "2024-01-15T01:00:00+00:00")
    second = ran(engine, utc, member_user, "2024-01-15T23:59:00+00:00")
    assert first.status == second.status == "failed"
    # A rerun is a new run of the same business time: it is now the date's latest.
    rerun = engine.call(run_rerun, run=first, user=member_user)
    engine.drain()
    rerun.refresh_from_db()

    cell = cells(rows(api(member_user).get(URL, WINDOW))["unscheduled"])["2024-01-15"]

    assert cell["latest_run"] == rerun.pk and cell["status"] == rerun.status
    assert cell["runs"] == [rerun.pk, second.pk, first.pk]


def test_flows_without_runs_are_rows_and_runs_outside_the_window_are_not_shown(
    api, engine, flows, member_user
):
    tokyo, utc = flows
    ran(engine, utc, member_user, "2024-01-12T23:00:00+00:00")  # the 12th: before the window
    # 2024-01-16 15:30 UTC is the 17th in Tokyo: after the window.
    ran(engine, tokyo, member_user, "2024-01-16T15:30:00+00:00")

    result = rows(api(member_user).get(URL, WINDOW))

    assert result["tokyo"]["cells"] == [] and result["unscheduled"]["cells"] == []


def test_filters_by_flow_owner_and_run_status(api, engine, flows, member_user, other_member):
    tokyo, utc = flows
    ran(engine, tokyo, member_user, "2024-01-14T00:00:00+00:00")
    failed = ran(engine, utc, member_user, "2024-01-14T00:00:00+00:00")
    theirs = FlowFactory(tenant=tokyo.tenant, owner=other_member, name="theirs", is_public=True)
    client = api(member_user)

    assert set(rows(client.get(URL, WINDOW))) == {"tokyo", "unscheduled", "theirs"}
    assert set(rows(client.get(URL, {**WINDOW, "flow": [utc.pk, theirs.pk]}))) == {
        "unscheduled",
        "theirs",
    }
    assert set(rows(client.get(URL, {**WINDOW, "owner": other_member.pk}))) == {"theirs"}
    only_failed = rows(client.get(URL, {**WINDOW, "status": "failed"}))
    assert set(only_failed) == {"unscheduled"}
    assert only_failed["unscheduled"]["cells"][0]["runs"] == [failed.pk]
    assert rows(client.get(URL, {**WINDOW, "status": ["stopped", "skipped"]})) == {}


def test_the_status_filter_dates_runs_in_the_flow_zone(api, engine, flows, member_user):
    tokyo, _utc = flows
    # The 16th in UTC, but the 17th in Tokyo: outside the window for the status filter too.
    ran(engine, tokyo, member_user, "2024-01-16T16:00:00+00:00")

    assert rows(api(member_user).get(URL, {**WINDOW, "status": "succeeded"})) == {}
    assert set(rows(api(member_user).get(URL, {"from": "2024-01-17", "status": "succeeded"}))) == {
        "tokyo"
    }


def test_flows_and_runs_the_user_may_not_see_are_not_in_the_grid(
    api, engine, flows, member_user, other_member, outsider
):
    _tokyo, utc = flows
    ran(engine, utc, member_user, "2024-01-14T00:00:00+00:00")

    assert rows(api(other_member).get(URL, WINDOW)) == {}
    # Naming the flow does not reveal it, to another member or another tenant's admin.
    assert rows(api(other_member).get(URL, {**WINDOW, "flow": utc.pk})) == {}
    assert rows(api(outsider).get(URL, {**WINDOW, "flow": utc.pk})) == {}


@pytest.mark.parametrize(
    "query, field",
    [
        ({"from": "2024-01-16", "to": "2024-01-13"}, "to"),
        ({"from": "2023-01-01", "to": "2024-01-13"}, "from"),
        ({"from": "yesterday"}, "from"),
        ({"status": "exploded"}, "status"),
        ({"flow": "x"}, "flow"),
    ],
)
def test_bad_windows_and_filters_are_400_naming_the_parameter(api, member_user, query, field):
    res = api(member_user).get(URL, query)
    assert res.status_code == 400 and field in res.json(), res.content


def test_a_year_is_accepted_for_the_calendar_heat_map(api, engine, flows, member_user):
    _tokyo, utc = flows
    run = ran(engine, utc, member_user, "2023-03-01T12:00:00+00:00")
    body = api(member_user).get(URL, {"from": "2023-01-16", "to": "2024-01-15", "flow": utc.pk})
    assert body.status_code == 200 and len(body.json()["dates"]) == 365
    assert body.json()["results"][0]["cells"][0]["latest_run"] == run.pk


def test_grid_query_count_does_not_grow_with_flows_zones_or_runs(
    api, admin_user, tenant, django_assert_num_queries
):
    zones = ["UTC", "Asia/Tokyo", "America/New_York", "Europe/Berlin"]

    def grow(count: int) -> None:
        for i in range(count):
            flow, _ = build_flow(tenant=tenant, owner=admin_user, nodes=["a"])
            if i % 5:
                ScheduleFactory(flow=flow, cron="0 1 * * *", timezone=zones[i % len(zones)])
            for hour in (1, 13):
                run_start(
                    flow=flow,
                    mode="point_in_time",
                    user=admin_user,
                    business_time=at(f"2024-01-14T{hour:02d}:00:00+00:00"),
                )

    client = api(admin_user)
    queries = {}
    for size in (2, 25):
        grow(size)
        for query in ({}, {"status": ["queued", "skipped"]}):
            # ctx + COUNT + page of flows (with schedules) + their runs [+ the tenant's zones]
            with django_assert_num_queries(4 + bool(query)):
                res = client.get(URL, {**WINDOW, **query})
            assert res.status_code == 200
            queries.setdefault(size, []).append(res.json()["count"])
    assert queries == {2: [2, 2], 25: [27, 27]}
    # Another tenant's flows never count.
    FlowFactory(tenant=TenantFactory(slug="elsewhere"))
    assert client.get(URL, WINDOW).json()["count"] == 27
