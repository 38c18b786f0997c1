"""Deadlines of runs: when a run should be done, where it stands, and the sweep that alerts.

A flow's deadline (frozen into each version's snapshot) gives a scheduled run, and a
point-in-time run, a `deadline_at` from its fire time (else its business time). The sweep,
a beat entry every second, reads the runs whose deadline is still open and
- alerts once when a run is still going (or has not even started) at its deadline, and
- alerts once, early, when a run's predicted finish passes its deadline: the critical path
  through the nodes still to run, each at its p90 over the flow's recent successful runs
  (the trends' p90, engine.core's critical path).
A deadline that falls before the next sweep gets a check of its own, sent to run at that
moment (`deadline_check`), so a missed alert does not wait up to a second for a sweep.
Each alert is claimed by a status-guarded UPDATE of the run, so it is sent once however
many sweeps and checks see it.
"""

from __future__ import annotations

import time as monotonic
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from operations import stats
from operations.choices import RUN_ACTIVE, DeadlineState, RunMode
from operations.engine import core
from operations.models import FlowRun, NodeRun
from operations.plan import Plan

from .decisions import run_plan
from .store import RUN_FIELDS

# Runs whose deadline counts: a fire time's run, or a run for a point in time. Test runs,
# dry runs and backfills of a time range have none (their fire times are long past).
DEADLINE_MODES = (RunMode.SCHEDULED, RunMode.POINT_IN_TIME)
# Runs one sweep looks at, at most (the oldest deadlines first).
SWEEP_LIMIT = 500
# How long a worker reuses a flow's node p90s (they move only when runs finish).
P90_CACHE_SECONDS = 30.0
_p90_cache: dict[int, tuple[float, dict]] = {}
# A deadline this close to a sweep gets a check of its own at that moment (the sweep runs
# every second: a little more, so beat's jitter leaves no gap).
TIMED_CHECK_AHEAD_S = 1.5
CHECK_TASK = "operations.deadline_check"


def deadline_for(deadline, base: datetime, zone: ZoneInfo) -> datetime | None:
    """The moment a deadline setting gives for a run fired at `base`, or None.

    `after_fire_s`: that many seconds after `base`. `at` ("HH:MM"): that wall-clock time
    on `base`'s date in `zone` (the schedule's), or on the next day when it has passed.
    """
    if not isinstance(deadline, dict):
        return None
    if isinstance(deadline.get("after_fire_s"), int):
        return base + timedelta(seconds=deadline["after_fire_s"])
    at = deadline.get("at")
    if isinstance(at, str) and ":" in at:
        hour, minute = (int(p) for p in at.split(":", 1))
        local = base.astimezone(zone)
        moment = datetime.combine(local.date(), time(hour, minute), tzinfo=zone)
        if moment <= base:
            moment = datetime.combine(local.date() + timedelta(days=1), time(hour, minute), zone)
        return moment.astimezone(ZoneInfo("UTC"))
    return None


def run_deadline(
    *, mode: str, plan: Plan, business_time: datetime, fire_time: datetime | None
) -> datetime | None:
    """A new run's deadline_at (None: the run has no deadline)."""
    if mode not in DEADLINE_MODES or not plan.deadline:
        return None
    at = deadline_for(plan.deadline, fire_time or business_time, plan.zone or ZoneInfo("UTC"))
    # A run for a date whose deadline has passed (a point-in-time run or a rerun of an old
    # date) is not late: it has none. A schedule's run created late (beat down) is late.
    if at is not None and fire_time is None and at <= timezone.now():
        return None
    return at


def deadline_state(run: FlowRun, now: datetime | None = None) -> str | None:
    """on_time, at_risk or missed (None without a deadline): the one rule the API, the run
    page and the O&M list show."""
    if run.deadline_at is None:
        return None
    if run.finished_at is not None:
        late = run.finished_at > run.deadline_at
        return DeadlineState.MISSED if late else DeadlineState.ON_TIME
    if run.deadline_missed_at is not None or (now or timezone.now()) > run.deadline_at:
        return DeadlineState.MISSED
    if run.deadline_prediction:
        return DeadlineState.AT_RISK
    return DeadlineState.ON_TIME


def _p90s(flow_id: int) -> dict:
    now = monotonic.monotonic()
    hit = _p90_cache.get(flow_id)
    if hit is not None and now - hit[0] < P90_CACHE_SECONDS:
        return hit[1]
    p90s = stats.node_p90s(flow_id=flow_id)
    if len(_p90_cache) > 4096:
        _p90_cache.clear()
    _p90_cache[flow_id] = (now, p90s)
    return p90s


def clear_cache() -> None:
    _p90_cache.clear()


def predict(run: FlowRun, now: datetime, *, p90s: dict | None = None) -> dict:
    """The run's predicted finish and the nodes that drive it:
    {"finish": datetime, "nodes": [{"node", "node_name", "p90_s"}]}.

    A node still to run counts its p90 (a started one what is left of it); a node without
    a successful run yet counts nothing, so a prediction never cries wolf for lack of data.
    """
    plan = run_plan(run)
    if p90s is None:
        p90s = _p90s(run.flow_id)
    remaining: dict[int, float] = {}
    names: dict[int, str] = {}
    for node_id, name, status, started in NodeRun.objects.filter(
        run_id=run.pk, is_latest=True
    ).values_list("node_id", "node_name", "status", "started_at"):
        if status in core.TERMINAL or node_id not in plan.nodes:
            continue
        names[node_id] = name
        p90 = p90s.get(node_id) or 0.0
        if status in core.STARTED and started is not None:
            p90 = max(0.0, p90 - (now - started).total_seconds())
        remaining[node_id] = p90
    seconds, path = core.predicted_remaining(plan.dag, remaining)
    return {
        "finish": now + timedelta(seconds=seconds),
        "nodes": [{"node": n, "node_name": names[n], "p90_s": p90s.get(n)} for n in path],
    }


def _open_runs():
    """Runs whose deadline is still open: not finished, not yet found missed."""
    return (
        FlowRun.objects.filter(
            deadline_at__isnull=False,
            finished_at__isnull=True,
            deadline_missed_at__isnull=True,
            status__in=RUN_ACTIVE,
        )
        .select_related("version")
        .only(*RUN_FIELDS, "deadline_at", "deadline_prediction", "deadline_missed_at")
    )


def _check(run: FlowRun, now: datetime) -> str | None:
    """Alert a run still going at its deadline, or predicted to miss it: each once."""

    if run.deadline_at <= now:
        claimed = FlowRun.objects.filter(
            pk=run.pk, deadline_missed_at__isnull=True, finished_at__isnull=True
        ).update(deadline_missed_at=now)
        if not claimed:
            return None
        detail = {"deadline_at": run.deadline_at.isoformat(), "noticed_at": now.isoformat()}
        if run.deadline_prediction:
            detail["predicted_finish"] = run.deadline_prediction.get("finish")
        _report(run, "deadline_missed", detail)
        return "missed"
    if run.deadline_prediction is not None:
        return None
    prediction = predict(run, now)
    if prediction["finish"] <= run.deadline_at:
        return None
    detail = {
        "predicted_finish": prediction["finish"].isoformat(),
        "deadline_at": run.deadline_at.isoformat(),
        "nodes": prediction["nodes"],
    }
    claimed = FlowRun.objects.filter(
        pk=run.pk, deadline_prediction__isnull=True, finished_at__isnull=True
    ).update(
        deadline_prediction={
            "finish": detail["predicted_finish"],
            "nodes": detail["nodes"],
            "at": now.isoformat(),
        }
    )
    if not claimed:
        return None
    _report(run, "deadline_risk", detail)
    return "at_risk"


# A deadline event -> its webhook event type.
WEBHOOK_EVENTS = {"deadline_missed": "run.deadline_missed", "deadline_risk": "run.deadline_at_risk"}


def _report(run: FlowRun, event: str, detail: dict) -> None:
    """A deadline event reaches the flow's alert channels and the tenant's webhooks alike."""
    from operations import alerts

    from .webhooks import run_webhook

    alerts.alert_event(run_id=run.pk, event=event, detail=detail)
    run_webhook(
        run=run.pk,
        tenant_id=run.tenant_id,
        event_type=WEBHOOK_EVENTS[event],
        extra={"deadline": detail},
    )


def deadline_sweep(*, now: datetime | None = None) -> dict:
    """Alert the runs still going at their deadline, and those predicted to miss it (once
    each); a deadline that falls before the next sweep gets a check of its own at that
    moment, so a missed alert does not wait for the next second's sweep."""
    from operations import dispatch

    now = now or timezone.now()
    report = {"open": 0, "missed": 0, "at_risk": 0, "timed": 0}
    runs = list(_open_runs().order_by("deadline_at")[:SWEEP_LIMIT])
    report["open"] = len(runs)
    for run in runs:
        found = _check(run, now)
        if found:
            report[found] += 1
        elif now < run.deadline_at <= now + timedelta(seconds=TIMED_CHECK_AHEAD_S):
            dispatch.send_task_at(CHECK_TASK, run.deadline_at, run.pk)
            report["timed"] += 1
    return report


def deadline_check(*, run_id: int, now: datetime | None = None) -> str | None:
    """One run's deadline, checked at the moment it falls (a task the sweep sends)."""
    run = _open_runs().filter(pk=run_id).first()
    if run is None:
        return None
    return _check(run, now or timezone.now())
