"""The schedule distribution (GET /api/v1/schedules/distribution/): a day's fire times per hour,
from the one calendar, for the firing schedules of the flows the user can see."""

from __future__ import annotations

import datetime as dt

import pytest

from flows.services import flow_freeze, flow_publish
from scheduling.services import schedule_save
from tests.factories import build_flow

pytestmark = pytest.mark.django_db

URL = "/api/v1/schedules/distribution/"


@pytest.fixture
def make(tenant, member_user):
    def make(name, cron, timezone="UTC", *, publish=True, enabled=True, owner=None, **flow):
        owner = owner or member_user
        flow_obj, _ = build_flow(tenant=tenant, owner=owner, name=name, nodes=["a"], **flow)
        schedule_save(
            flow=flow_obj,
            user=owner,
            cron=cron,
            timezone=timezone,
            enabled=enabled,
            start_date=dt.date(2024, 1, 1),
        )
        if publish:
            flow_publish(flow=flow_obj, user=owner)
        return flow_obj

    return make


def hours(body) -> dict[int, int]:
    return {h["hour"]: h["fire_times"] for h in body["hours"] if h["fire_times"]}


def test_fire_times_of_the_day_per_hour_and_the_busiest_minutes(api, make, member_user):
    # Given three daily-at-midnight flows, a quarter-hourly one and one at 00:30 in Tokyo
    for i in range(3):
        make(f"midnight {i}", "0 0 * * *")
    make("quarterly", "*/15 * * * *")
    make("tokyo", "30 0 * * *", "Asia/Tokyo")  # 15:30 UTC, the day before in Tokyo terms
    # ... and flows that do not fire: disabled, never published, frozen
    make("disabled", "0 0 * * *", enabled=False)
    make("draft", "0 0 * * *", publish=False)
    flow_freeze(flow=make("frozen", "0 0 * * *"), user=member_user)

    res = api(member_user).get(URL, {"date": "2024-03-05", "timezone": "UTC"})

    assert res.status_code == 200, res.content
    body = res.json()
    assert body["date"] == "2024-03-05" and body["timezone"] == "UTC"
    assert hours(body) == {0: 3 + 4, 15: 4 + 1, **{h: 4 for h in range(1, 24) if h != 15}}
    assert body["total"] == 3 + 96 + 1 and body["flows"] == 5
    assert body["hours"][0] == {"hour": 0, "fire_times": 7, "flows": 4}
    assert body["busiest"][0] == {"time": "00:00", "fire_times": 4, "flows": 4}
    assert body["busiest"][1] == {"time": "15:30", "fire_times": 2, "flows": 2}


def test_the_day_and_its_hours_are_read_in_the_requested_zone(api, make, member_user):
    make("midnight utc", "0 0 * * *")
    body = api(member_user).get(URL, {"date": "2024-03-05", "timezone": "Asia/Tokyo"}).json()
    assert body["timezone"] == "Asia/Tokyo" and hours(body) == {9: 1}


def test_a_dst_day_counts_a_time_in_the_gap_once_after_it(api, make, member_user):
    # 02:30 does not exist in New York on 2024-03-10: it fires at 03:00, once.
    make("gap", "30 2 * * *", "America/New_York")
    body = api(member_user).get(URL, {"date": "2024-03-10", "timezone": "America/New_York"}).json()
    assert hours(body) == {3: 1} and len(body["hours"]) == 24


def test_schedule_windows_are_honoured(api, make, member_user):
    flow = make("ended", "0 6 * * *")
    schedule_save(
        flow=flow,
        user=member_user,
        cron="0 6 * * *",
        start_date=dt.date(2024, 1, 1),
        end_date=dt.date(2024, 3, 4),
    )
    flow_publish(flow=flow, user=member_user)
    assert api(member_user).get(URL, {"date": "2024-03-05"}).json()["total"] == 0
    assert api(member_user).get(URL, {"date": "2024-03-04"}).json()["total"] == 1


def test_only_flows_the_user_can_see_count(api, make, member_user, other_member, outsider):
    make("mine", "0 0 * * *")
    make("public", "0 1 * * *", owner=other_member, is_public=True)
    make("private", "0 2 * * *", owner=other_member)

    mine = api(member_user).get(URL, {"date": "2024-03-05", "timezone": "UTC"}).json()
    assert hours(mine) == {0: 1, 1: 1}
    assert api(outsider).get(URL, {"date": "2024-03-05"}).json()["total"] == 0


def test_default_day_is_tomorrow(api, make, member_user):
    body = api(member_user).get(URL, {"timezone": "UTC"}).json()
    assert body["date"] == (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    "query, field",
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"date": "soon"}, "date"),
        ({"date": "0001-01-01"}, "date"),
    ],
)
def test_bad_parameters_are_400_naming_them(api, member_user, query, field):
    res = api(member_user).get(URL, query)
    assert res.status_code == 400 and field in res.json(), res.content
