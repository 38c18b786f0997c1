"""What a backfill (a time-range run) runs: which fire times (`only`), which flows depend on
the backfilled one (`downstream_flows`), and the plan it answers with `plan_only`.

Reads only; creation.run_start writes the runs.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db.models import F

from flows import hooks
from flows.choices import LineageAccess
from flows.models import FlowVersion, LineageEntry, TaskFlow
from operations.choices import RunMode, RunStatus
from operations.models import FlowRun

ONLY_ALL, ONLY_MISSING, ONLY_FAILED = "all", "missing", "failed"
ONLY = (ONLY_ALL, ONLY_MISSING, ONLY_FAILED)


def _runs_at(flow: TaskFlow, times: list[datetime]):
    # A dry run executes nothing: it neither fills a fire time nor leaves it failed.
    return FlowRun.objects.filter(flow=flow, business_time__in=times).exclude(mode=RunMode.DRY)


def select_times(
    *, flow: TaskFlow, version: FlowVersion | None, times: list[datetime], only: str
) -> list[datetime]:
    """The fire times a backfill runs, in the given order.

    `all`: every one; `missing`: those without a succeeded run of `version` or a later one
    (the draft, None, counts as later than every published version); `failed`: those whose
    latest run failed. A fire time's runs are those with exactly that business time
    (scheduled runs, backfills and their reruns).
    """
    if only not in ONLY:
        raise ValidationError({"only": ["Use all, missing (no successful run) or failed."]})
    if only == ONLY_ALL or not times:
        return list(times)
    runs = _runs_at(flow, times)
    if only == ONLY_MISSING:
        done = runs.filter(status=RunStatus.SUCCEEDED)
        if version is None:
            done = done.filter(version__isnull=True)
        else:
            done = done.filter(version__number__gte=version.number)
        filled = {t.timestamp() for t in done.values_list("business_time", flat=True)}
        return [t for t in times if t.timestamp() not in filled]
    latest: dict = {}
    for at, status in runs.order_by("business_time", "-created_at", "-id").values_list(
        "business_time", "status"
    ):
        latest.setdefault(at.timestamp(), status)
    return [t for t in times if latest.get(t.timestamp()) == RunStatus.FAILED]


def dependent_flows(flow: TaskFlow) -> list[TaskFlow]:
    """The flows that depend on `flow` through dependency checks of their published versions,
    directly or through one another, upstream ones first (dependency order)."""
    edges: dict[int, set[int]] = {}  # upstream flow -> flows whose checks wait for it
    for down, up in (
        LineageEntry.objects.filter(
            tenant_id=flow.tenant_id,
            access=LineageAccess.DEPENDS,
            version_id=F("flow__published_version_id"),
        )
        .exclude(depends_on=None)
        .values_list("flow_id", "depends_on")
    ):
        if down != up:
            edges.setdefault(up, set()).add(down)
    reached: set[int] = set()
    todo = [flow.pk]
    while todo:
        for down in edges.get(todo.pop(), ()):
            if down != flow.pk and down not in reached:
                reached.add(down)
                todo.append(down)
    if not reached:
        return []
    # Kahn's order over the reached flows; a cycle among them is broken by id.
    upstream = {
        f: {u for u, downs in edges.items() if f in downs and u in reached} for f in reached
    }
    order: list[int] = []
    while upstream:
        ready = sorted(f for f, ups in upstream.items() if not ups) or [min(upstream)]
        for f in ready:
            order.append(f)
            del upstream[f]
        for ups in upstream.values():
            ups.difference_update(ready)
    flows = TaskFlow.objects.in_bulk(order)
    return [flows[f] for f in order if f in flows]


def same_dates(
    *, root: TaskFlow, flow: TaskFlow, times: list[datetime], start: datetime, end: datetime
) -> list[datetime]:
    """The business times of a dependent flow's backfill: its own fire times in the range on
    the dates (in the root flow's schedule zone) of the root's `times`; without a schedule,
    the root's times themselves."""
    try:
        own = hooks.fire_times_in_range(flow=flow, start=start, end=end)
    except ValidationError:
        return list(times)
    zone = ZoneInfo(hooks.schedule_zones(flow_ids=[root.pk]).get(root.pk) or "UTC")
    dates = {t.astimezone(zone).date() for t in times}
    return [t for t in own if t.astimezone(zone).date() in dates]


def date_key(root: TaskFlow):
    """A sort key: a business time's date in the root flow's schedule zone."""
    zone = ZoneInfo(hooks.schedule_zones(flow_ids=[root.pk]).get(root.pk) or "UTC")
    return lambda t: t.astimezone(zone).date()
