"""What follows an attempt that did not succeed: a retry, a deferral, a lost worker."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from operations import alerts, conf, dispatch
from operations.choices import RUN_ACTIVE, EventKind
from operations.engine.core import DEFERRED, FAILED, QUEUED, RUNNING, attempt_state
from operations.models import FlowRun, NodeRun
from operations.plan import Plan

from ..decisions import decide_full, is_paused, run_plan
from ..locking import lock_node_run, lock_run
from ..logs import bounded, event, log_line
from ..webhooks import run_webhook
from .execute import Deferred, Failure

LOST_PREFIX = "worker lost"
# A lost worker (killed, OOM, deploy) is not the node's fault: that many extra attempts are
# granted on top of the node's own retries before a loss counts as a failure.
FREE_LOST_ATTEMPTS = 2


def _lost_attempts(nr: NodeRun) -> int:
    return NodeRun.objects.filter(
        run_id=nr.run_id, node_id=nr.node_id, attempt__lt=nr.attempt, error__startswith=LOST_PREFIX
    ).count()


def node_failed(run: FlowRun, plan: Plan, nr: NodeRun, outcome: Failure) -> None:
    """Record a failed attempt: a new attempt if the node may retry, else decide the run."""
    spec = plan.nodes.get(nr.node_id)
    lost_before = _lost_attempts(nr)
    lost_now = outcome.message.startswith(LOST_PREFIX)
    free = min(FREE_LOST_ATTEMPTS, lost_before + lost_now)
    failures = nr.attempt - free  # attempts that count against the node's retries
    can_retry = (
        outcome.retryable
        and spec is not None
        and run.status in RUN_ACTIVE
        and failures <= spec.retries
    )
    nr.status = FAILED
    nr.error = outcome.message[:4000]
    if can_retry:
        delay = 0 if lost_now and free > lost_before else spec.retry_interval
        nr.is_latest = False
        nr.log = bounded(nr.log, log_line(f"retrying (attempt {nr.attempt + 1}) in {delay}s"))
        nr.save(update_fields=["status", "error", "finished_at", "log", "is_latest"])
        _new_attempt(run, spec, nr, delay)
        event(run, EventKind.NODE_RETRY, f"{nr.node_name}: {outcome.message}", node_run=nr)
        alerts.alert_node(
            run=run, notifications=plan.notifications, event="node_retry", node_run=nr
        )
        run_webhook(run=run.pk, tenant_id=run.tenant_id, event_type="node.retrying", node_run=nr)
        return
    nr.save(update_fields=["status", "error", "finished_at", "log"])
    event(run, EventKind.NODE_FAILED, f"{nr.node_name}: {outcome.message}", node_run=nr)
    alerts.alert_node(run=run, notifications=plan.notifications, event="node_failed", node_run=nr)
    run_webhook(run=run.pk, tenant_id=run.tenant_id, event_type="node.failed", node_run=nr)
    decide_full(run, plan)


def _new_attempt(run: FlowRun, spec, nr: NodeRun, delay: float) -> NodeRun:
    now = timezone.now()
    due = now + timedelta(seconds=delay)
    countdown = delay <= conf.get("TRIBUTARY_MAX_COUNTDOWN")
    new = NodeRun.objects.create(
        tenant_id=nr.tenant_id,
        run_id=nr.run_id,
        node_id=nr.node_id,
        node_name=nr.node_name,
        node_type=nr.node_type,
        attempt=nr.attempt + 1,
        status=attempt_state(paused=is_paused(run)),
        queued_at=due if countdown else None,
        next_attempt_at=due,
        log=log_line(f"attempt {nr.attempt + 1} due at {due.isoformat()}"),
    )
    if countdown and new.status == QUEUED:
        dispatch.send_nodes([(new.pk, new.queued_at, delay, spec.timeout)])
    return new


def node_defer(
    node_run_id: int, outcome: Deferred, log_text: str, timeout: int, rendered=None
) -> None:
    """running -> deferred: the same attempt comes back later with the executor's state.

    No worker waits meanwhile, yet the node has started: it is running to the user, a
    halt of complete_running or a pause lets it finish its wait, a stop stops it.
    """
    now = timezone.now()
    seconds = outcome.seconds
    with transaction.atomic():
        nr = lock_node_run(node_run_id, "id", "status", "log", "defer_count", "node_id", "run_id")
        if nr is None or nr.status != RUNNING:
            return
        if seconds > 0 and _child_finished_since(nr.pk, outcome.checked_at):
            # A child run (sub-flow, loop item) finished while this check ran: its wake-up
            # found the node still running, so the next check is now, not a poll later.
            seconds = 0.0
        due = now + timedelta(seconds=seconds)
        countdown = seconds <= conf.get("TRIBUTARY_MAX_COUNTDOWN")
        nr.status = DEFERRED
        nr.defer_state = outcome.state
        nr.defer_count += 1
        nr.next_attempt_at = due
        nr.queued_at = due if countdown else None
        # Say it once, not on every poll of a long wait.
        if nr.defer_count <= 3 or nr.defer_count % 20 == 0:
            nr.log = bounded(
                nr.log, log_text + log_line(f"{outcome.message}; next check at {due.isoformat()}")
            )
        fields = ["status", "defer_state", "defer_count", "next_attempt_at", "queued_at", "log"]
        if rendered is not None:
            nr.rendered_config = rendered
            fields.append("rendered_config")
        nr.save(update_fields=fields)
        if countdown:
            dispatch.send_nodes([(nr.pk, nr.queued_at, seconds, timeout)])


def _child_finished_since(node_run_id: int, since) -> bool:
    """Whether a child run this node run started has finished since `since`."""
    if since is None:
        return False
    return FlowRun.objects.filter(parent_node_run_id=node_run_id, finished_at__gte=since).exists()


def node_lost(node_run_id: int, reason: str, *, stale_before=None) -> bool:
    """Fail (and maybe retry) a running node whose worker is gone; False if it is not lost."""
    with transaction.atomic():
        row = NodeRun.objects.filter(pk=node_run_id).values("run_id").first()
        if row is None:
            return False
        run = lock_run(row["run_id"])
        nr = lock_node_run(node_run_id)
        if run is None or nr is None or nr.status != RUNNING:
            return False
        if stale_before is not None and nr.heartbeat_at and nr.heartbeat_at >= stale_before:
            return False
        nr.finished_at = timezone.now()
        nr.log = bounded(nr.log, log_line(reason))
        event(run, EventKind.NODE_LOST, f"{nr.node_name}: {reason}", node_run=nr)
        node_failed(run, run_plan(run), nr, Failure(reason))
        return True
