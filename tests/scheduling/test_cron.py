"""Cron parsing, simple schedule forms and fire times (wall clock, DST, inclusive dates)."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from scheduling.cron import (
    CronError,
    CronSpec,
    fire_times,
    parse_cron,
    simple_to_cron,
    validate_timezone,
    validate_window,
)


def aware(tz, *args):
    return datetime(*args, tzinfo=ZoneInfo(tz))


def iso(times):
    return [t.isoformat() for t in times]


def day_fires(expr, tz, day):
    """Every fire of ``expr`` on the local calendar ``day`` in ``tz``."""
    return iso(
        fire_times(
            parse_cron(expr),
            tz,
            after=aware(tz, day.year, day.month, day.day) - timedelta(days=2),
            start_date=day,
            end_date=day,
        )
    )


# --------------------------------------------------------------------------- parse_cron


def test_parse_cron_keeps_fields_and_expands_sets():
    spec = parse_cron("*/15  0-6/2 1,15 jan-mar mon-fri")

    assert (spec.minute, spec.hour, spec.day_of_month, spec.month_of_year, spec.day_of_week) == (
        "*/15",
        "0-6/2",
        "1,15",
        "jan-mar",
        "mon-fri",
    )
    assert spec.minutes == {0, 15, 30, 45}
    assert spec.hours == {0, 2, 4, 6}
    assert spec.days_of_month == {1, 15}
    assert spec.months == {1, 2, 3}
    assert spec.days_of_week == {1, 2, 3, 4, 5}
    assert spec.expression == "*/15 0-6/2 1,15 jan-mar mon-fri"


@pytest.mark.parametrize(
    ("expr", "field", "words"),
    [
        ("0 0 * *", "cron", "got 4"),
        ("0 0 * * * *", "cron", "got 6"),
        ("", "cron", "got 0"),
        ("60 * * * *", "minute", "60"),
        ("0 24 * * *", "hour", "24"),
        ("0 0 32 * *", "day_of_month", "32"),
        ("0 0 0 * *", "day_of_month", "0"),
        ("0 0 * 13 *", "month", "13"),
        ("0 0 * * 7", "day_of_week", "7"),
        ("banana * * * *", "minute", "banana"),
        ("0 0 * * funday", "day_of_week", "funday"),
        ("0 0 * * jan", "day_of_week", "jan"),
        ("0 0 * mon *", "month", "mon"),
        ("*/0 * * * *", "minute", "step"),
        ("1-5/x * * * *", "minute", "step"),
        ("1-5/2-3 * * * *", "minute", "step"),
        ("5/15 * * * *", "minute", "5-59/15"),
        ("0 1,,2 * * *", "hour", "empty"),
        ("0 ? * * *", "hour", "'?'"),
        ("0 0 L * *", "day_of_month", "'L'"),
        ("0 0 * * 1#2", "day_of_week", "1#2"),
        ("0 0 30 2 *", "day_of_month", "never occurs"),
        ("0 0 31 4,6 *", "day_of_month", "never occurs"),
    ],
)
def test_parse_cron_rejects_invalid_expression_naming_the_field(expr, field, words):
    with pytest.raises(CronError) as info:
        parse_cron(expr)

    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert words in str(info.value)


def test_parse_cron_rejects_non_text():
    with pytest.raises(CronError) as info:
        parse_cron(None)
    assert info.value.field == "cron"


@pytest.mark.parametrize(
    ("expr", "minutes", "dows"),
    [
        ("* * * * *", set(range(60)), set(range(7))),
        ("0,30 * * * sun", {0, 30}, {0}),
        ("0 * * * 5-1", {0}, {5, 6, 0, 1}),  # celery wraps a reversed range
        ("0 * * * Monday,FRI", {0}, {1, 5}),
        ("1-59/29 * * * *", {1, 30, 59}, set(range(7))),
    ],
)
def test_parse_cron_expands_like_celery(expr, minutes, dows):
    spec = parse_cron(expr)

    assert spec.minutes == minutes
    assert spec.days_of_week == dows


# --------------------------------------------------------------------------- simple forms


@pytest.mark.parametrize(
    ("kind", "kwargs", "expected"),
    [
        ("minutes", {"interval": 15}, "*/15 * * * *"),
        ("minutes", {"interval": 1}, "*/1 * * * *"),
        ("minutes", {"interval": 59}, "*/59 * * * *"),
        ("hours", {"interval": 6}, "0 */6 * * *"),
        ("hours", {"interval": 23}, "0 */23 * * *"),
        ("daily", {"time": "02:30"}, "30 2 * * *"),
        ("daily", {"time": "00:00", "interval": 5, "days": [1]}, "0 0 * * *"),
        ("weekly", {"time": "09:05", "days": [4, 1, 1]}, "5 9 * * 1,4"),
        ("weekly", {"time": "23:59", "days": ["sun", "Sat", "MON"]}, "59 23 * * 0,1,6"),
        ("monthly", {"time": "06:00", "days": [31, 1, 15]}, "0 6 1,15,31 * *"),
    ],
)
def test_simple_form_to_cron(kind, kwargs, expected):
    expr = simple_to_cron(kind, **kwargs)

    assert expr == expected
    assert parse_cron(expr).expression == expected


@pytest.mark.parametrize(
    ("kind", "kwargs", "field"),
    [
        ("minutes", {}, "interval"),
        ("minutes", {"interval": 0}, "interval"),
        ("minutes", {"interval": 60}, "interval"),
        ("minutes", {"interval": True}, "interval"),
        ("minutes", {"interval": "5"}, "interval"),
        ("hours", {"interval": 24}, "interval"),
        ("daily", {}, "time"),
        ("daily", {"time": "24:00"}, "time"),
        ("daily", {"time": "12:60"}, "time"),
        ("daily", {"time": "noon"}, "time"),
        ("weekly", {"time": "10:00"}, "days"),
        ("weekly", {"time": "10:00", "days": []}, "days"),
        ("weekly", {"time": "10:00", "days": [7]}, "days"),
        ("weekly", {"time": "10:00", "days": ["someday"]}, "days"),
        ("weekly", {"time": "10:00", "days": "mon"}, "days"),
        ("monthly", {"time": "10:00", "days": [0]}, "days"),
        ("monthly", {"time": "10:00", "days": [32]}, "days"),
        ("yearly", {"time": "10:00"}, "kind"),
    ],
)
def test_simple_form_errors_name_the_field(kind, kwargs, field):
    with pytest.raises(CronError) as info:
        simple_to_cron(kind, **kwargs)

    assert info.value.field == field


# --------------------------------------------------------------------------- validation


def test_validate_timezone():
    assert validate_timezone("Asia/Shanghai") == ZoneInfo("Asia/Shanghai")
    for bad in ["Mars/Olympus", "", "utc ", "../etc/passwd", "America", None, "localtime"]:
        with pytest.raises(CronError) as info:
            validate_timezone(bad)
        assert info.value.field == "timezone"


def test_fire_times_rejects_unknown_timezone_when_called():
    with pytest.raises(CronError) as info:
        fire_times(parse_cron("0 0 * * *"), "Nowhere/City", after=aware("UTC", 2024, 1, 1))
    assert info.value.field == "timezone"


def test_validate_window():
    validate_window(date(2024, 1, 1), date(2024, 1, 1))  # a one-day window is fine
    validate_window(date(2024, 1, 1), None)
    validate_window(None, None)
    with pytest.raises(CronError) as info:
        validate_window(date(2024, 1, 2), date(2024, 1, 1))
    assert info.value.field == "end_date"
    assert "2024-01-01" in str(info.value)


def test_fire_times_refuses_naive_after_and_reversed_window():
    with pytest.raises(TypeError):
        fire_times("0 0 * * *", "UTC", after=datetime(2024, 1, 1))
    with pytest.raises(CronError):
        fire_times(
            "0 0 * * *",
            "UTC",
            after=aware("UTC", 2024, 1, 1),
            start_date=date(2024, 2, 1),
            end_date=date(2024, 1, 1),
        )


# --------------------------------------------------------------------------- fire times

REFERENCE_DAYS = [3, 7, 10, 14, 17, 21, 24, 28, 31]


@pytest.mark.parametrize("tz", ["Asia/Shanghai", "UTC"])
def test_reference_example_mondays_and_thursdays_in_august(tz):
    # Given the reference schedule: 00:00 every Monday and Thursday, 2023-08-03..2023-08-31
    times = list(
        fire_times(
            parse_cron("0 0 * * 1,4"),
            tz,
            after=aware(tz, 2023, 8, 1),
            start_date=date(2023, 8, 3),
            end_date=date(2023, 8, 31),
        )
    )

    # Then it fires on exactly these days at local midnight, and nothing after Aug 31
    assert times == [aware(tz, 2023, 8, d) for d in REFERENCE_DAYS]
    assert iso(times)[0] == aware(tz, 2023, 8, 3).isoformat()
    assert all(t.tzinfo == ZoneInfo(tz) for t in times)


@pytest.mark.parametrize(
    ("tz", "day", "expr", "expected"),
    [
        # spring forward: 02:30 does not exist -> first instant after the gap
        ("Europe/Berlin", date(2024, 3, 31), "30 2 * * *", ["2024-03-31T03:00:00+02:00"]),
        ("America/New_York", date(2024, 3, 10), "30 2 * * *", ["2024-03-10T03:00:00-04:00"]),
        # fall back: 02:30 happens twice in Berlin -> first occurrence (summer time) only
        ("Europe/Berlin", date(2024, 10, 27), "30 2 * * *", ["2024-10-27T02:30:00+02:00"]),
        # in New York the repeated hour is 01:00-02:00; 02:30 happens once
        ("America/New_York", date(2024, 11, 3), "30 2 * * *", ["2024-11-03T02:30:00-05:00"]),
        ("America/New_York", date(2024, 11, 3), "30 1 * * *", ["2024-11-03T01:30:00-04:00"]),
        # ordinary neighbouring days are untouched
        ("Europe/Berlin", date(2024, 3, 30), "30 2 * * *", ["2024-03-30T02:30:00+01:00"]),
        ("Europe/Berlin", date(2024, 4, 1), "30 2 * * *", ["2024-04-01T02:30:00+02:00"]),
        # a 30-minute DST shift (Lord Howe: 02:00 -> 02:30)
        (
            "Australia/Lord_Howe",
            date(2024, 10, 6),
            "*/15 2 * * *",
            ["2024-10-06T02:30:00+11:00", "2024-10-06T02:45:00+11:00"],
        ),
        # a gap at midnight (Sao Paulo 2018: 00:00 -> 01:00)
        ("America/Sao_Paulo", date(2018, 11, 4), "30 0 * * *", ["2018-11-04T01:00:00-02:00"]),
    ],
)
def test_daily_schedule_on_dst_days_fires_exactly_once(tz, day, expr, expected):
    assert day_fires(expr, tz, day) == expected


def test_several_wall_times_in_a_gap_fire_once():
    # 02:00 and 02:30 do not exist; both, and the real 03:00, are the same instant
    assert day_fires("0,30 1-3 * * *", "Europe/Berlin", date(2024, 3, 31)) == [
        "2024-03-31T01:00:00+01:00",
        "2024-03-31T01:30:00+01:00",
        "2024-03-31T03:00:00+02:00",
        "2024-03-31T03:30:00+02:00",
    ]


@pytest.mark.parametrize(
    ("tz", "day", "around", "count"),
    [
        (
            "Europe/Berlin",
            date(2024, 3, 31),
            ["2024-03-31T01:00:00+01:00", "2024-03-31T03:00:00+02:00", "2024-03-31T04:00:00+02:00"],
            23,
        ),
        (
            "Europe/Berlin",
            date(2024, 10, 27),
            ["2024-10-27T01:00:00+02:00", "2024-10-27T02:00:00+02:00", "2024-10-27T03:00:00+01:00"],
            24,
        ),
        (
            "America/New_York",
            date(2024, 3, 10),
            ["2024-03-10T01:00:00-05:00", "2024-03-10T03:00:00-04:00", "2024-03-10T04:00:00-04:00"],
            23,
        ),
        (
            "America/New_York",
            date(2024, 11, 3),
            ["2024-11-03T00:00:00-04:00", "2024-11-03T01:00:00-04:00", "2024-11-03T02:00:00-05:00"],
            24,
        ),
    ],
)
def test_hourly_schedule_on_dst_days(tz, day, around, count):
    fires = day_fires("0 * * * *", tz, day)

    assert len(fires) == count
    start = fires.index(around[0])
    assert fires[start : start + 3] == around
    assert len({datetime.fromisoformat(f).astimezone(UTC) for f in fires}) == count


def test_repeated_hour_is_not_fired_again_after_its_first_occurrence():
    tz = "America/New_York"
    first = aware(tz, 2024, 11, 3, 1, 30)  # fold=0: 01:30 EDT

    nxt = next(fire_times("30 1 * * *", tz, after=first))

    assert nxt.isoformat() == "2024-11-04T01:30:00-05:00"


def test_every_15_minutes():
    times = fire_times("*/15 * * * *", "UTC", after=aware("UTC", 2024, 5, 1, 10, 7), limit=5)

    assert [t.strftime("%H:%M") for t in times] == ["10:15", "10:30", "10:45", "11:00", "11:15"]


def test_after_is_exclusive_and_until_inclusive():
    after = aware("UTC", 2024, 5, 1, 10, 15)

    times = list(fire_times("*/15 * * * *", "UTC", after=after, until=after + timedelta(hours=1)))

    assert iso(times) == [
        "2024-05-01T10:30:00+00:00",
        "2024-05-01T10:45:00+00:00",
        "2024-05-01T11:00:00+00:00",
        "2024-05-01T11:15:00+00:00",
    ]


def test_after_in_another_zone_is_compared_as_an_instant():
    # 23:30 UTC on May 1 is already 07:30 on May 2 in Shanghai
    after = aware("UTC", 2024, 5, 1, 23, 30)

    assert iso(fire_times("0 8 * * *", "Asia/Shanghai", after=after, limit=1)) == [
        "2024-05-02T08:00:00+08:00"
    ]


@pytest.mark.parametrize(
    ("expr", "after", "limit", "expected"),
    [
        # first Monday of each month: day-of-month AND day-of-week
        (
            "0 9 1-7 * 1",
            (2024, 1, 1),
            4,
            ["2024-01-01", "2024-02-05", "2024-03-04", "2024-04-01"],
        ),
        # Friday the 13th, not "every 13th or every Friday"
        ("0 0 13 * 5", (2024, 1, 1), 3, ["2024-09-13", "2024-12-13", "2025-06-13"]),
        # day 31 skips shorter months
        ("0 0 31 * *", (2024, 1, 1), 4, ["2024-01-31", "2024-03-31", "2024-05-31", "2024-07-31"]),
        # month and year rollover
        ("0 0 1 * *", (2024, 12, 15), 2, ["2025-01-01", "2025-02-01"]),
        ("0 0 29 2 *", (2023, 1, 1), 2, ["2024-02-29", "2028-02-29"]),
        # a rare combination: Feb 29 on a Monday
        ("0 0 29 2 1", (2024, 1, 1), 2, ["2044-02-29", "2072-02-29"]),
        ("0 0 * 2 *", (2024, 2, 28), 3, ["2024-02-29", "2025-02-01", "2025-02-02"]),
    ],
)
def test_matching_days(expr, after, limit, expected):
    times = fire_times(expr, "UTC", after=aware("UTC", *after), limit=limit)

    assert [t.date().isoformat() for t in times] == expected


def test_start_and_end_dates_are_inclusive_days_in_the_schedule_zone():
    tz = "Asia/Tokyo"

    times = list(
        fire_times(
            "30 23 * * *",
            tz,
            after=aware("UTC", 2023, 12, 1),
            start_date=date(2024, 1, 1),
            end_date=date(2024, 1, 3),
        )
    )

    # 2024-01-03 23:30 Tokyo is 14:30 UTC that day; 00:30 fires would be the next day
    assert iso(times) == [
        "2024-01-01T23:30:00+09:00",
        "2024-01-02T23:30:00+09:00",
        "2024-01-03T23:30:00+09:00",
    ]


def test_start_date_midnight_fires():
    times = fire_times(
        "0 0 * * *", "Europe/Berlin", after=aware("UTC", 2023, 1, 1), start_date=date(2024, 1, 2)
    )

    assert next(times).isoformat() == "2024-01-02T00:00:00+01:00"


def test_day_skipped_by_the_zone_fires_at_the_first_instant_after():
    # Samoa skipped 2011-12-30 entirely; midnight that day and on Dec 31 are one instant
    assert iso(
        fire_times("0 0 * * *", "Pacific/Apia", after=aware("UTC", 2011, 12, 28), limit=4)
    ) == [
        "2011-12-28T00:00:00-10:00",
        "2011-12-29T00:00:00-10:00",
        "2011-12-31T00:00:00+14:00",
        "2012-01-01T00:00:00+14:00",
    ]


def test_limit_zero_yields_nothing():
    assert list(fire_times("* * * * *", "UTC", after=aware("UTC", 2024, 1, 1), limit=0)) == []


def test_impossible_spec_terminates():
    # parse_cron refuses Feb 30, so build the spec by hand to exercise the day walk bound
    spec = CronSpec(
        "0", "0", "30", "2", "*",
        frozenset({0}), frozenset({0}), frozenset({30}), frozenset({2}), frozenset(range(7)),
    )  # fmt: skip
    # (How fast it ends is the benchmark's: cron_impossible_s.)
    assert list(fire_times(spec, "UTC", after=aware("UTC", 2024, 1, 1))) == []


def test_every_minute_for_a_month_in_berlin():
    # (How fast is the benchmark's: cron_month_s.)
    times = list(
        fire_times(
            "*/1 * * * *",
            "Europe/Berlin",
            after=aware("Europe/Berlin", 2024, 3, 1) - timedelta(minutes=1),
            end_date=date(2024, 3, 31),
        )
    )

    # March 2024 in Berlin lost the hour 02:00-03:00 on the 31st
    assert len(times) == 31 * 24 * 60 - 60


# --------------------------------------------------------------------------- properties

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/Sao_Paulo",
    "Pacific/Apia",
    "Asia/Kolkata",
]
# Days on which these zones change their clocks, so windows often straddle a transition.
TRANSITION_DAYS = [
    date(2024, 3, 31),
    date(2024, 10, 27),
    date(2024, 3, 10),
    date(2024, 11, 3),
    date(2024, 4, 7),
    date(2024, 10, 6),
    date(2018, 11, 4),
    date(2019, 2, 17),
    date(2011, 12, 30),
    date(2011, 9, 24),
]


def _field(values, low, high):
    """A cron field text: "*", "*/S", or a comma list of values."""
    return st.one_of(
        st.just("*"),
        st.integers(1, high - low).map(lambda s: f"*/{s}"),
        st.lists(st.integers(low, high), min_size=1, max_size=values).map(
            lambda xs: ",".join(map(str, xs))
        ),
    )


cron_exprs = st.tuples(
    _field(4, 0, 59),
    _field(6, 0, 23),
    st.one_of(st.just("*"), st.just("*"), _field(5, 1, 31)),
    st.one_of(st.just("*"), st.just("*"), _field(4, 1, 12)),
    st.one_of(st.just("*"), _field(3, 0, 6)),
).map(" ".join)


def _wall_matches(spec, wall):
    return wall.minute in spec.minutes and wall.hour in spec.hours and spec.matches_day(wall.date())


def _brute_force(spec, zone, after, until):
    """Expected fires by walking every UTC minute: matching first occurrences + gap ends."""
    expected = []
    u = after.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    prev = (u - timedelta(minutes=1)).astimezone(zone)
    while u <= until:
        local = u.astimezone(zone)
        wall = local.replace(tzinfo=None)
        hit = local.fold == 0 and _wall_matches(spec, wall)
        if not hit and local.utcoffset() > prev.utcoffset():
            # ``u`` ends a gap: it fires if any wall time swallowed by the gap matches
            gap_wall = prev.replace(tzinfo=None) + timedelta(minutes=1)
            while gap_wall < wall and not hit:
                hit = _wall_matches(spec, gap_wall)
                gap_wall += timedelta(minutes=1)
        if hit:
            expected.append(u)
        prev = local
        u += timedelta(minutes=1)
    return expected


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    expr=cron_exprs,
    tz=st.sampled_from(ZONES),
    day=st.one_of(st.sampled_from(TRANSITION_DAYS), st.dates(date(2000, 1, 1), date(2035, 12, 31))),
    start_minute=st.integers(-36 * 60, 24 * 60),
    hours=st.integers(1, 72),
)
def test_fire_times_match_a_brute_force_walk(expr, tz, day, start_minute, hours):
    try:
        spec = parse_cron(expr)
    except CronError:
        assume(False)
    zone = ZoneInfo(tz)
    after = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=start_minute)
    until = after + timedelta(hours=hours)

    got = list(fire_times(spec, tz, after=after, until=until))

    utc = [t.astimezone(UTC) for t in got]
    assert utc == sorted(set(utc)), "strictly increasing, no duplicates"
    assert all(after < t <= until for t in got)
    for t in got:
        assert t.tzinfo is zone
        wall = t.replace(tzinfo=None)
        before = (t.astimezone(UTC) - timedelta(seconds=1)).astimezone(zone)
        gap_shifted = before.utcoffset() < t.utcoffset()
        assert t.fold == 0
        assert _wall_matches(spec, wall) or gap_shifted
    assert utc == _brute_force(spec, zone, after, until)
