"""Recording what a node's attempt did, and deciding what follows, in one short transaction.

A success takes the hot path: the run's lock, the result and the downstream nodes it made
ready in as few statements as possible (store.complete_in_one on PostgreSQL), examining
only the node's downstream nodes (engine.incremental). Any other outcome takes the run's
lock and the full decision (decisions.decide_full) through retry.py.
"""

from __future__ import annotations

import time

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from operations import conf, dispatch
from operations.choices import RUN_TERMINAL
from operations.engine.core import RUNNING, SUCCEEDED, queue_directly
from operations.engine.incremental import advance
from operations.models import LOG_LIMIT, FlowRun
from operations.plan import Plan
from operations.reconnect import reconnecting

from .. import slots, store
from ..decisions import (
    StateLoader,
    apply_decision,
    finish_run,
    holds_for,
    is_paused,
    may_hold,
    outcome_of_nodes,
    run_plan,
    wake_successors,
)
from ..locking import lock_node_run, lock_run
from ..logs import append_log, bounded, log_line
from .claim import Claim, claimed, node_claim, worker_name
from .execute import Deferred, Failure, Success
from .retry import node_defer, node_failed


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
        got, keep = reconnecting(_record_success, claim, outcome, text, continue_until)
        # The next node is claimed after the result's transaction, on its own: a retry of
        # the recording must never repeat (and lose) a hand-off that already committed.
        if got is not None:
            return reconnecting(claimed, got, timezone.now(), worker_name())
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
    return claim.row["log_length"] + claim.tracked.flushed + len(text) <= LOG_LIMIT


def _record_success(
    claim: Claim, outcome: Success, text: str, continue_until: float | None = None
) -> tuple[dict | None, int | None]:
    """The hot path: record a success and queue what follows, in one short transaction.

    Returns what this worker goes on with itself (not sent to the broker): the row of a
    node the transaction claimed for it (PostgreSQL), or a queued node run id to claim.
    """
    node_run_id, run_id = claim.row["id"], claim.row["run_id"]
    branch = outcome.branch if outcome.branch in ("true", "false") else None
    now = timezone.now()
    me = worker_name()
    discarded = False
    keep = got = None
    relaxed = not conf.get("TRIBUTARY_DURABLE_RESULTS")
    hand_off = bool(conf.get("TRIBUTARY_HAND_OFF_TO_SELF"))
    plan, node_id = claim.plan, claim.row["node_id"]
    with transaction.atomic():
        queued = None
        if connection.vendor == "postgresql":
            # What the engine queues directly if the run is not paused; the statement
            # checks that under the run's lock (and falls back to the decision below).
            direct = queue_directly(plan.dag, node_id, branch, may_hold=may_hold(claim.info))
            # Fair share: a worker keeps its slot for the next node, never onto a capped pool.
            keepable = [n for n in direct or [] if slots.hand_off_allowed(plan.nodes.get(n))]
            take = _keep_node(plan, keepable, continue_until) if hand_off else None
            if take is not None and not slots.tenant_may_keep(claim.row["tenant_id"]):
                take = None
            fields, recorded, queued, got = store.complete_in_one(
                run_id,
                node_run_id,
                now=now,
                output=outcome.output,
                branch=branch,
                rendered=claim.rendered,
                log_text=text,
                queue=direct or [],
                relaxed=relaxed,
                claim_for=(take, me) if take is not None else None,
            )
        else:
            fields = store.lock_run_closing_one(run_id, relaxed=relaxed)
            recorded = fields is not None and store.record_success(
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
            got = None
        else:
            run = FlowRun(**fields)
            closed, ready = _advance_after_success(run, plan, node_id, branch, now, queued)
            if closed:
                FlowRun.objects.filter(pk=run_id).update(nodes_open=F("nodes_open") - closed)
                run.nodes_open -= closed
            if _finish_if_done(run):
                run.save(update_fields=["status", "finished_at", "error"])
            wake_successors(run)
            if got is None and hand_off:
                keep = _keep_one(ready, continue_until)
            # Sent just before COMMIT rather than after it: a worker receiving one of these
            # waits on the node's row lock until we commit (PostgreSQL), so the message
            # travels while the commit is flushed to disk. Should the commit fail, the node
            # is still pending and the message does nothing.
            dispatch.send_nodes_now([item for item in ready if item[0] != keep])
    if discarded:
        append_log(node_run_id, text + log_line("result discarded: the node is no longer running"))
    return got, keep


def _finish_if_done(run: FlowRun) -> bool:
    """Close the run once no node is open (caller holds its lock and saves it)."""
    if run.nodes_open > 0 or run.status in RUN_TERMINAL:
        return False
    outcome = outcome_of_nodes(run.pk)
    if outcome is None:
        return False
    finish_run(run, outcome)
    return True


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
    paused = is_paused(run)
    direct = queue_directly(dag, node_id, branch, paused=paused, may_hold=may_hold(run))
    if direct is not None:
        # The engine says this success queues its downstream nodes by itself.
        rows = queued if queued is not None else store.queue_pending(run.pk, direct, now)
        rows = sorted(rows, key=lambda r: -plan.nodes[r[1]].priority)
        return 0, [(pk, now, None, plan.nodes[n].timeout) for pk, n in rows]
    return _advance(run, plan, None, node_id, branch), []


def _advance(run: FlowRun, plan: Plan, node_run_id, node_id: int, branch) -> int:
    """The engine's incremental decision after a success, applied; the nodes it closed."""
    loader = StateLoader(run.pk)
    loader.add(node_run_id, node_id, SUCCEEDED, branch)
    decision = advance(
        plan.dag,
        plan.topo_index,
        [node_id],
        loader.states,
        loader.branches,
        load=loader.load,
        held=holds_for(run),
        any_open=loader.any_open,
        paused=is_paused(run),
    )
    return apply_decision(run, plan, decision, loader)


def record_outcome(
    node_run_id: int, run_id: int, outcome, log_text: str, *, timeout: int = 3600, rendered=None
) -> None:
    """Record a finished attempt and decide what follows, in one transaction."""
    if isinstance(outcome, Deferred):
        node_defer(node_run_id, outcome, log_text, timeout, rendered)
        return
    with transaction.atomic():
        run = lock_run(run_id)
        nr = lock_node_run(
            node_run_id,
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
            node_failed(run, plan, nr, outcome)


def _after_success(run: FlowRun, plan: Plan, nr) -> None:
    closed = 1 + _advance(run, plan, nr.pk, nr.node_id, nr.branch)
    run.nodes_open = max(0, run.nodes_open - closed)
    fields = ["nodes_open"]
    if _finish_if_done(run):
        fields += ["status", "finished_at", "error"]
    run.save(update_fields=fields)
    wake_successors(run)
