"""The O&M grid: flows by business date, each cell the runs of one flow on one date.

A run's business date is the date of its business time in the flow's schedule zone (UTC
for a flow without a schedule), so a daily 00:30 Europe/Berlin run lands on its Berlin
date whatever the server's zone. Reads are permission-aware (flows.selectors.flow_list)
and cost the same few queries whatever the number of flows: the page of flows (with
their schedules), then one query for all their runs in the window, each run's local date
computed by the database with one CASE over the zones of the page.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db.models import Case, DateField, Exists, OuterRef, Q, QuerySet, When
from django.db.models.functions import TruncDate

from accounts.selectors import TenantContext
from flows.models import TaskFlow
from flows.selectors import flow_list

from .models import FlowRun

# The widest window one request may ask for: a year, for the per-flow calendar heat map.
MAX_DAYS = 366
DEFAULT_DAYS = 14
EARLIEST, LATEST = date(1900, 1, 1), date(9998, 12, 31)
# Every zone's local day lies within a day either side of the UTC day.
_ZONE_MARGIN = timedelta(days=1)


@dataclass
class GridCell:
    """The runs of one flow whose business date is `date`, newest first."""

    date: date
    status: str = ""
    latest_run: int | None = None
    runs: list[int] = field(default_factory=list)


@dataclass
class GridRow:
    flow: TaskFlow
    timezone: str
    cells: list[GridCell]


def grid_window(start: date | None, end: date | None, *, today: date | None = None):
    """(start, end) inclusive: DEFAULT_DAYS days ending today, or from `start`; at most MAX_DAYS."""
    for name, value in (("from", start), ("to", end)):
        if value is not None and not EARLIEST <= value <= LATEST:
            raise ValidationError({name: [f"give a date from {EARLIEST} to {LATEST}"]})
    today = today or datetime.now(UTC).date()
    if end is None:
        end = today if start is None else start + timedelta(days=DEFAULT_DAYS - 1)
    if start is None:
        start = end - timedelta(days=DEFAULT_DAYS - 1)
    if end < start:
        raise ValidationError({"to": ["the end date is before the start date ('from')"]})
    if (end - start).days + 1 > MAX_DAYS:
        raise ValidationError({"from": [f"at most {MAX_DAYS} days at once; narrow the window"]})
    return start, end


def flow_zone(flow: TaskFlow) -> str:
    """The zone a flow's business dates are read in: its schedule's, else UTC."""
    try:
        return flow.schedule.timezone
    except ObjectDoesNotExist:  # no schedule (select_related caches the absence)
        return "UTC"


def _local_date(zones: dict[str, Q]):
    """CASE expression: a run's business time as a date in the zone whose condition it meets."""
    whens = [
        When(condition, then=TruncDate("business_time", tzinfo=ZoneInfo(zone)))
        for zone, condition in sorted(zones.items())
        if zone != "UTC"
    ]
    utc = TruncDate("business_time", tzinfo=UTC)
    if not whens:
        return utc
    return Case(*whens, default=utc, output_field=DateField())


def _utc_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    lo = datetime.combine(start, time.min, tzinfo=UTC) - _ZONE_MARGIN
    hi = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC) + _ZONE_MARGIN
    return lo, hi


def grid_flows(
    *,
    ctx: TenantContext,
    start: date,
    end: date,
    flow_ids: Iterable[int] | None = None,
    owner: int | None = None,
    statuses: Iterable[str] | None = None,
) -> QuerySet[TaskFlow]:
    """The flows of the grid, by name: visible ones, optionally only these, of this owner.

    With `statuses`, only flows with a run of one of them dated inside the window; the
    date test needs the zones of the tenant's schedules (one more small query).
    """
    qs = flow_list(ctx=ctx)
    if flow_ids:
        qs = qs.filter(pk__in=list(flow_ids))
    if owner is not None:
        qs = qs.filter(owner_id=owner)
    if statuses:
        lo, hi = _utc_bounds(start, end)
        local = _local_date(
            {zone: Q(flow__schedule__timezone=zone) for zone in tenant_schedule_zones(ctx=ctx)}
        )
        matching = (
            FlowRun.objects.filter(
                flow_id=OuterRef("pk"),
                business_time__gte=lo,
                business_time__lt=hi,
                status__in=list(statuses),
            )
            .annotate(local_date=local)
            .filter(local_date__gte=start, local_date__lte=end)
        )
        qs = qs.filter(Exists(matching))
    return qs.select_related("schedule").order_by("name", "pk")


def tenant_schedule_zones(*, ctx: TenantContext) -> list[str]:
    """The distinct zones of the tenant's schedules (a handful: one small query)."""
    return list(
        TaskFlow.objects.filter(tenant=ctx.tenant, schedule__isnull=False)
        .order_by()
        .values_list("schedule__timezone", flat=True)
        .distinct()
    )


def grid_rows(
    *,
    ctx: TenantContext,
    flows: list[TaskFlow],
    start: date,
    end: date,
    statuses: Iterable[str] | None = None,
) -> list[GridRow]:
    """The cells of these flows between `start` and `end` (inclusive), in one query."""
    zones: dict[str, list[int]] = {}
    zone_of = {}
    for flow in flows:
        zone_of[flow.pk] = flow_zone(flow)
        zones.setdefault(zone_of[flow.pk], []).append(flow.pk)
    cells: dict[int, dict[date, GridCell]] = {flow.pk: {} for flow in flows}
    if flows:
        lo, hi = _utc_bounds(start, end)
        runs = FlowRun.objects.filter(
            tenant=ctx.tenant,
            flow_id__in=[flow.pk for flow in flows],
            business_time__gte=lo,
            business_time__lt=hi,
        )
        if statuses:
            runs = runs.filter(status__in=list(statuses))
        rows = (
            runs.annotate(
                local_date=_local_date({z: Q(flow_id__in=ids) for z, ids in zones.items()})
            )
            .filter(local_date__gte=start, local_date__lte=end)
            .order_by("-id")
            .values_list("id", "flow_id", "local_date", "status")
        )
        for run_id, flow_id, day, status in rows:
            cell = cells[flow_id].get(day)
            if cell is None:
                # Newest first: the first run met on a date is its latest.
                cell = cells[flow_id][day] = GridCell(date=day, status=status, latest_run=run_id)
            cell.runs.append(run_id)
    return [
        GridRow(
            flow=flow,
            timezone=zone_of[flow.pk],
            cells=[cells[flow.pk][d] for d in sorted(cells[flow.pk])],
        )
        for flow in flows
    ]


def grid_dates(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
