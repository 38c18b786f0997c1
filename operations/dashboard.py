"""Dashboard figures for a tenant member: flows and runs by status, runs per day, failures.

Public flows are counted only for their owner (PRODUCT.md): a flow enters the figures when
the user may see it (flows.selectors.flow_list) and it is not someone else's public flow.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.selectors import TenantContext
from flows.choices import FlowStatus
from flows.models import TaskFlow
from flows.selectors import flow_list

from .choices import RUN_ACTIVE, RunStatus
from .models import FlowRun

RECENT_FAILURES = 8


def dashboard_flows(*, ctx: TenantContext) -> QuerySet[TaskFlow]:
    """Flows that count for this user: visible, minus other people's public flows."""
    return flow_list(ctx=ctx).exclude(Q(is_public=True) & ~Q(owner_id=ctx.user.id))


def dashboard_runs(*, ctx: TenantContext) -> QuerySet[FlowRun]:
    """Runs of the flows that count for this user."""
    return FlowRun.objects.filter(
        tenant=ctx.tenant, flow_id__in=dashboard_flows(ctx=ctx).values("pk")
    )


def _by_status(qs: QuerySet[FlowRun]) -> dict[str, int]:
    counts = {status: 0 for status in RunStatus.values}
    for row in qs.order_by().values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    counts["total"] = sum(counts[s] for s in RunStatus.values)
    counts["active"] = sum(counts[s] for s in RUN_ACTIVE)
    return counts


def dashboard_stats(*, ctx: TenantContext, now: datetime | None = None, days: int = 7) -> dict:
    """Counts of flows by status, runs by status today and over `days` days, runs per day."""
    now = now or timezone.now()
    zone = timezone.get_current_timezone()
    today = timezone.localtime(now, zone).date()
    first_day = today - timedelta(days=days - 1)
    today_start = timezone.make_aware(datetime.combine(today, datetime.min.time()), zone)
    period_start = timezone.make_aware(datetime.combine(first_day, datetime.min.time()), zone)

    flows = dashboard_flows(ctx=ctx)
    flow_counts = {status: 0 for status in FlowStatus.values}
    for row in flows.order_by().values("status").annotate(n=Count("id")):
        flow_counts[row["status"]] = row["n"]
    flow_counts["total"] = sum(flow_counts[s] for s in FlowStatus.values)
    flow_counts["frozen"] = flows.filter(is_frozen=True).count()
    flow_counts["public_owned"] = flows.filter(is_public=True).count()

    runs = dashboard_runs(ctx=ctx)
    per_day = {
        first_day + timedelta(days=i): {"succeeded": 0, "failed": 0, "running": 0, "other": 0}
        for i in range(days)
    }
    daily = (
        runs.filter(created_at__gte=period_start)
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .order_by()
        .values("day", "status")
        .annotate(n=Count("id"))
    )
    for row in daily:
        bucket = per_day.get(row["day"])
        if bucket is None:
            continue
        status = row["status"]
        if status in (RunStatus.SUCCEEDED, RunStatus.FAILED):
            bucket[status] += row["n"]
        elif status in RUN_ACTIVE:
            bucket["running"] += row["n"]
        else:
            bucket["other"] += row["n"]
    series = [
        {"day": day, **counts, "total": sum(counts.values())} for day, counts in per_day.items()
    ]

    failures = list(
        runs.filter(status=RunStatus.FAILED)
        .select_related("flow")
        .order_by("-created_at")[:RECENT_FAILURES]
    )
    return {
        "flows": flow_counts,
        "runs_today": _by_status(runs.filter(created_at__gte=today_start)),
        "runs_period": _by_status(runs.filter(created_at__gte=period_start)),
        "days": days,
        "period_start": period_start,
        "per_day": series,
        "per_day_max": max((d["total"] for d in series), default=0),
        "recent_failures": failures,
    }
