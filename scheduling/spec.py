"""Turn what a user wrote (a cron expression or a simple form, a window, a zone) into a checked spec.

Shared by the save service, the live preview and the admin form, so every entry point
accepts and refuses exactly the same input. Errors are django ValidationErrors keyed by
the request field (`cron`, `kind`, `interval`, `time`, `days`, `timezone`, `end_date`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as dtime

from django.core.exceptions import ValidationError
from django.utils import timezone as djtz

from . import cron as cronlib
from .choices import ScheduleKind

# CronError.field values that are parts of the cron expression: reported on "cron".
_CRON_PARTS = {"cron", "minute", "hour", "day_of_month", "month", "day_of_week"}
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
MAX_CRON_LENGTH = 255


@dataclass(frozen=True)
class ScheduleSpec:
    """A validated schedule: the cron that fires, its simple form, window and zone."""

    kind: str
    cron: str
    interval: int | None
    time: dtime | None
    days: list
    start_date: date
    end_date: date | None
    timezone: str

    def fire_times(
        self, *, after: datetime, until: datetime | None = None, limit: int | None = None
    ) -> Iterator[datetime]:
        """Fire times strictly after `after` (and <= `until`), in the schedule's zone."""
        return cronlib.fire_times(
            self.cron,
            self.timezone,
            after=after,
            start_date=self.start_date,
            end_date=self.end_date,
            until=until,
            limit=limit,
        )


def _error_key(exc: cronlib.CronError) -> str:
    return "cron" if exc.field in _CRON_PARTS else exc.field


def _message(exc: cronlib.CronError) -> str:
    # Name the cron part in the message when the error is reported on "cron" as a whole.
    if exc.field in _CRON_PARTS - {"cron"}:
        return f"{exc.field.replace('_', ' ')}: {exc.message}"
    return exc.message


def _normalize_simple(kind: str, cron: str) -> tuple[int | None, dtime | None, list]:
    """The interval, time and days of a simple form, read back from the cron it produced."""
    minute, hour, dom, _month, dow = cron.split()
    if kind == ScheduleKind.MINUTES:
        return int(minute.split("/")[1]), None, []
    if kind == ScheduleKind.HOURS:
        return int(hour.split("/")[1]), None, []
    at = dtime(int(hour), int(minute))
    if kind == ScheduleKind.WEEKLY:
        return None, at, [_DAY_NAMES[int(d)] for d in dow.split(",")]
    if kind == ScheduleKind.MONTHLY:
        return None, at, [int(d) for d in dom.split(",")]
    return None, at, []


def build_spec(
    *,
    cron: str | None = None,
    kind: str | None = None,
    interval: object = None,
    time: object = None,
    days: object = None,
    start_date: date | None = None,
    end_date: date | None = None,
    timezone: str | None = "UTC",
    default_start: date | None = None,
) -> ScheduleSpec:
    """Validate schedule input; raise ValidationError naming every wrong field.

    `kind` null or "cron" means `cron` is the schedule; any other kind is a simple form
    turned into cron (a `cron` sent along with it must then say the same).
    """
    errors: dict[str, list[str]] = {}
    # Wrong types (an imported document is not typed by a serializer) are named, not crashed on.
    for name, value in (("cron", cron), ("kind", kind), ("timezone", timezone)):
        if value is not None and not isinstance(value, str):
            errors[name] = ["must be text"]
    for name, value in (("start_date", start_date), ("end_date", end_date)):
        if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
            errors[name] = ["must be a date (YYYY-MM-DD)"]
    if errors:
        raise ValidationError(errors)
    zone_name = "UTC" if timezone in (None, "") else timezone
    zone = None
    try:
        zone = cronlib.validate_timezone(zone_name)
    except cronlib.CronError as exc:
        errors.setdefault("timezone", []).append(exc.message)

    if isinstance(cron, str):
        cron = " ".join(cron.split()) or None
    kind = kind or ScheduleKind.CRON
    expression = None
    simple: tuple[int | None, dtime | None, list] = (None, None, [])
    if kind not in ScheduleKind.values:
        errors["kind"] = [
            f"{kind!r} is not a schedule kind; use one of {', '.join(ScheduleKind.values)}"
        ]
    elif kind == ScheduleKind.CRON:
        if cron is None:
            errors["cron"] = ["a cron expression is required (or a simple form with 'kind')"]
        elif len(cron) > MAX_CRON_LENGTH:
            errors["cron"] = [f"at most {MAX_CRON_LENGTH} characters"]
        else:
            try:
                expression = cronlib.parse_cron(cron).expression
            except cronlib.CronError as exc:
                errors.setdefault(_error_key(exc), []).append(_message(exc))
    else:
        if days is not None and not isinstance(days, list | tuple):
            errors["days"] = ["give the days as a list, e.g. ['mon', 'thu'] or [1, 15]"]
        else:
            try:
                expression = cronlib.simple_to_cron(kind, interval=interval, time=time, days=days)
            except cronlib.CronError as exc:
                errors.setdefault(_error_key(exc), []).append(_message(exc))
        if expression is not None:
            simple = _normalize_simple(kind, expression)
            if cron is not None and cron != expression:
                errors["cron"] = [
                    f"{cron!r} does not match the {kind} form ({expression!r}); send only one "
                    f"of them, or kind 'cron' to use the expression"
                ]

    if start_date is None:
        start_date = default_start
        if start_date is None and zone is not None:
            start_date = djtz.now().astimezone(zone).date()
    try:
        cronlib.validate_window(start_date, end_date)
    except cronlib.CronError as exc:
        errors.setdefault(exc.field, []).append(exc.message)

    if errors:
        raise ValidationError(errors)
    interval_out, time_out, days_out = simple
    return ScheduleSpec(
        kind=kind,
        cron=expression,
        interval=interval_out,
        time=time_out,
        days=days_out,
        start_date=start_date,
        end_date=end_date,
        timezone=zone_name,
    )


def spec_of(schedule) -> ScheduleSpec:
    """The spec of a saved Schedule (trusted: it was validated when saved)."""
    return ScheduleSpec(
        kind=schedule.kind,
        cron=schedule.cron,
        interval=schedule.interval,
        time=schedule.time,
        days=list(schedule.days or []),
        start_date=schedule.start_date,
        end_date=schedule.end_date,
        timezone=schedule.timezone,
    )


def spec_from_snapshot(data: dict | None) -> ScheduleSpec | None:
    """The spec of a schedule as a published version's snapshot stores it (`as_snapshot()`),
    or None when there is none or it cannot fire (no cron or start date)."""
    if not isinstance(data, dict) or not data.get("cron") or not data.get("start_date"):
        return None
    try:
        at = data.get("time")
        return ScheduleSpec(
            kind=data.get("kind") or ScheduleKind.CRON,
            cron=data["cron"],
            interval=data.get("interval"),
            time=dtime.fromisoformat(at) if isinstance(at, str) and at else None,
            days=list(data.get("days") or []),
            start_date=date.fromisoformat(data["start_date"]),
            end_date=date.fromisoformat(data["end_date"]) if data.get("end_date") else None,
            timezone=data.get("timezone") or "UTC",
        )
    except (TypeError, ValueError):
        return None


def published_spec(schedule) -> ScheduleSpec | None:
    """The spec of the schedule that fires (the published copy), or None."""
    return spec_from_snapshot(getattr(schedule, "published", None))


_DAY_WORDS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def describe(schedule) -> str:
    """A saved schedule (or spec) in words, as the console shows it: "every Monday and Thursday at 00:00"."""
    kind, at = schedule.kind, schedule.time.strftime("%H:%M") if schedule.time else None
    if kind == ScheduleKind.MINUTES:
        return f"every {schedule.interval} minutes"
    if kind == ScheduleKind.HOURS:
        return f"every {schedule.interval} hours"
    if kind == ScheduleKind.DAILY:
        return f"every day at {at}"
    if kind == ScheduleKind.WEEKLY:
        days = [
            _DAY_WORDS[d if isinstance(d, int) else _DAY_NAMES.index(str(d)[:3].lower())]
            for d in schedule.days or []
        ]
        return f"every {_and(days)} at {at}" if days else f"weekly at {at}"
    if kind == ScheduleKind.MONTHLY:
        days = [_ordinal(int(d)) for d in schedule.days or []]
        return f"on the {_and(days)} of every month at {at}" if days else f"monthly at {at}"
    return f"cron {schedule.cron}"
