"""The orchestrator's node path: a node task claims its node, executes it, records the result.

PostgreSQL is the source of truth. Every transition to a terminal state, every new attempt
and every decision happens in a transaction holding the run's row lock; claiming a queued
node (queued -> running) is a single status-guarded statement, so a duplicate, late or
stopped delivery does nothing. After a success only the node's downstream nodes are examined
(services.fastpath); a final failure takes the full core.decide (services.decisions).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from operations import conf
from operations.choices import RUN_TERMINAL, EventKind, RunMode, RunStatus
from operations.engine.core import (
    FAILED,
    PENDING,
    QUEUED,
    RUNNING,
    SUCCEEDED,
)
from operations.models import FlowRun, NodeRun
from operations.reconnect import reconnecting

from . import dispatch, hot
from .decisions import (  # noqa: F401 - re-exported for callers of the node path
    PARALLEL_POLICIES,
    StateLoader,
    apply_decision,
    decide_full,
    finish_run,
    gate_for,
    lock_run,
    outcome_of_nodes,
    run_evaluate,
    run_plan,
    wake_successors,
)
from .fastpath import advance
from .logs import bounded, event, log_line
from .monitor import Tracked, monitor
from .plan import Plan, plan_for

logger = logging.getLogger("tributary.engine")

LOST_PREFIX = "worker lost"
# A lost worker (killed, OOM, deploy) is not the node's fault: that many extra attempts are
# granted on top of the node's own retries before a loss counts as a failure.
FREE_LOST_ATTEMPTS = 2

HOSTNAME = socket.gethostname()


def worker_name() -> str:
    return f"{HOSTNAME}:{os.getpid()}"


# --------------------------------------------------------------------------- outcomes


@dataclass
class Success:
    output: dict = field(default_factory=dict)
    branch: str | None = None


@dataclass
class Failure:
    message: str
    retryable: bool = True


@dataclass
class Deferred:
    seconds: float
    state: dict
    message: str = ""


# --------------------------------------------------------------------------- node task


@dataclass
class Claim:
    """A node run this worker has moved to running, with what executing it needs."""

    row: dict
    plan: Plan
    spec: object
    rendered: dict | None
    render_error: str
    tracked: Tracked
    dry: bool
    info: dict = field(default_factory=dict)


def node_execute(node_run_id: int, *, budget: float | None = None) -> None:
    """Claim a queued node run, execute it and record what follows (the node task's body).

    With a `budget` (seconds left before the task's soft time limit), the worker goes on
    with one of the nodes its success made ready, without a trip through the broker, as
    long as that node's whole timeout still fits in the budget ("hand-off to self"; the
    other ready nodes are sent to the broker as usual).
    """
    until = time.monotonic() + budget if budget else None
    claim = reconnecting(node_claim, node_run_id)
    while claim is not None:
        # A success may hand over the next node already claimed for this worker.
        claim = node_finish(claim, node_run_claimed(claim), continue_until=until)


def node_claim(node_run_id: int) -> Claim | None:
    """queued -> running with one status-guarded UPDATE; None when there is nothing to do.

    The node's own status is the guard: stopping a run stops its queued nodes, pausing it
    puts them back to pending, so a message for them finds nothing to claim.
    """
    now = timezone.now()
    me = worker_name()
    got = hot.claim(node_run_id, now, me)
    if got is None:
        row = NodeRun.objects.filter(pk=node_run_id).values("run_id", "worker").first()
        if row and _worker_is_dead(row["worker"]):
            # The broker redelivered the message of a process of this host that died: the
            # node it ran, or the ones it went on with, are lost with it.
            for pk in NodeRun.objects.filter(
                run_id=row["run_id"], status=RUNNING, worker=row["worker"]
            ).values_list("pk", flat=True):
                node_lost(pk, f"{LOST_PREFIX}: process {row['worker']} died while running the node")
        return None
    return _claimed(got, now, me)


def _claimed(got: dict, now, me: str) -> Claim:
    """What executing a node this worker just moved to running needs."""
    node_run_id = got["id"]
    info = hot.run_info(got["run_id"])
    row = {
        **got,
        "run__status": info["status"],
        "run__mode": info["mode"],
        "run__flow_id": info["flow_id"],
        "run__version_id": info["version_id"],
        "run__business_time": info["business_time"],
    }
    plan = plan_for(run_id=row["run_id"], version_id=info["version_id"], stamp=info["stamp"])
    spec = plan.nodes.get(row["node_id"])
    dry = info["mode"] == RunMode.DRY
    rendered, render_error = _render(row, plan, spec, tolerant=dry)
    if info["status"] != RunStatus.RUNNING:
        waiting = FlowRun.objects.filter(
            pk=row["run_id"], status__in=(RunStatus.QUEUED, RunStatus.WAITING)
        )
        with hot.relaxed_commit():
            if waiting.filter(started_at__isnull=True).update(
                status=RunStatus.RUNNING, started_at=now
            ):
                run = FlowRun(pk=row["run_id"], tenant_id=row["tenant_id"])
                event(run, EventKind.RUN_STARTED, f"Started by node {row['node_name']}.")
            else:
                waiting.update(status=RunStatus.RUNNING)
        info["status"] = RunStatus.RUNNING
    timeout = spec.timeout if spec else 3600
    tracked = Tracked(node_run_id=node_run_id, deadline=time.monotonic() + timeout)
    tracked.rendered = rendered
    tracked.log(log_line(f"attempt {row['attempt']} started on {me}"))
    return Claim(row, plan, spec, rendered, render_error, tracked, dry, info)


def node_run_claimed(claim: Claim):
    """Execute a claimed node (outside any transaction); returns its outcome."""
    if claim.spec is None:
        return Failure(
            f"node {claim.row['node_name']} is not part of the run's flow version", False
        )
    if claim.render_error:
        return Failure(claim.render_error, retryable=False)
    if claim.dry:
        claim.tracked.log(log_line("dry run: recorded as succeeded without executing"))
        return Success()
    return _execute(claim.row, claim.spec, claim.rendered, claim.tracked, claim.plan.zone)


def node_finish(claim: Claim, outcome, *, continue_until: float | None = None) -> Claim | None:
    """Record the outcome of a claimed node and decide what follows.

    Returns a node run this worker claimed to execute next (see node_execute), else None.
    """
    tracked = claim.tracked
    elapsed = time.monotonic() - tracked.started
    if isinstance(outcome, Success):
        tracked.log(log_line(f"succeeded in {elapsed:.3f}s"))
    elif isinstance(outcome, Failure):
        tracked.log(log_line(f"failed after {elapsed:.3f}s: {outcome.message}"))
    with tracked.flush_lock:
        text = tracked.take_lines()
    timeout = claim.spec.timeout if claim.spec else 3600
    # The node ran outside any transaction: its result survives a database restart meanwhile.
    if isinstance(outcome, Success) and _fits(claim, text):
        claimed, keep = reconnecting(_record_success, claim, outcome, text, continue_until)
        # The next node is claimed after the result's transaction, on its own: a retry of
        # the recording must never repeat (and lose) a hand-off that already committed.
        if claimed is not None:
            return reconnecting(_claimed, claimed, timezone.now(), worker_name())
        if keep is not None:
            return reconnecting(node_claim, keep)
        return None
    reconnecting(
        record_outcome,
        tracked.node_run_id,
        claim.row["run_id"],
        outcome,
        text,
        timeout=timeout,
        rendered=claim.rendered,
    )
    return None


def _fits(claim: Claim, text: str) -> bool:
    """The log stays under its bound when `text` is appended as is."""
    from operations.models import LOG_LIMIT

    return claim.row["log_length"] + claim.tracked.flushed + len(text) <= LOG_LIMIT


def _record_success(
    claim: Claim, outcome: Success, text: str, continue_until: float | None = None
) -> tuple[dict | None, int | None]:
    """The hot path: record a success and queue what follows, in one short transaction.

    Returns what this worker goes on with itself (not sent to the broker): the row of a
    node the transaction claimed for it (PostgreSQL), or a queued node run id to claim.
    """
    node_run_id, run_id, info = claim.row["id"], claim.row["run_id"], claim.info
    branch = outcome.branch if outcome.branch in ("true", "false") else None
    now = timezone.now()
    me = worker_name()
    discarded = False
    keep = claimed = None
    relaxed = not conf.get("TRIBUTARY_DURABLE_RESULTS")
    hand_off = bool(conf.get("TRIBUTARY_HAND_OFF_TO_SELF"))
    plan, node_id = claim.plan, claim.row["node_id"]
    with transaction.atomic():
        queued = None
        if connection.vendor == "postgresql":
            simple = _only_through(plan, node_id, branch) or []
            take = _keep_node(plan, simple, continue_until) if hand_off else None
            fields, recorded, queued, claimed = hot.complete_in_one(
                run_id,
                node_run_id,
                now=now,
                output=outcome.output,
                branch=branch,
                rendered=claim.rendered,
                log_text=text,
                queue=simple,
                relaxed=relaxed,
                claim_for=(take, me) if take is not None else None,
            )
        else:
            fields = hot.lock_run_closing_one(run_id, relaxed=relaxed)
            recorded = fields is not None and hot.record_success(
                node_run_id,
                now=now,
                output=outcome.output,
                branch=branch,
                rendered=claim.rendered,
                log_text=text,
            )
        if fields is None or not recorded:
            # Stopped (or declared lost) meanwhile: nothing of this result counts.
            transaction.set_rollback(True)
            discarded = True
            claimed = None
        else:
            run = FlowRun(
                pk=run_id,
                tenant_id=info["tenant_id"],
                flow_id=info["flow_id"],
                version_id=info["version_id"],
                mode=info["mode"],
                created_at=info["created_at"],
                business_time=info["business_time"],
                **{k: v for k, v in fields.items() if k != "started_at"},
            )
            closed, ready = _advance_after_success(run, plan, node_id, branch, now, queued)
            if closed:
                FlowRun.objects.filter(pk=run_id).update(nodes_open=F("nodes_open") - closed)
                run.nodes_open -= closed
            if run.nodes_open <= 0 and run.status not in RUN_TERMINAL:
                finish_run(run, outcome_of_nodes(run_id))
                run.save(update_fields=["status", "finished_at", "error"])
            wake_successors(run)
            if claimed is None and hand_off:
                keep = _keep_one(ready, continue_until)
            # Sent just before COMMIT rather than after it: a worker receiving one of these
            # waits on the node's row lock until we commit (PostgreSQL), so the message
            # travels while the commit is flushed to disk. Should the commit fail, the node
            # is still pending and the message does nothing.
            dispatch.send_nodes_now([item for item in ready if item[0] != keep])
    if discarded:
        from .logs import append_log

        append_log(node_run_id, text + log_line("result discarded: the node is no longer running"))
    return claimed, keep


def _keep_node(plan: Plan, nodes: list[int], continue_until: float | None) -> int | None:
    """Of the nodes a success queues, the one this worker goes on with (as _keep_one)."""
    if continue_until is None or not nodes:
        return None
    left = continue_until - time.monotonic()
    for node in sorted(nodes, key=lambda n: -plan.nodes[n].priority):
        if plan.nodes[node].timeout <= left:
            return node
    return None


def _keep_one(ready: list, continue_until: float | None) -> int | None:
    """The first ready node whose whole timeout fits before the task's time limit."""
    if continue_until is None:
        return None
    left = continue_until - time.monotonic()
    for node_run_id, _queued_at, _countdown, timeout in ready:
        if timeout <= left:
            return node_run_id
    return None


def _only_through(plan: Plan, node_id: int, branch) -> list[int] | None:
    """The downstream nodes if each waits on this node only, through a satisfied edge."""
    dag = plan.dag
    down = dag.downstream(node_id)
    for v in down:
        edges = dag.upstream_edges(v)
        if len(edges) != 1 or not (edges[0][1] is None or branch is None or edges[0][1] == branch):
            return None
    return list(down)


def _advance_after_success(
    run: FlowRun, plan: Plan, node_id: int, branch, now, queued: list | None = None
) -> tuple[int, list]:
    """Queue (or skip, or hold) the downstream nodes of a node that succeeded.

    `queued` lists the (node run, node) pairs the recording statement already queued, if it
    did. Returns the number of nodes closed and the queued nodes the caller sends.
    """
    dag = plan.dag
    if not dag.downstream(node_id):
        return 0, []
    gated = bool(run.previous_run_id) and run.concurrency_policy in PARALLEL_POLICIES
    simple = _only_through(plan, node_id, branch)
    if simple is not None and not gated and run.status != RunStatus.PAUSED:
        # Each downstream node waits on this one only, through a satisfied edge: queue it.
        rows = queued if queued is not None else hot.queue_pending(run.pk, simple, now)
        rows = sorted(rows, key=lambda r: -plan.nodes[r[1]].priority)
        return 0, [(pk, now, None, plan.nodes[n].timeout) for pk, n in rows]
    loader = StateLoader(run.pk)
    loader.add(None, node_id, SUCCEEDED, branch)
    decision = advance(
        dag,
        plan.topo_index,
        [node_id],
        loader.states,
        loader.branches,
        load=loader.load,
        gate=gate_for(run),
        any_open=loader.any_open,
        paused=run.status == RunStatus.PAUSED,
    )
    return apply_decision(run, plan, decision, loader), []


def _render(row: dict, plan: Plan, spec, *, tolerant: bool) -> tuple[dict | None, str]:
    """The node's configuration with variables substituted, or an error message."""
    from flows.variables import VariableError, render_config, resolve

    if spec is None:
        return None, ""
    outputs: dict = {}
    if plan.needs_outputs(spec.id):
        ancestors = plan.ancestors(spec.id)
        found = dict(
            NodeRun.objects.filter(
                run_id=row["run_id"], is_latest=True, status=SUCCEEDED, node_id__in=ancestors
            ).values_list("node_id", "output")
        )
        for node_id in ancestors:  # farthest first: nearer ancestors win
            output = found.get(node_id)
            if isinstance(output, dict):
                name = plan.nodes[node_id].name
                for key, value in output.items():
                    if isinstance(value, dict | list):
                        continue
                    outputs[key] = value
                    outputs[f"{name}.{key}"] = value
    try:
        values = resolve(
            plan.variables,
            row["run__business_time"].astimezone(plan.zone),
            flow_id=row["run__flow_id"],
            run_id=row["run_id"],
            outputs=outputs,
        )
        return render_config(spec.config, values), ""
    except VariableError as exc:
        if tolerant:
            return spec.config, ""
        return spec.config, f"configuration of node {spec.name}: {exc.message}"


def _execute(row: dict, spec, rendered: dict, tracked: Tracked, zone):
    from celery.exceptions import SoftTimeLimitExceeded

    from flows.nodes import base as nodes

    node_type = nodes.get(spec.type)
    if node_type is None:
        return Failure(f"unknown node type {spec.type!r}", retryable=False)
    ctx = nodes.ExecutionContext(
        tenant_id=row["tenant_id"],
        flow_id=row["run__flow_id"],
        run_id=row["run_id"],
        node_run_id=row["id"],
        node_id=spec.id,
        node_name=spec.name,
        config=rendered,
        timeout=float(spec.timeout),
        business_time=row["run__business_time"].astimezone(zone),
        attempt=row["attempt"],
        state=dict(row["defer_state"] or {}),
        log=lambda message: tracked.log(log_line(str(message))),
        cancelled=tracked.cancelled.is_set,
        on_cancel=tracked.on_cancel,
    )
    monitor.track(tracked)
    try:
        result = node_type.execute(ctx)
        outcome = Success(
            output=dict(getattr(result, "output", None) or {}),
            branch=getattr(result, "branch", None),
        )
    except nodes.NodeDeferred as exc:
        outcome = Deferred(seconds=max(0.0, float(exc.seconds)), state=exc.state, message=str(exc))
    except nodes.NodeFailed as exc:
        outcome = Failure(str(exc) or "failed")
    except SoftTimeLimitExceeded:
        outcome = Failure(f"timed out after {spec.timeout}s (worker time limit)")
    except Exception as exc:  # noqa: BLE001 - an executor bug fails the node, not the worker
        logger.exception("node %s (run %s) raised", spec.name, row["run_id"])
        outcome = Failure(f"internal error: {type(exc).__name__}: {exc}")
    finally:
        monitor.untrack(tracked)
    if tracked.cancelled.is_set() and not isinstance(outcome, Success):
        if tracked.reason == "timeout":
            outcome = Failure(f"timed out after {spec.timeout}s")
        else:
            outcome = Failure("stopped while running", retryable=False)
    return outcome


def _worker_is_dead(worker: str) -> bool:
    host, _, pid = (worker or "").rpartition(":")
    if host != HOSTNAME or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# --------------------------------------------------------------------------- recording


def record_outcome(
    node_run_id: int, run_id: int, outcome, log_text: str, *, timeout: int = 3600, rendered=None
) -> None:
    """Record a finished attempt and decide what follows, in one transaction."""
    if isinstance(outcome, Deferred):
        _defer(node_run_id, outcome, log_text, timeout, rendered)
        return
    with transaction.atomic():
        run = lock_run(run_id)
        nr = (
            NodeRun.objects.select_for_update()
            .only(
                "id",
                "tenant_id",
                "run_id",
                "node_id",
                "node_name",
                "node_type",
                "status",
                "attempt",
                "log",
            )
            .filter(pk=node_run_id)
            .first()
        )
        if run is None or nr is None:
            return
        if nr.status != RUNNING:
            # Stopped (or declared lost) meanwhile: the result no longer counts.
            nr.log = bounded(
                nr.log, log_text + log_line(f"result discarded: the node is already {nr.status}")
            )
            nr.save(update_fields=["log"])
            return
        plan = run_plan(run)
        now = timezone.now()
        nr.log = bounded(nr.log, log_text)
        nr.finished_at = now
        if rendered is not None:
            nr.rendered_config = rendered
            nr.save(update_fields=["rendered_config"])
        if isinstance(outcome, Success):
            nr.status = SUCCEEDED
            nr.output = outcome.output
            nr.branch = outcome.branch if outcome.branch in ("true", "false") else None
            nr.save(update_fields=["status", "output", "branch", "finished_at", "log"])
            _after_success(run, plan, nr)
        else:
            _after_failure(run, plan, nr, outcome)


def _after_success(run: FlowRun, plan: Plan, nr: NodeRun) -> None:
    loader = StateLoader(run.pk)
    loader.add(nr.pk, nr.node_id, SUCCEEDED, nr.branch)
    decision = advance(
        plan.dag,
        plan.topo_index,
        [nr.node_id],
        loader.states,
        loader.branches,
        load=loader.load,
        gate=gate_for(run),
        any_open=loader.any_open,
        paused=run.status == RunStatus.PAUSED,
    )
    closed = 1 + apply_decision(run, plan, decision, loader)
    run.nodes_open = max(0, run.nodes_open - closed)
    fields = ["nodes_open"]
    if run.nodes_open == 0 and run.status not in RUN_TERMINAL:
        finish_run(run, outcome_of_nodes(run.pk))
        fields += ["status", "finished_at", "error"]
    run.save(update_fields=fields)
    wake_successors(run)


def _lost_attempts(nr: NodeRun) -> int:
    return NodeRun.objects.filter(
        run_id=nr.run_id, node_id=nr.node_id, attempt__lt=nr.attempt, error__startswith=LOST_PREFIX
    ).count()


def _after_failure(run: FlowRun, plan: Plan, nr: NodeRun, outcome: Failure) -> None:
    spec = plan.nodes.get(nr.node_id)
    lost_before = _lost_attempts(nr)
    lost_now = outcome.message.startswith(LOST_PREFIX)
    free = min(FREE_LOST_ATTEMPTS, lost_before + lost_now)
    failures = nr.attempt - free  # attempts that count against the node's retries
    can_retry = (
        outcome.retryable
        and spec is not None
        and run.status in (RunStatus.QUEUED, RunStatus.WAITING, RunStatus.RUNNING, RunStatus.PAUSED)
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
        return
    nr.save(update_fields=["status", "error", "finished_at", "log"])
    event(run, EventKind.NODE_FAILED, f"{nr.node_name}: {outcome.message}", node_run=nr)
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
        status=QUEUED if run.status != RunStatus.PAUSED else PENDING,
        queued_at=due if countdown else None,
        next_attempt_at=due,
        log=log_line(f"attempt {nr.attempt + 1} due at {due.isoformat()}"),
    )
    if countdown and new.status == QUEUED:
        dispatch.send_nodes([(new.pk, new.queued_at, delay, spec.timeout)])
    return new


def _defer(node_run_id: int, outcome: Deferred, log_text: str, timeout: int, rendered=None) -> None:
    """Requeue the same attempt for later, keeping the executor's state; no worker waits."""
    now = timezone.now()
    due = now + timedelta(seconds=outcome.seconds)
    countdown = outcome.seconds <= conf.get("TRIBUTARY_MAX_COUNTDOWN")
    with transaction.atomic():
        nr = (
            NodeRun.objects.select_for_update()
            .only("id", "status", "log", "defer_count", "node_id", "run_id")
            .filter(pk=node_run_id)
            .first()
        )
        if nr is None or nr.status != RUNNING:
            return
        nr.status = QUEUED
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
            dispatch.send_nodes([(nr.pk, nr.queued_at, outcome.seconds, timeout)])


def node_lost(node_run_id: int, reason: str, *, stale_before=None) -> bool:
    """Fail (and maybe retry) a running node whose worker is gone; False if it is not lost."""
    with transaction.atomic():
        row = NodeRun.objects.filter(pk=node_run_id).values("run_id").first()
        if row is None:
            return False
        run = lock_run(row["run_id"])
        nr = NodeRun.objects.select_for_update().filter(pk=node_run_id).first()
        if run is None or nr is None or nr.status != RUNNING:
            return False
        if stale_before is not None and nr.heartbeat_at and nr.heartbeat_at >= stale_before:
            return False
        nr.finished_at = timezone.now()
        nr.log = bounded(nr.log, log_line(reason))
        event(run, EventKind.NODE_LOST, f"{nr.node_name}: {reason}", node_run=nr)
        _after_failure(run, run_plan(run), nr, Failure(reason))
        return True
