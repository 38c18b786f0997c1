"""Reads of schedules: who may see which, their state, previews, missed and ranged fire times."""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import time as dtime
from itertools import islice

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone as djtz

from accounts.selectors import TenantContext
from flows.choices import FlowStatus
from flows.models import FlowVersion, TaskFlow
from flows.selectors import flow_list

from .choices import ScheduleKind, ScheduleState
from .cron import CronError
from .models import Schedule, ScheduleFiring
from .services import GRACE
from .spec import ScheduleSpec, describe, published_spec, spec_of

# Upper bound of fire times one missed-fire-times query walks (two weeks of an
# every-minute schedule): beyond it the caller must narrow the window.
MAX_WALK = 20_160
# Runs one time-range run may create (one per fire time).
MAX_RANGE_RUNS = 500


def schedule_list(*, ctx: TenantContext) -> QuerySet[Schedule]:
    """Schedules of the flows the user may see in the request's tenant."""
    return Schedule.objects.filter(tenant=ctx.tenant, flow__in=flow_list(ctx=ctx)).select_related(
        "flow"
    )


def schedule_for_flow(*, flow: TaskFlow) -> Schedule | None:
    """The flow's saved schedule, or None."""
    return Schedule.objects.filter(flow_id=flow.pk).first()


def schedule_default(*, flow: TaskFlow) -> Schedule:
    """An unsaved, disabled schedule: what a flow without one shows (daily at 00:00 UTC)."""
    return Schedule(
        tenant_id=flow.tenant_id,
        flow=flow,
        enabled=False,
        kind=ScheduleKind.DAILY,
        cron="0 0 * * *",
        time=dtime(0, 0),
        days=[],
        start_date=djtz.now().date(),
        end_date=None,
        timezone="UTC",
    )


def schedule_fired_spec(schedule: Schedule | None) -> ScheduleSpec | None:
    """The schedule that fires (its published copy), or None."""
    return published_spec(schedule) if schedule is not None and schedule.pk else None


def schedule_working_spec(schedule: Schedule | None) -> ScheduleSpec | None:
    """The schedule a flow's fire times are read from outside firing (time-range runs,
    dependency windows, business-time zones): the published copy once the flow has been
    published with a schedule, else the draft (a flow not yet published has only it)."""
    if schedule is None:
        return None
    if schedule.published is not None:
        return published_spec(schedule)
    return spec_of(schedule) if schedule.cron else None


def _working_enabled(schedule: Schedule) -> bool:
    return schedule.published_enabled if schedule.published is not None else schedule.enabled


def schedule_state(
    *, schedule: Schedule, flow: TaskFlow | None = None, now: datetime | None = None
) -> tuple[str, datetime | None]:
    """(state, next fire time) of the schedule that fires (the published copy) as the
    console shows them; the time is None when none is due. Draft edits change neither
    until the flow is published."""
    flow = flow or schedule.flow
    now = now or djtz.now()
    if schedule.pk is None:
        return ScheduleState.DISABLED, None
    if flow.status != FlowStatus.PUBLISHED:
        return ScheduleState.NOT_PUBLISHED, None
    spec = schedule_fired_spec(schedule)
    if spec is None:
        # Published before this schedule was saved: it fires once the flow is published.
        return ScheduleState.NOT_PUBLISHED, None
    if not schedule.published_enabled:
        return ScheduleState.DISABLED, None
    if flow.is_frozen:
        return ScheduleState.FROZEN, None
    upcoming = next(spec.fire_times(after=now, limit=1), None)
    if upcoming is None:
        return ScheduleState.ENDED, None
    if now.astimezone(upcoming.tzinfo).date() < spec.start_date:
        return ScheduleState.NOT_STARTED, upcoming
    return ScheduleState.ACTIVE, upcoming


def schedule_preview(
    *, spec: ScheduleSpec, count: int = 10, after: datetime | None = None
) -> list[datetime]:
    """The next `count` fire times after `after` (default now), in the schedule's zone."""
    return list(spec.fire_times(after=after or djtz.now(), limit=count))


class TooManyFireTimes(ValueError):
    """A range holds more fire times than its caller takes (one message for every caller)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} fire times fall in this range; shorten it")
        self.limit = limit


def fire_times_between(
    spec: ScheduleSpec, *, start: datetime, end: datetime, limit: int, include_end: bool = True
) -> list[datetime]:
    """The schedule's fire times from `start` to `end` (`end` included unless told not),
    oldest first: the one walk over a calendar that missed fire times, time-range runs and
    dependency windows share. TooManyFireTimes beyond `limit`; a ValueError for times
    beyond what the calendar can hold.
    """
    try:
        times = list(
            islice(spec.fire_times(after=start - timedelta(microseconds=1), until=end), limit + 1)
        )
    except OverflowError as exc:
        raise ValueError("times must lie between years 1 and 9999") from exc
    if not include_end:
        times = [t for t in times if t < end]
    if len(times) > limit:
        raise TooManyFireTimes(limit)
    return times


def _walk(spec: ScheduleSpec, *, start: datetime, end: datetime, field: str) -> list[datetime]:
    """Fire times in [start, end]; a ValidationError on `field` when there are too many."""
    try:
        return fire_times_between(spec, start=start, end=end, limit=MAX_WALK)
    except ValueError as exc:
        raise ValidationError({field: [str(exc)]}) from exc


def missed_fire_times(
    *, flow: TaskFlow, since: datetime, until: datetime, now: datetime | None = None
) -> list[datetime]:
    """Fire times in [since, until] that fired no scheduled run (beat down, flow frozen...).

    Only times after the schedule was saved and the flow first published, and at least
    GRACE old (younger ones may still fire). They are not replayed: a time-range run can
    backfill them.
    """
    schedule = schedule_for_flow(flow=flow)
    spec = schedule_fired_spec(schedule)
    if spec is None:
        return []
    first_published = (
        FlowVersion.objects.filter(flow_id=flow.pk)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    if first_published is None:
        return []
    now = now or djtz.now()
    start = max(since, schedule.created_at, first_published)
    end = min(until, now - GRACE)
    if start > end:
        return []
    times = _walk(spec, start=start, end=end, field="since")
    fired = {
        t.timestamp()
        for t in ScheduleFiring.objects.filter(
            flow_id=flow.pk, fire_time__gte=start, fire_time__lte=end
        ).values_list("fire_time", flat=True)
    }
    return [t for t in times if t.timestamp() not in fired]


def fire_times_in_range(*, flow: TaskFlow, start: datetime, end: datetime) -> list[datetime]:
    """The flow's schedule fire times in [start, end], oldest first: a time-range run's runs.

    The one answer to "which fire times does this range hold" (the run API asks it through
    flows.hooks). A ValidationError naming `start` or `end`, the fields of that request,
    when there is no schedule, the range is reversed or empty, or it holds more than
    MAX_RANGE_RUNS fire times.
    """
    if start.utcoffset() is None or end.utcoffset() is None:
        raise ValidationError({"start": ["Give times with a UTC offset or 'Z'."]})
    if end < start:
        raise ValidationError({"end": ["The end must not be before the start."]})
    spec = schedule_working_spec(schedule_for_flow(flow=flow))
    if spec is None:
        raise ValidationError(
            {
                "start": [
                    "A time-range run creates one run per schedule fire time: "
                    "give the flow a schedule first."
                ]
            }
        )
    try:
        times = fire_times_between(spec, start=start, end=end, limit=MAX_RANGE_RUNS)
    except TooManyFireTimes as exc:
        raise ValidationError({"end": [str(exc)]}) from exc
    except (CronError, ValueError, TypeError) as exc:
        raise ValidationError({"start": [f"The flow's schedule cannot be used: {exc}"]}) from exc
    if not times:
        raise ValidationError(
            {"start": ["No fire time of the flow's schedule falls between start and end."]}
        )
    return times


def fire_times_window(*, flow_id: int, start: datetime, end: datetime) -> list[datetime] | None:
    """Fire times of the flow's enabled schedule in [start, end), oldest first (the
    `fire_times_window` hook: a dependency check's window); None without an enabled schedule.

    TooManyFireTimes (a ValueError) when the window holds more than MAX_WALK fire times (a
    month of an every-minute schedule): too wide to check fire time by fire time.
    """
    schedule = Schedule.objects.filter(flow_id=flow_id).first()
    spec = schedule_working_spec(schedule)
    if spec is None or not _working_enabled(schedule):
        return None
    try:
        return fire_times_between(spec, start=start, end=end, limit=MAX_WALK, include_end=False)
    except TooManyFireTimes:
        raise
    except (CronError, ValueError, TypeError) as exc:
        raise ValueError(f"the flow's schedule cannot be used: {exc}") from exc


def schedule_summary(*, flow: TaskFlow) -> dict | None:
    """The flow's schedule as it fires (the published copy: `fires`, None while none is
    published; `shown`, `enabled` and `in_words` fall back to the draft then), its state
    as the console names it, its next fire time, and whether the draft differs (it takes
    effect when the flow is published)."""
    schedule = schedule_for_flow(flow=flow)
    if schedule is None:
        return None
    state, next_fire = schedule_state(schedule=schedule, flow=flow)
    fires = schedule_fired_spec(schedule)
    return {
        "schedule": schedule,
        "fires": fires,
        # What the console shows: the published schedule, or the draft while none is.
        "shown": fires or schedule,
        "enabled": schedule.published_enabled if fires is not None else schedule.enabled,
        "state": ScheduleState(state).label,
        "next_fire": next_fire,
        "in_words": describe(fires or schedule),
        "draft_differs": schedule.draft_differs,
    }


def schedule_zones(*, flow_ids: list[int]) -> dict[int, str]:
    """The zone of each of these flows' schedules (flows without one are left out): the
    published schedule's once there is one, else the draft's."""
    zones = {}
    for flow_id, zone, published in Schedule.objects.filter(flow_id__in=flow_ids).values_list(
        "flow_id", "timezone", "published"
    ):
        zones[flow_id] = (published or {}).get("timezone") or zone
    return zones


def schedule_lateness(*, since: datetime, flow_ids: list[int] | None = None) -> list[float]:
    """Lateness in seconds (fire time to run created) of the firings since `since`."""
    qs = ScheduleFiring.objects.filter(fire_time__gte=since, lateness__isnull=False)
    if flow_ids is not None:
        qs = qs.filter(flow_id__in=flow_ids)
    return list(qs.values_list("lateness", flat=True))
