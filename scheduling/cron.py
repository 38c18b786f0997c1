"""Cron expressions, simple schedule forms and fire-time computation for flow schedules.

Pure functions: no Django, no ORM. A schedule is either a 5-field cron expression
(``minute hour day-of-month month day-of-week``) or a simple form converted to one with
:func:`simple_to_cron`. Each field is expanded with Celery's own ``crontab_parser`` so
that what we validate, preview and backfill is exactly what celery beat will fire.

Semantics, fixed here because cron dialects disagree:

* **Day-of-month AND day-of-week.** A day matches only when its month, its day of month
  *and* its weekday are all in the expression (Celery's rule, see ``celery.schedules.
  crontab``). ``*`` matches everything, so ``0 0 * * 1,4`` is "Mondays and Thursdays"
  and ``0 0 1-7 * 1`` is "the first Monday of the month" -- unlike Vixie cron, which
  would OR the two fields when both are restricted.
* **Weekdays** are 0-6 with 0 = Sunday (``sun``..``sat`` accepted); 7 is rejected, as
  Celery rejects it.
* **Wall clock.** Fire times follow the wall clock of the schedule's IANA time zone. A
  wall time that does not exist on a given day (spring-forward gap) fires at the first
  instant after the gap; a wall time that happens twice (fall-back) fires at its first
  occurrence only. Several wall times landing on the same instant fire once.
* **Start/end dates** are inclusive calendar days in the schedule's time zone.
* A day-of-month that occurs in none of the selected months (``0 0 30 2 *``) is rejected,
  because Celery's ``crontab`` refuses it too.
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celery.schedules import crontab_parser

__all__ = [
    "CronError",
    "CronSpec",
    "fire_times",
    "parse_cron",
    "simple_to_cron",
    "validate_timezone",
    "validate_window",
]

SIMPLE_KINDS = ("minutes", "hours", "daily", "weekly", "monthly")

_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FULL_DAY_NAMES = (
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
)
_MONTH_NAMES = tuple(m.lower() for m in calendar.month_abbr[1:])
_FULL_MONTH_NAMES = tuple(m.lower() for m in calendar.month_name[1:])

# Longest February is 29 days: Celery uses the same table to refuse impossible dates.
_MAX_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

# The Gregorian calendar repeats every 400 years, so a spec with no matching day in
# 400 consecutive years never matches; this bounds the day walk for any CronSpec.
_CALENDAR_CYCLE_YEARS = 400

# One comma-separated item, in the grammar celery's crontab_parser accepts. Celery only
# prefix-matches its patterns (so it silently ignores junk such as "1-5/2-3"); we
# validate the whole item first.
_ITEM_RE = re.compile(
    r"^(?P<base>\*|(?P<start>[A-Za-z0-9]+)(?:-(?P<end>[A-Za-z0-9]+))?)(?:/(?P<step>[^/]*))?$"
)
_TIME_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")


class CronError(ValueError):
    """A schedule a user wrote is invalid; ``field`` names the part that is wrong."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True, slots=True)
class _Field:
    name: str  # CronError.field and the label in messages
    label: str
    min: int
    max: int
    names: dict[str, int]  # accepted names (lower case) -> value
    name_hint: str = ""


_FIELDS = (
    _Field("minute", "minute", 0, 59, {}),
    _Field("hour", "hour", 0, 23, {}),
    _Field("day_of_month", "day of month", 1, 31, {}),
    _Field(
        "month",
        "month",
        1,
        12,
        {n: i + 1 for names in (_MONTH_NAMES, _FULL_MONTH_NAMES) for i, n in enumerate(names)},
        " or a name such as 'jan'",
    ),
    _Field(
        "day_of_week",
        "day of week",
        0,
        6,
        {n: i for names in (_DAY_NAMES, _FULL_DAY_NAMES) for i, n in enumerate(names)},
        " or a name such as 'mon'",
    ),
)


@dataclass(frozen=True)
class CronSpec:
    """A parsed 5-field cron expression: the original fields plus the expanded value sets."""

    minute: str
    hour: str
    day_of_month: str
    month_of_year: str
    day_of_week: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]  # 0 = Sunday, as in cron and Celery

    @property
    def expression(self) -> str:
        """The expression as ``minute hour day_of_month month day_of_week``."""
        return " ".join(
            (self.minute, self.hour, self.day_of_month, self.month_of_year, self.day_of_week)
        )

    def __str__(self) -> str:
        return self.expression

    def matches_day(self, day: date) -> bool:
        """Whether ``day`` is a schedule day (month, day of month AND weekday all match)."""
        return (
            day.month in self.months
            and day.day in self.days_of_month
            and day.isoweekday() % 7 in self.days_of_week
        )


def _parse_field(field: _Field, text: str) -> frozenset[int]:
    for item in text.split(","):
        m = _ITEM_RE.match(item)
        if not m:
            what = "an empty list item" if not item else f"{item!r}"
            raise CronError(
                field.name,
                f"{what} is not valid in the {field.label} field "
                f"(use *, N, N-M, */S or N-M/S, separated by commas)",
            )
        for token in (m["start"], m["end"]):
            if token is None:
                continue
            if token.isdigit():
                value = int(token)
                if not field.min <= value <= field.max:
                    raise CronError(
                        field.name,
                        f"{value} is out of range for the {field.label} ({field.min}-{field.max})",
                    )
            elif token.lower() not in field.names:
                raise CronError(
                    field.name,
                    f"{token!r} is not a valid {field.label}: use a number "
                    f"{field.min}-{field.max}{field.name_hint}",
                )
        step = m["step"]
        if step is not None and m["start"] is not None and m["end"] is None:
            # Celery has no "N/S" form (some crons read it as N-max/S); say so plainly.
            raise CronError(
                field.name,
                f"{item!r} is not supported: give a range with the step, "
                f"e.g. {m['start']}-{field.max}/{step}",
            )
        if step is not None and (not step.isdigit() or int(step) < 1):
            raise CronError(
                field.name,
                f"step {step!r} in {item!r} must be a whole number of at least 1",
            )
    try:
        values = crontab_parser(field.max - field.min + 1, field.min).parse(text)
    except ValueError as exc:  # celery's ParseException is a ValueError too
        raise CronError(field.name, f"{text!r} is not valid: {exc}") from exc
    return frozenset(values)


def parse_cron(expr: str) -> CronSpec:
    """Parse a 5-field cron expression with Celery's parser; raise CronError naming the field."""
    if not isinstance(expr, str):
        raise CronError("cron", "the cron expression must be text")
    return _parse_cron(expr)


@functools.lru_cache(maxsize=4096)
def _parse_cron(expr: str) -> CronSpec:
    # Cached: a busy minute computes the fire times of a thousand schedules sharing a few
    # expressions (the result is immutable; errors are not cached).
    parts = expr.split()
    if len(parts) != 5:
        raise CronError(
            "cron",
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}",
        )
    minutes, hours, doms, months, dows = (
        _parse_field(field, text) for field, text in zip(_FIELDS, parts, strict=True)
    )
    if not any(d <= _MAX_DAYS_IN_MONTH[m - 1] for m in months for d in doms):
        raise CronError(
            "day_of_month",
            f"day of month {parts[2]!r} never occurs in month {parts[3]!r}",
        )
    return CronSpec(
        minute=parts[0],
        hour=parts[1],
        day_of_month=parts[2],
        month_of_year=parts[3],
        day_of_week=parts[4],
        minutes=minutes,
        hours=hours,
        days_of_month=doms,
        months=months,
        days_of_week=dows,
    )


# --------------------------------------------------------------------------- simple forms


def _parse_interval(interval: object, maximum: int, unit: str) -> int:
    # bool is an int subclass; True must not mean "every 1 minute".
    if isinstance(interval, bool) or not isinstance(interval, int):
        raise CronError("interval", f"every how many {unit}? Give a whole number 1-{maximum}")
    if not 1 <= interval <= maximum:
        raise CronError("interval", f"{interval} is out of range: every 1-{maximum} {unit}")
    return interval


def _parse_time(value: object) -> tuple[int, int]:
    if value is None or value == "":
        raise CronError("time", "a time of day HH:MM is required")
    if isinstance(value, dtime):
        if value.second or value.microsecond:
            raise CronError("time", "schedules run on whole minutes; drop the seconds")
        return value.hour, value.minute
    m = _TIME_RE.match(value) if isinstance(value, str) else None
    if not m:
        raise CronError("time", f"{value!r} is not a time of day; use HH:MM, e.g. 02:30")
    hour, minute = int(m[1]), int(m[2])
    if hour > 23 or minute > 59:
        raise CronError("time", f"{value!r} is not a time of day; hours 00-23, minutes 00-59")
    return hour, minute


def _parse_weekdays(days: Iterable[object] | None) -> list[int]:
    if not days or isinstance(days, str | bytes):
        raise CronError("days", "choose at least one day of the week")
    out = set()
    for day in days:
        name = day.strip().lower() if isinstance(day, str) else None
        if name in _DAY_NAMES or name in _FULL_DAY_NAMES:
            out.add(_DAY_NAMES.index(name[:3]))
        elif isinstance(day, int) and not isinstance(day, bool) and 0 <= day <= 6:
            out.add(day)
        else:
            raise CronError(
                "days", f"{day!r} is not a day of the week; use 0-6 (0 = Sunday) or 'mon'..'sun'"
            )
    return sorted(out)


def _parse_monthdays(days: Iterable[object] | None) -> list[int]:
    if not days or isinstance(days, str | bytes):
        raise CronError("days", "choose at least one day of the month")
    out = set()
    for day in days:
        if isinstance(day, int) and not isinstance(day, bool) and 1 <= day <= 31:
            out.add(day)
        else:
            raise CronError("days", f"{day!r} is not a day of the month; use 1-31")
    return sorted(out)


def simple_to_cron(
    kind: str,
    *,
    interval: int | None = None,
    time: str | dtime | None = None,
    days: Iterable[int | str] | None = None,
) -> str:
    """Convert a simple schedule form to a 5-field cron expression; raise CronError on bad input.

    Arguments a kind does not use are ignored, so a form may send every field.
    """
    if kind == "minutes":
        return f"*/{_parse_interval(interval, 59, 'minutes')} * * * *"
    if kind == "hours":
        return f"0 */{_parse_interval(interval, 23, 'hours')} * * *"
    if kind not in ("daily", "weekly", "monthly"):
        raise CronError(
            "kind", f"{kind!r} is not a schedule kind; use one of {', '.join(SIMPLE_KINDS)}"
        )
    hour, minute = _parse_time(time)
    if kind == "daily":
        return f"{minute} {hour} * * *"
    if kind == "weekly":
        return f"{minute} {hour} * * {','.join(map(str, _parse_weekdays(days)))}"
    # Days past a month's end (e.g. 31 in April) simply do not fire that month, as in cron.
    return f"{minute} {hour} {','.join(map(str, _parse_monthdays(days)))} * *"


# --------------------------------------------------------------------------- validation


def validate_timezone(name: str) -> ZoneInfo:
    """Return the ZoneInfo for an IANA zone name; raise CronError(field="timezone") if unknown."""
    # "localtime" resolves to whatever zone the server happens to be in: not a schedule zone.
    if not isinstance(name, str) or not name.strip() or name == "localtime":
        raise CronError("timezone", f"{name!r} is not an IANA time zone such as 'Europe/Berlin'")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise CronError(
            "timezone", f"unknown time zone {name!r}; use an IANA name such as 'Europe/Berlin'"
        ) from exc


def validate_window(start_date: date | None, end_date: date | None) -> None:
    """Raise CronError(field="end_date") when the end date is before the start date."""
    if start_date is not None and end_date is not None and end_date < start_date:
        raise CronError(
            "end_date",
            f"the end date {end_date.isoformat()} is before the start date "
            f"{start_date.isoformat()}",
        )


# --------------------------------------------------------------------------- fire times

_EPOCH = datetime(1970, 1, 1)
_SECOND = timedelta(seconds=1)


def _gap_end(wall: datetime, zone: ZoneInfo) -> datetime:
    """First instant after the DST gap that swallows the (naive, nonexistent) ``wall``."""
    offsets = (
        wall.replace(tzinfo=zone, fold=0).utcoffset(),
        wall.replace(tzinfo=zone, fold=1).utcoffset(),
    )
    wall_ts = (wall - _EPOCH) // _SECOND
    # Before the transition T the offset is the smaller one, after it the larger, so
    # wall - larger < T <= wall - smaller. Search the seconds in between for the first
    # instant whose wall time is not before ``wall``: that instant is T.
    lo = wall_ts - max(offsets) // _SECOND
    hi = wall_ts - min(offsets) // _SECOND
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, zone).replace(tzinfo=None) >= wall:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, zone)


def _resolve(wall: datetime, zone: ZoneInfo) -> datetime:
    """Instant at which the naive wall time fires in ``zone`` (gap -> after it, fold -> first)."""
    # fold=0 picks the first of two occurrences; converting via UTC yields a canonical
    # aware datetime (correct fold) and reveals nonexistent wall times.
    instant = wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)
    if instant.replace(tzinfo=None, fold=0) == wall:
        return instant
    return _gap_end(wall, zone)


def _schedule_days(spec: CronSpec, first: date, last: date | None) -> Iterator[date]:
    """Days from ``first`` to ``last`` (inclusive, None = open) matching the spec, ascending."""
    months = spec.months
    doms = sorted(spec.days_of_month)
    year, month = first.year, first.month
    last_hit_year = year
    while year - last_hit_year <= _CALENDAR_CYCLE_YEARS:
        if last is not None and (year, month) > (last.year, last.month):
            return
        if month in months:
            month_len = calendar.monthrange(year, month)[1]
            for dom in doms:
                if dom > month_len:
                    break
                day = date(year, month, dom)
                if day < first:
                    continue
                if last is not None and day > last:
                    return
                if day.isoweekday() % 7 in spec.days_of_week:
                    last_hit_year = year
                    yield day
        month += 1
        if month > 12:
            month, year = 1, year + 1
            if year >= date.max.year:  # no room left to compute the day after
                return


def _first_after(day: date, times: list[tuple[int, int]], zone: ZoneInfo, floor: datetime) -> int:
    """Index of the first of ``times`` on ``day`` that resolves after ``floor`` (UTC)."""
    # Resolved instants never decrease with the wall time, so the predicate is monotone.
    lo, hi = 0, len(times)
    while lo < hi:
        mid = (lo + hi) // 2
        hour, minute = times[mid]
        wall = datetime(day.year, day.month, day.day, hour, minute)
        if _resolve(wall, zone).astimezone(UTC) <= floor:
            lo = mid + 1
        else:
            hi = mid
    return lo


def fire_times(
    spec: CronSpec | str,
    tz: str,
    *,
    after: datetime,
    start_date: date | None = None,
    end_date: date | None = None,
    until: datetime | None = None,
    limit: int | None = None,
) -> Iterator[datetime]:
    """Fire times strictly after ``after`` (and <= ``until``), ascending, aware in zone ``tz``.

    Arguments are checked when called; the times themselves are computed lazily.
    """
    if isinstance(spec, str):
        spec = parse_cron(spec)
    zone = validate_timezone(tz)
    for name, value in (("after", after), ("until", until)):
        if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
            raise TypeError(f"{name} must be an aware datetime, got {value!r}")
    for name, value in (("start_date", start_date), ("end_date", end_date)):
        # A datetime is a date subclass, but which zone's day would it mean? Refuse it.
        if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
            raise TypeError(f"{name} must be a date, got {value!r}")
    validate_window(start_date, end_date)
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    return _fire_times(spec, zone, after, start_date, end_date, until, limit)


@functools.lru_cache(maxsize=1024)
def _wall_times(spec: CronSpec) -> list[tuple[int, int]]:
    """The (hour, minute) wall times of a day, ascending (shared: callers only read it)."""
    return [(h, m) for h in sorted(spec.hours) for m in sorted(spec.minutes)]


def _fire_times(
    spec: CronSpec,
    zone: ZoneInfo,
    after: datetime,
    start_date: date | None,
    end_date: date | None,
    until: datetime | None,
    limit: int | None,
) -> Iterator[datetime]:
    if limit == 0:
        return
    # All comparisons on UTC: aware datetimes sharing a tzinfo compare by wall time,
    # which is wrong in a fall-back hour.
    floor = after.astimezone(UTC)
    until_utc = until.astimezone(UTC) if until is not None else None
    # Start a day early: a wall time late on the previous day can be pushed past
    # ``after`` by a gap that spans midnight.
    first = after.astimezone(zone).date()
    if first > date.min:
        first -= timedelta(days=1)
    if start_date is not None and start_date > first:
        first = start_date
    last = end_date
    if until_utc is not None:
        until_day = until.astimezone(zone).date()
        if last is None or until_day < last:
            last = until_day
    times = _wall_times(spec)
    count = 0
    # Until a day reaches past ``after``, bisect for its first time past it instead of
    # resolving every wall time (an every-minute spec has 1,440 a day).
    bisecting = True
    for day in _schedule_days(spec, first, last):
        start = 0
        if bisecting:
            start = _first_after(day, times, zone, floor)
            if start == len(times):
                continue
            bisecting = False
        for hour, minute in times[start:]:
            instant = _resolve(datetime(day.year, day.month, day.day, hour, minute), zone)
            instant_utc = instant.astimezone(UTC)
            # Resolved instants never decrease with the wall time, so keeping the last
            # one emitted removes duplicates (gap-shifted times) and everything <= after.
            if instant_utc <= floor:
                continue
            if until_utc is not None and instant_utc > until_utc:
                return
            yield instant
            floor = instant_utc
            count += 1
            if limit is not None and count >= limit:
                return
