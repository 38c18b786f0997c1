"""The schedule API: read, replace (cron or simple form), preview across zones and DST, errors, rights."""

import pytest

from flows import services as flow_services
from scheduling.models import Schedule

pytestmark = pytest.mark.django_db


def url(flow, suffix=""):
    return f"/api/v1/flows/{flow.pk}/schedule/{suffix}"


def put(client, flow, **body):
    return client.put(url(flow), body, format="json")


# --------------------------------------------------------------------------- read / write


def test_flow_without_schedule_shows_a_default_disabled_one(api, member_user, flow):
    res = api(member_user).get(url(flow))

    assert res.status_code == 200
    assert res.json()["id"] is None
    assert res.json()["enabled"] is False
    assert res.json()["state"] == "disabled"
    assert res.json()["next_fire_time"] is None


def test_owner_saves_a_cron_schedule_on_a_never_published_flow(api, member_user, flow):
    res = put(
        api(member_user),
        flow,
        enabled=True,
        cron="30 2 * * *",
        start_date="2024-01-01",
        timezone="Europe/Berlin",
    )

    assert res.status_code == 200, res.json()
    body = res.json()
    assert body["cron"] == "30 2 * * *" and body["kind"] == "cron"
    assert body["timezone"] == "Europe/Berlin"
    assert body["state"] == "not_published"
    assert api(member_user).get(url(flow)).json()["id"] == body["id"]


def test_simple_weekly_form_is_stored_with_its_cron(api, member_user, flow):
    res = put(
        api(member_user),
        flow,
        kind="weekly",
        days=["thu", "mon"],
        time="00:00",
        start_date="2023-08-03",
        end_date="2023-08-31",
        timezone="UTC",
    )

    assert res.status_code == 200, res.json()
    body = res.json()
    assert (body["kind"], body["cron"], body["days"], body["time"]) == (
        "weekly",
        "0 0 * * 1,4",
        ["mon", "thu"],
        "00:00",
    )


@pytest.mark.parametrize(
    ("form", "cron"),
    [
        ({"kind": "minutes", "interval": 15}, "*/15 * * * *"),
        ({"kind": "hours", "interval": 6}, "0 */6 * * *"),
        ({"kind": "daily", "time": "07:45"}, "45 7 * * *"),
        ({"kind": "monthly", "days": [1, 15], "time": "23:05"}, "5 23 1,15 * *"),
    ],
)
def test_every_simple_form_becomes_a_cron_expression(api, member_user, flow, form, cron):
    res = put(api(member_user), flow, start_date="2024-01-01", **form)

    assert res.status_code == 200, res.json()
    assert res.json()["cron"] == cron


def test_fields_left_out_of_a_put_keep_their_saved_values(api, member_user, flow):
    client = api(member_user)
    put(
        client,
        flow,
        cron="0 6 * * *",
        timezone="Europe/Berlin",
        enabled=False,
        start_date="2024-05-01",
    )

    res = put(client, flow, cron="0 7 * * *")

    assert res.status_code == 200, res.json()
    body = res.json()
    assert (body["cron"], body["timezone"], body["enabled"], body["start_date"]) == (
        "0 7 * * *",
        "Europe/Berlin",
        False,
        "2024-05-01",
    )


def test_put_that_changes_nothing_writes_no_history(api, member_user, flow):
    body = {"cron": "0 6 * * *", "start_date": "2024-01-01", "timezone": "UTC"}
    put(api(member_user), flow, **body)
    put(api(member_user), flow, **body)

    assert Schedule.history.filter(flow_id=flow.pk).count() == 1


def test_edit_is_audited_with_the_user_and_marks_unpublished_changes(
    api, member_user, published_flow
):
    assert not published_flow.has_unpublished_changes

    put(api(member_user), published_flow, cron="0 6 * * *", start_date="2024-01-01")
    put(api(member_user), published_flow, cron="0 7 * * *", start_date="2024-01-01")

    published_flow.refresh_from_db()
    assert published_flow.has_unpublished_changes
    history = list(Schedule.history.filter(flow_id=published_flow.pk).order_by("history_id"))
    assert [h.history_type for h in history] == ["+", "~"]
    assert history[-1].cron == "0 7 * * *"
    assert history[-1].history_user == member_user


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"cron": "0 0 * *"}, "cron", "5 fields"),
        ({"cron": "60 0 * * *"}, "cron", "minute"),
        ({"cron": "0 24 * * *"}, "cron", "hour"),
        ({"cron": "0 0 * * 9"}, "cron", "day of week"),
        ({"cron": "0 0 30 2 *"}, "cron", "never occurs"),
        ({"cron": "0 0 * * *", "timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
        (
            {"cron": "0 0 * * *", "start_date": "2024-02-01", "end_date": "2024-01-31"},
            "end_date",
            "before the start date",
        ),
        ({"kind": "weekly", "time": "09:00"}, "days", "day of the week"),
        ({"kind": "daily", "time": "25:00"}, "time", "time of day"),
        ({"kind": "minutes", "interval": 0}, "interval", "out of range"),
        ({"kind": "fortnightly"}, "kind", "valid choice"),
        ({"kind": "daily", "time": "09:00", "cron": "0 10 * * *"}, "cron", "does not match"),
        ({"cron": "0 0 * * *", "start_date": "2024-13-01"}, "start_date", "format"),
        ({}, "cron", "required"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, member_user, flow, body, field, words):
    res = put(api(member_user), flow, **body)

    assert res.status_code == 400
    assert field in res.json(), res.json()
    assert words in " ".join(res.json()[field]), res.json()
    assert not Schedule.objects.filter(flow=flow).exists()


# --------------------------------------------------------------------------- rights


def test_stakeholder_sees_but_cannot_edit(api, member_user, other_member, flow):
    flow_services.flow_stakeholders_set(flow=flow, user=member_user, users=[other_member.pk])

    assert api(other_member).get(url(flow)).status_code == 200
    res = put(api(other_member), flow, cron="0 0 * * *")
    assert res.status_code == 403
    assert not Schedule.objects.filter(flow=flow).exists()


def test_tenant_admin_cannot_edit_someone_elses_schedule(api, admin_user, member_user, flow):
    assert put(api(member_user), flow, cron="30 6 * * *").status_code == 200
    assert put(api(admin_user), flow, cron="0 0 * * *").status_code == 403
    # The refused PUT changed nothing.
    assert Schedule.objects.get(flow=flow).cron == "30 6 * * *"


def test_other_tenant_and_invisible_flows_answer_404(api, outsider, other_member, flow):
    for user in (outsider, other_member):
        client = api(user)
        assert client.get(url(flow)).status_code == 404
        assert put(client, flow, cron="0 0 * * *").status_code == 404
        assert client.get(url(flow, "preview/")).status_code == 404
        assert client.get(url(flow, "missed/")).status_code == 404
    assert not Schedule.objects.filter(flow=flow).exists()


def test_anonymous_is_refused(api, flow):
    assert api().get(url(flow)).status_code in (401, 403)
    assert api().get(url(flow, "preview/")).status_code in (401, 403)


# --------------------------------------------------------------------------- preview

# (cron, zone, start, end, after, count) -> exact fire times with offsets
PREVIEW_TABLE = [
    pytest.param(
        "0 0 * * 1,4",
        "UTC",
        "2023-08-03",
        "2023-08-31",
        "2023-08-01T00:00:00+00:00",
        20,
        [f"2023-08-{d:02d}T00:00:00+00:00" for d in (3, 7, 10, 14, 17, 21, 24, 28, 31)],
        id="reference-example-mon-thu-window",
    ),
    pytest.param(
        "30 2 * * *",
        "Europe/Berlin",
        "2024-03-30",
        "2024-04-01",
        "2024-03-29T00:00:00+01:00",
        5,
        ["2024-03-30T02:30:00+01:00", "2024-03-31T03:00:00+02:00", "2024-04-01T02:30:00+02:00"],
        id="berlin-spring-forward-gap-fires-after-the-gap",
    ),
    pytest.param(
        "30 2 * * *",
        "Europe/Berlin",
        "2024-10-26",
        "2024-10-28",
        "2024-10-25T00:00:00+02:00",
        5,
        ["2024-10-26T02:30:00+02:00", "2024-10-27T02:30:00+02:00", "2024-10-28T02:30:00+01:00"],
        id="berlin-fall-back-fires-first-occurrence-once",
    ),
    pytest.param(
        "30 2 * * *",
        "America/New_York",
        "2024-03-09",
        "2024-03-11",
        "2024-03-08T00:00:00-05:00",
        5,
        ["2024-03-09T02:30:00-05:00", "2024-03-10T03:00:00-04:00", "2024-03-11T02:30:00-04:00"],
        id="new-york-spring-forward",
    ),
    pytest.param(
        "30 1 * * *",
        "America/New_York",
        "2024-11-02",
        "2024-11-04",
        "2024-11-01T00:00:00-04:00",
        5,
        ["2024-11-02T01:30:00-04:00", "2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"],
        id="new-york-fall-back",
    ),
    pytest.param(
        "0 * * * *",
        "America/New_York",
        "2024-11-03",
        "2024-11-03",
        "2024-11-03T00:30:00-04:00",
        3,
        ["2024-11-03T01:00:00-04:00", "2024-11-03T02:00:00-05:00", "2024-11-03T03:00:00-05:00"],
        id="new-york-hourly-through-the-repeated-hour",
    ),
    pytest.param(
        "0 9 * * 1-5",
        "Asia/Kolkata",
        "2024-01-01",
        None,
        "2024-01-05T10:00:00+05:30",
        3,
        ["2024-01-08T09:00:00+05:30", "2024-01-09T09:00:00+05:30", "2024-01-10T09:00:00+05:30"],
        id="kolkata-weekdays-half-hour-offset",
    ),
    pytest.param(
        "0 0 1-7 * 1",
        "UTC",
        "2024-01-01",
        None,
        "2024-01-02T00:00:00+00:00",
        2,
        ["2024-02-05T00:00:00+00:00", "2024-03-04T00:00:00+00:00"],
        id="day-of-month-AND-day-of-week-first-monday",
    ),
]


@pytest.mark.parametrize(
    ("cron", "zone", "start", "end", "after", "count", "expected"), PREVIEW_TABLE
)
def test_preview_of_the_saved_schedule(
    api, member_user, flow, cron, zone, start, end, after, count, expected
):
    client = api(member_user)
    assert (
        put(client, flow, cron=cron, timezone=zone, start_date=start, end_date=end).status_code
        == 200
    )

    res = client.get(url(flow, "preview/"), {"after": after, "count": count})

    assert res.status_code == 200, res.json()
    assert res.json()["fire_times"] == expected


@pytest.mark.parametrize(
    ("cron", "zone", "start", "end", "after", "count", "expected"), PREVIEW_TABLE
)
def test_live_preview_from_query_parameters_without_saving(
    api, member_user, flow, cron, zone, start, end, after, count, expected
):
    params = {"cron": cron, "timezone": zone, "start_date": start, "after": after, "count": count}
    if end:
        params["end_date"] = end

    res = api(member_user).get(url(flow, "preview/"), params)

    assert res.status_code == 200, res.json()
    assert res.json()["fire_times"] == expected
    assert not Schedule.objects.filter(flow=flow).exists()


def test_live_preview_of_a_simple_form_with_repeated_days(api, member_user, flow):
    res = api(member_user).get(
        url(flow, "preview/")
        + "?kind=weekly&days=mon&days=thu&time=00:00&start_date=2023-08-03&end_date=2023-08-10"
        + "&after=2023-08-01T00:00:00&timezone=Europe/Berlin"
    )

    assert res.status_code == 200, res.json()
    assert res.json()["cron"] == "0 0 * * 1,4"
    assert res.json()["fire_times"] == [
        "2023-08-03T00:00:00+02:00",
        "2023-08-07T00:00:00+02:00",
        "2023-08-10T00:00:00+02:00",
    ]


def test_preview_counts_ten_by_default(api, member_user, flow):
    res = api(member_user).get(url(flow, "preview/"), {"cron": "*/5 * * * *"})

    assert res.status_code == 200
    assert len(res.json()["fire_times"]) == 10


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"count": 0}, "count"),
        ({"count": 101}, "count"),
        ({"count": "many"}, "count"),
        ({"after": "yesterday"}, "after"),
        ({"cron": "* * *"}, "cron"),
        ({"cron": "0 0 * * *", "timezone": "Nowhere/Land"}, "timezone"),
        ({"kind": "weekly", "time": "10:00", "days": "someday"}, "days"),
    ],
)
def test_bad_preview_parameters_are_a_400_naming_them(api, member_user, flow, params, field):
    res = api(member_user).get(url(flow, "preview/"), params)

    assert res.status_code == 400
    assert field in res.json(), res.json()


def test_options_describes_the_put_body(api, member_user, flow):
    res = api(member_user).options(url(flow))

    assert res.status_code == 200
    assert "cron" in res.json()["actions"]["PUT"]


# --------------------------------------------------------------------------- draft and published


def test_a_schedule_edit_takes_effect_when_the_flow_is_published(api, member_user, published_flow):
    client = api(member_user)
    put(client, published_flow, cron="0 6 * * *", start_date="2024-01-01", timezone="UTC")
    flow_services.flow_publish(flow=published_flow, user=member_user)
    before = client.get(url(published_flow)).json()
    assert before["draft_differs"] is False
    assert before["published"]["cron"] == "0 6 * * *"
    assert before["next_fire_time"].endswith("06:00:00+00:00")

    edited = put(client, published_flow, cron="30 7 * * *", timezone="Asia/Shanghai").json()

    # The draft is what was saved; what fires (state, next fire time) is still the published.
    assert (edited["cron"], edited["timezone"]) == ("30 7 * * *", "Asia/Shanghai")
    assert edited["draft_differs"] is True
    assert edited["published"] == {
        "enabled": True,
        "kind": "cron",
        "cron": "0 6 * * *",
        "interval": None,
        "time": None,
        "days": [],
        "start_date": "2024-01-01",
        "end_date": None,
        "timezone": "UTC",
        "description": "cron 0 6 * * *",
    }
    assert edited["next_fire_time"] == before["next_fire_time"]
    assert client.get(url(published_flow)).json()["next_fire_time"] == before["next_fire_time"]
    # ... and the publish diff shows the schedule change.
    latest = published_flow.versions.order_by("-number").first().number
    diff = client.get(
        f"/api/v1/flows/{published_flow.pk}/versions/{latest}/diff/?against=editing"
    ).json()
    [change] = [c for c in diff["configuration"] if c["field"] == "schedule"]
    assert (change["old"]["cron"], change["new"]["cron"]) == ("0 6 * * *", "30 7 * * *")

    flow_services.flow_publish(flow=published_flow, user=member_user)

    after = client.get(url(published_flow)).json()
    assert after["draft_differs"] is False
    assert (after["published"]["cron"], after["published"]["timezone"]) == (
        "30 7 * * *",
        "Asia/Shanghai",
    )
    assert after["next_fire_time"].endswith("07:30:00+08:00")
