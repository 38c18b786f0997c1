"""Cumulative series of /metrics kept as running totals in the database.

Each series counts events that have a timestamp (a node finished, a run finished, a fire
time fired, a delivery failed). A scrape adds the events in (counted_until, now - SETTLE]
to the stored totals under the series' row lock, then moves counted_until: every web
process reads the same totals, and an event is counted once. SETTLE leaves time for
results committed a little after their timestamp (a worker retrying its database write);
a scrape catches up at most MAX_STEP at a time, so the first scrape of a large history is
not one huge query. Totals start at the oldest event on record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import (
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    IntegerField,
    Min,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.utils import timezone

from operations.choices import RUN_TERMINAL, NodeStatus
from operations.models import FlowRun, NodeRun, NotificationAttempt
from scheduling.models import ScheduleFiring
from scheduling.services import GRACE

from .models import MetricsTotal

MAX_STEP = timedelta(days=1)
NODE_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600)
LATENESS_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300)


def settle() -> timedelta:
    return timedelta(seconds=float(getattr(settings, "METRICS_SETTLE_SECONDS", 120)))


@dataclass(frozen=True)
class Series:
    """One running total: what it counts and when each event happened."""

    name: str
    labels: tuple[str, ...]
    # Buckets (upper bounds) for a histogram; None for a counter.
    buckets: tuple[float, ...] | None
    # (since, upto] → rows of (label values..., bucket index or None, count, sum)
    read: Callable[[datetime, datetime], Iterable[tuple]]
    # The timestamp of the oldest event on record, or None.
    oldest: Callable[[], datetime | None]
    # Extra delay before an event is counted (fire times are inserted up to GRACE late).
    delay: timedelta = timedelta(0)


def _bucket(value, bounds: tuple[float, ...], as_duration: bool) -> Case:
    """CASE: the index of the first bucket whose upper bound holds `value`."""
    whens = [
        When(**{f"{value}__lte": timedelta(seconds=b) if as_duration else b}, then=Value(i))
        for i, b in enumerate(bounds)
    ]
    return Case(*whens, default=Value(len(bounds)), output_field=IntegerField())


def _node_durations(since: datetime, upto: datetime):
    """Finished attempts (succeeded or failed) by node type, outcome and duration bucket."""
    seconds = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    rows = (
        NodeRun.objects.filter(
            finished_at__gt=since,
            finished_at__lte=upto,
            started_at__isnull=False,
            status__in=[NodeStatus.SUCCEEDED, NodeStatus.FAILED],
        )
        .annotate(seconds=seconds)
        .annotate(bucket=_bucket("seconds", NODE_BUCKETS, as_duration=True))
        .order_by()
        .values("node_type", "status", "bucket")
        .annotate(n=Count("id"), total=Sum("seconds"))
    )
    for row in rows:
        total = row["total"].total_seconds() if row["total"] is not None else 0.0
        yield row["node_type"], row["status"], row["bucket"], row["n"], total


def _runs_finished(since: datetime, upto: datetime):
    rows = (
        FlowRun.objects.filter(
            finished_at__gt=since, finished_at__lte=upto, status__in=list(RUN_TERMINAL)
        )
        .order_by()
        .values("tenant__slug", "status")
        .annotate(n=Count("id"))
    )
    for row in rows:
        yield row["tenant__slug"], row["status"], None, row["n"], 0.0


def _lateness(since: datetime, upto: datetime):
    rows = (
        ScheduleFiring.objects.filter(
            fire_time__gt=since, fire_time__lte=upto, lateness__isnull=False
        )
        .annotate(bucket=_bucket("lateness", LATENESS_BUCKETS, as_duration=False))
        .order_by()
        .values("bucket")
        .annotate(n=Count("id"), total=Sum("lateness", output_field=FloatField()))
    )
    for row in rows:
        yield row["bucket"], row["n"], row["total"] or 0.0


def _delivery_failures(since: datetime, upto: datetime):
    rows = (
        NotificationAttempt.objects.filter(at__gt=since, at__lte=upto, ok=False)
        .order_by()
        .values("channel", "event")
        .annotate(n=Count("id"))
    )
    for row in rows:
        yield row["channel"], row["event"], None, row["n"], 0.0


def _oldest(qs: QuerySet, field: str) -> Callable[[], datetime | None]:
    return lambda: qs.aggregate(first=Min(field))["first"]


def _series() -> tuple[Series, ...]:
    finished_nodes = NodeRun.objects.filter(finished_at__isnull=False)
    finished_runs = FlowRun.objects.filter(finished_at__isnull=False)
    return (
        Series(
            "node_duration_seconds",
            ("node_type", "outcome"),
            NODE_BUCKETS,
            _node_durations,
            _oldest(finished_nodes, "finished_at"),
        ),
        Series(
            "runs_finished_total",
            ("tenant", "state"),
            None,
            _runs_finished,
            _oldest(finished_runs, "finished_at"),
        ),
        Series(
            "scheduling_lateness_seconds",
            (),
            LATENESS_BUCKETS,
            _lateness,
            _oldest(ScheduleFiring.objects.all(), "fire_time"),
            # A fire time gets its run (and its lateness) up to GRACE after it.
            delay=GRACE,
        ),
        Series(
            "alert_delivery_failures_total",
            ("channel", "event"),
            None,
            _delivery_failures,
            _oldest(NotificationAttempt.objects.filter(ok=False), "at"),
        ),
    )


def _add(data: dict, series: Series, rows: Iterable[tuple]) -> None:
    size = len(series.buckets) + 1 if series.buckets is not None else 0
    for row in rows:
        *labels, bucket, count, total = row
        key = "|".join(str(v) for v in labels)
        entry = data.setdefault(key, {"buckets": [0] * size, "sum": 0.0, "count": 0})
        if bucket is not None:
            entry["buckets"][bucket] += count
        entry["count"] += count
        entry["sum"] += total


def totals_advance(*, now: datetime | None = None) -> dict[str, dict]:
    """Bring every series up to date and return {name: {label key: totals}}."""
    now = now or timezone.now()
    out = {}
    for series in _series():
        out[series.name] = _advance(series, now)
    return out


def _advance(series: Series, now: datetime) -> dict:
    with transaction.atomic():
        MetricsTotal.objects.get_or_create(name=series.name)
        # Another process advancing it right now: answer with what is stored.
        row = MetricsTotal.objects.select_for_update(skip_locked=True).filter(name=series.name)
        total = row.first()
        if total is None:
            return MetricsTotal.objects.get(name=series.name).data
        target = now - settle() - series.delay
        since = total.counted_until
        if since is None:
            oldest = series.oldest()
            if oldest is None:
                total.counted_until = target
                total.save(update_fields=["counted_until"])
                return total.data
            since = oldest - timedelta(microseconds=1)
        upto = min(target, since + MAX_STEP)
        if upto > since:
            _add(total.data, series, series.read(since, upto))
            total.counted_until = upto
            total.save(update_fields=["counted_until", "data"])
        return total.data
