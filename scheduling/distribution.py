"""How a day's fire times spread over its hours, for the schedules a user may see.

The fire times come from the one calendar (scheduling.cron through ScheduleSpec), so the
distribution counts exactly what beat will fire: only schedules that fire (enabled, flow
published and not frozen: services.schedule_is_firing). Schedules sharing a calendar are
walked once, so a tenant with a thousand copies of `0 0 * * *` costs one walk.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from accounts.selectors import TenantContext

from .selectors import schedule_list
from .services import schedule_is_firing
from .spec import published_spec

BUSIEST = 10


def schedule_distribution(*, ctx: TenantContext, day: date, zone: ZoneInfo) -> dict:
    """Fire times on `day` (a calendar day in `zone`) per hour of that day and busiest minutes."""
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    # One walk per distinct calendar: {key: (a schedule with it, flows firing on it)}.
    calendars: dict[tuple, tuple] = {}
    for schedule in schedule_list(ctx=ctx).only(
        "id", "published", "flow__id", "flow__status", "flow__is_frozen",
    ):  # fmt: skip
        spec = published_spec(schedule)  # what fires, not the draft
        if spec is not None and schedule_is_firing(schedule=schedule, flow=schedule.flow):
            key = (spec.cron, spec.timezone, spec.start_date, spec.end_date)
            calendars.setdefault(key, (spec, []))[1].append(schedule.flow_id)

    per_hour = Counter()
    flows_per_hour: dict[int, set[int]] = defaultdict(set)
    per_minute = Counter()
    flows_per_minute: dict[str, set[int]] = defaultdict(set)
    firing_flows: set[int] = set()
    for spec, schedule_flows in calendars.values():
        # `after` is exclusive: start a microsecond early so midnight itself counts.
        for instant in spec.fire_times(
            after=start - timedelta(microseconds=1), until=end - timedelta(microseconds=1)
        ):
            local = instant.astimezone(zone)
            minute = local.strftime("%H:%M")
            per_hour[local.hour] += len(schedule_flows)
            flows_per_hour[local.hour].update(schedule_flows)
            per_minute[minute] += len(schedule_flows)
            flows_per_minute[minute].update(schedule_flows)
            firing_flows.update(schedule_flows)

    busiest = sorted(per_minute.items(), key=lambda item: (-item[1], item[0]))[:BUSIEST]
    return {
        "date": day,
        "timezone": zone.key,
        "total": sum(per_hour.values()),
        "flows": len(firing_flows),
        "hours": [
            {"hour": h, "fire_times": per_hour[h], "flows": len(flows_per_hour[h])}
            for h in range(24)
        ],
        "busiest": [
            {"time": m, "fire_times": n, "flows": len(flows_per_minute[m])} for m, n in busiest
        ],
    }
