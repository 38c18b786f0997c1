"""Run control, the O&M actions: stop, pause, resume, rerun, restore, rerun from a node, mark success.

Each action takes the run's row lock and re-checks the run's status inside the transaction,
so two operators acting at once (stop and restore, say) leave the run in one state. Stop,
pause and resume act on an active run; rerun starts a new run with the version (or
snapshot) the run used; restore, rerun-from and mark-success reopen the same run with it.
"""

from __future__ import annotations

from django.db import transaction

from accounts.errors import ConflictError
from operations.choices import (
    RUN_ACTIVE,
    RUN_TERMINAL,
    EventKind,
    OperationAction,
    RunStatus,
    RunTrigger,
)
from operations.engine import core
from operations.engine.core import ACTIVE, FAILED, PENDING, SUCCEEDED
from operations.models import FlowRun, NodeRun, RunEvent

from .audit import clean_reason, operation_record
from .creation import check_runnable, run_create
from .decisions import decide_full, run_plan
from .locking import lock_node_run, lock_run
from .logs import append_log, bounded, event, log_line

# Event kinds of the actions.
RUN_RERUN = EventKind.RUN_RERUN
RUN_RESTORED = EventKind.RUN_RESTORED
NODE_RERUN_FROM = EventKind.NODE_RERUN_FROM
NODE_MARKED_SUCCEEDED = EventKind.NODE_MARKED_SUCCEEDED


def _who(user) -> str:
    return getattr(user, "username", None) or "the system"


def _locked(run_id: int) -> FlowRun:
    locked = lock_run(run_id)
    if locked is None:
        raise ConflictError("The run no longer exists.")
    return locked


def _latest(run_id: int) -> dict[int, NodeRun]:
    return {nr.node_id: nr for nr in NodeRun.objects.filter(run_id=run_id, is_latest=True)}


def _new_attempts(run: FlowRun, latest: dict[int, NodeRun], node_ids, note: str) -> list[NodeRun]:
    """A pending attempt for each node; the new row becomes the node's latest."""
    old = [latest[n] for n in sorted(node_ids) if n in latest]
    if not old:
        return []
    # Node runs are operational records without history (as in runs._create).
    NodeRun.objects.filter(pk__in=[nr.pk for nr in old]).update(is_latest=False)
    return NodeRun.objects.bulk_create(
        [
            NodeRun(
                tenant_id=run.tenant_id,
                run_id=run.pk,
                node_id=nr.node_id,
                node_name=nr.node_name,
                node_type=nr.node_type,
                attempt=nr.attempt + 1,
                status=PENDING,
                log=log_line(f"attempt {nr.attempt + 1}: {note}"),
            )
            for nr in old
        ]
    )


def _reopen(run: FlowRun) -> None:
    """Put a finished run back to running (the caller decides what is ready next)."""
    if run.status in RUN_TERMINAL:
        run.status = RunStatus.RUNNING if run.started_at else RunStatus.QUEUED
        run.finished_at = None
        run.error = ""
        run.save(update_fields=["status", "finished_at", "error"])


def _refuse_active(run: FlowRun, action: str) -> None:
    if run.status in RUN_ACTIVE:
        raise ConflictError(
            f"The run is still {run.status}: stop it or let it finish before you {action}.",
            "status",
        )


def run_rerun(*, run: FlowRun, user, reason: str | None = "") -> FlowRun:
    """A new run of the same flow with the version (or snapshot) the run used; policy applies."""
    reason = clean_reason(reason)
    source = run.version.snapshot if run.version_id else FlowRun.objects.get(pk=run.pk).snapshot
    plan = check_runnable(source or {})
    with transaction.atomic():
        new = run_create(
            flow=run.flow,
            mode=run.mode,
            trigger=RunTrigger.RERUN,
            business_time=run.business_time,
            user=user,
            version=run.version if run.version_id else None,
            snapshot=None if run.version_id else source,
            plan=plan,
            parameters=run.parameters,
        )
        event(run, RUN_RERUN, f"Rerun as run {new.pk} by {_who(user)}.", user=user)
        operation_record(
            action=OperationAction.RERUN,
            user=user,
            run=run,
            reason=reason,
            detail={"new_run": new.pk},
        )
    new.refresh_from_db()
    return new


def run_restore(*, run: FlowRun, user, reason: str | None = "") -> FlowRun:
    """Rerun the failed, upstream-failed, stopped and not-run nodes of a finished run in place."""
    reason = clean_reason(reason)
    with transaction.atomic():
        locked = _locked(run.pk)
        if locked.status == RunStatus.SUCCEEDED:
            raise ConflictError("The run succeeded: nothing to restore.", "status")
        _refuse_active(locked, "restore it")
        if locked.status not in (RunStatus.FAILED, RunStatus.STOPPED):
            raise ConflictError(f"The run was {locked.status}: nothing to restore.", "status")
        latest = _latest(locked.pk)
        nodes = core.restorable({n: nr.status for n, nr in latest.items()})
        if not nodes:
            raise ConflictError("Every node of the run succeeded: nothing to restore.", "status")
        who = _who(user)
        before = locked.status
        _new_attempts(locked, latest, nodes, f"restored by {who}")
        _reopen(locked)
        event(locked, RUN_RESTORED, f"Restored by {who}: {len(nodes)} node(s) rerun.", user=user)
        operation_record(
            action=OperationAction.RESTORE,
            user=user,
            run=run,
            reason=reason,
            detail={"status": [before, locked.status], "nodes": len(nodes)},
        )
        decide_full(locked, user=user)
    run.refresh_from_db()
    return run


def node_rerun_from(*, node_run: NodeRun, user, reason: str | None = "") -> FlowRun:
    """Rerun a node and every node downstream of it in its finished run."""
    reason = clean_reason(reason)
    with transaction.atomic():
        locked = _locked(node_run.run_id)
        _refuse_active(locked, "rerun from a node")
        dag = run_plan(locked).dag
        if node_run.node_id not in dag.nodes:
            raise ConflictError("The node is not part of the run's flow version.", "node")
        nodes = core.nodes_to_rerun_from(dag, node_run.node_id)
        who = _who(user)
        before = locked.status
        _new_attempts(
            locked, _latest(locked.pk), nodes, f"rerun from {node_run.node_name} by {who}"
        )
        _reopen(locked)
        operation_record(
            action=OperationAction.RERUN_FROM,
            user=user,
            run=node_run.run,
            reason=reason,
            detail={
                "status": [before, locked.status],
                "node": node_run.node_name,
                "node_run": node_run.pk,
                "nodes": len(nodes),
            },
        )
        event(
            locked,
            NODE_RERUN_FROM,
            f"Rerun from {node_run.node_name} by {who}: {len(nodes)} node(s).",
            node_run=node_run,
            user=user,
        )
        decide_full(locked, user=user)
    return FlowRun.objects.get(pk=node_run.run_id)


def node_mark_success(*, node_run: NodeRun, user, reason: str | None = "") -> FlowRun:
    """A failed node counts as succeeded; what its failure blocked runs again."""
    reason = clean_reason(reason)
    with transaction.atomic():
        locked = _locked(node_run.run_id)
        nr = lock_node_run(node_run.pk)
        if nr is None:
            raise ConflictError("The node run no longer exists.")
        if not nr.is_latest:
            raise ConflictError(
                "This is an earlier attempt of the node: mark its latest attempt instead.", "status"
            )
        if nr.status != FAILED:
            raise ConflictError(
                f"The node is {nr.status}: only a failed node can be marked succeeded.", "status"
            )
        who = _who(user)
        nr.status = SUCCEEDED
        nr.log = bounded(nr.log, log_line(f"marked succeeded by {who}"))
        nr.save(update_fields=["status", "log"])
        event(
            locked,
            NODE_MARKED_SUCCEEDED,
            f"{nr.node_name}: marked succeeded by {who}.",
            node_run=nr,
            user=user,
        )
        operation_record(
            action=OperationAction.MARK_SUCCESS,
            user=user,
            run=node_run.run,
            reason=reason,
            detail={"node": nr.node_name, "node_run": nr.pk},
        )
        latest = _latest(locked.pk)
        # Nodes another failed node still blocks stay upstream-failed (no pointless attempt);
        # nodes the error policy stopped run again, unless someone stopped the run since.
        again = core.reopened_by_mark_success(
            run_plan(locked).dag,
            {n: row.status for n, row in latest.items()},
            nr.node_id,
            stopped_by_user=_stopped_by_user(locked.pk, nr),
        )
        _new_attempts(locked, latest, again, f"{nr.node_name} marked succeeded by {who}")
        _reopen(locked)
        decide_full(locked, user=user)
    return FlowRun.objects.get(pk=node_run.run_id)


def _stopped_by_user(run_id: int, nr: NodeRun) -> bool:
    """Whether someone stopped the run after this node failed (its stopped nodes stay so)."""
    stops = RunEvent.objects.filter(run_id=run_id, kind=EventKind.RUN_STOPPED)
    if nr.finished_at is not None:
        stops = stops.filter(at__gte=nr.finished_at)
    return stops.exists()


# --------------------------------------------------------------------------- active runs


def _locked_active(run: FlowRun, action: str) -> FlowRun:
    locked = lock_run(run.pk)
    if locked is None:
        raise ConflictError("The run no longer exists.")
    if locked.status in RUN_TERMINAL:
        raise ConflictError(f"The run is already {locked.status}: nothing to {action}.", "status")
    return locked


def _record(locked: FlowRun, run: FlowRun, action, after: str, user, reason: str) -> None:
    """The audit record of an action on an active run (its status before and after)."""
    operation_record(
        action=action,
        user=user,
        run=run,
        reason=reason,
        detail={"status": [locked.status, str(after)]},
    )


def children_apply(run: FlowRun, action, user=None) -> None:
    """A stop, pause or resume of a run acts on its active sub-flow children (and theirs)."""
    for child in FlowRun.objects.filter(parent_run_id=run.pk, status__in=RUN_ACTIVE):
        try:
            action(run=child, user=user)
        except ConflictError:
            continue  # finished meanwhile, or already in that state


def run_stop(*, run: FlowRun, user=None, reason: str | None = "") -> FlowRun:
    """Stop every node at once (running SQL is cancelled by its worker); the run ends stopped."""
    reason = clean_reason(reason)
    with transaction.atomic():
        locked = _locked_active(run, "stop")
        _record(locked, run, OperationAction.STOP, RunStatus.STOPPED, user, reason)
        active = list(
            NodeRun.objects.filter(run_id=run.pk, is_latest=True, status__in=ACTIVE).values_list(
                "pk", flat=True
            )
        )
        who = getattr(user, "username", None) or "the system"
        event(locked, EventKind.RUN_STOPPED, f"Stop requested by {who}.", user=user)
        decide_full(locked, stopping=True, user=user)
        for pk in active:
            append_log(pk, log_line(f"stopped by {who}"))
        children_apply(locked, run_stop, user)
    run.refresh_from_db()
    return run


def run_pause(*, run: FlowRun, user=None, reason: str | None = "") -> FlowRun:
    """No new node starts; started nodes finish (a deferred one its wait too), and the
    queued ones go back to pending (the engine's decision for a paused run)."""
    reason = clean_reason(reason)
    with transaction.atomic():
        locked = _locked_active(run, "pause")
        if locked.status == RunStatus.PAUSED:
            raise ConflictError("The run is already paused.", "status")
        _record(locked, run, OperationAction.PAUSE, RunStatus.PAUSED, user, reason)
        locked.status = RunStatus.PAUSED
        locked.save(update_fields=["status"])
        event(locked, EventKind.RUN_PAUSED, "Paused.", user=user)
        decide_full(locked, user=user)
        children_apply(locked, run_pause, user)
    run.refresh_from_db()
    return run


def run_resume(*, run: FlowRun, user=None, reason: str | None = "") -> FlowRun:
    """Let nodes start again: whatever became ready while paused is queued now."""
    reason = clean_reason(reason)
    with transaction.atomic():
        locked = _locked_active(run, "resume")
        if locked.status != RunStatus.PAUSED:
            raise ConflictError("The run is not paused.", "status")
        after = RunStatus.RUNNING if locked.started_at else RunStatus.QUEUED
        _record(locked, run, OperationAction.RESUME, after, user, reason)
        locked.status = after
        locked.save(update_fields=["status"])
        event(locked, EventKind.RUN_RESUMED, "Resumed.", user=user)
        decide_full(locked, user=user)
        children_apply(locked, run_resume, user)
    run.refresh_from_db()
    return run
