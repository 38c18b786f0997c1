"""Run-level decisions under the run's row lock: the full core.decide and what it implies.

Used when a node fails, a run is stopped, paused, resumed or created, and when a gate opens;
the success of a node takes the incremental path (engine.incremental) in lifecycle.record.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from operations import dispatch
from operations.choices import RUN_ACTIVE, RUN_TERMINAL, EventKind, RunStatus
from operations.engine import core
from operations.engine.core import (
    FAILED,
    NOT_STARTED,
    PENDING,
    QUEUED,
    RUNNING,
    SKIPPED,
    STOPPED,
    TERMINAL,
    UPSTREAM_FAILED,
    WAITING,
    Decision,
)
from operations.models import FlowRun, NodeRun
from operations.plan import Plan, plan_for

from . import store
from .locking import lock_run
from .logs import event

PARALLEL_POLICIES = ("parallel_same_node", "parallel_downstream")


def run_plan(run: FlowRun) -> Plan:
    stamp = run.version.created_at if run.version_id else run.created_at
    return plan_for(run_id=run.pk, version_id=run.version_id, stamp=stamp)


class StateLoader:
    """Latest node states of a run, loaded on demand (one query per batch of nodes)."""

    def __init__(self, run_id: int):
        self.run_id = run_id
        self.states: dict = {}
        self.branches: dict = {}
        self.ids: dict = {}

    def load(self, nodes) -> None:
        rows = NodeRun.objects.filter(run_id=self.run_id, is_latest=True, node_id__in=list(nodes))
        for pk, node_id, status, branch in rows.values_list("pk", "node_id", "status", "branch"):
            self.add(pk, node_id, status, branch)

    def load_all(self) -> None:
        rows = NodeRun.objects.filter(run_id=self.run_id, is_latest=True)
        for pk, node_id, status, branch in rows.values_list("pk", "node_id", "status", "branch"):
            self.add(pk, node_id, status, branch)

    def any_open(self, nodes) -> bool:
        """Whether one of these nodes is not finished yet.

        A node waiting on hundreds of upstreams asks this after each of them finishes, so
        the usual answer comes from a small sample of the run's unfinished nodes, without
        sending the upstream ids to the database.
        """
        sample = store.open_nodes_sample(self.run_id)
        if any(n in nodes for n in sample):
            return True
        if len(sample) < store.OPEN_SAMPLE:
            return False  # the sample is every unfinished node
        return NodeRun.objects.filter(
            run_id=self.run_id,
            is_latest=True,
            node_id__in=list(nodes),
            status__in=(PENDING, WAITING, QUEUED, RUNNING),
        ).exists()

    def add(self, pk, node_id, status, branch) -> None:
        self.states[node_id] = status
        self.ids[node_id] = pk
        if branch:
            self.branches[node_id] = branch


def gate_for(run: FlowRun):
    """A function telling which of the given nodes the previous run still holds back."""
    if not run.previous_run_id or run.concurrency_policy not in PARALLEL_POLICIES:
        return lambda _nodes: set()

    def gate(nodes) -> set:
        prev = (
            FlowRun.objects.select_related("version")
            .only("id", "status", "version_id", "created_at", "version__created_at")
            .filter(pk=run.previous_run_id)
            .first()
        )
        if prev is None or prev.status in RUN_TERMINAL:
            return set()
        prev_dag = run_plan(prev).dag
        if run.concurrency_policy == "parallel_same_node":
            watch = {n: {n} for n in nodes if n in prev_dag.nodes}
        else:
            watch = {n: {n} | prev_dag.descendants(n) for n in nodes if n in prev_dag.nodes}
        needed = set().union(*watch.values()) if watch else set()
        if not needed:
            return set()
        open_nodes = {
            node_id
            for node_id, status in NodeRun.objects.filter(
                run_id=prev.pk, is_latest=True, node_id__in=list(needed)
            ).values_list("node_id", "status")
            if status not in TERMINAL
        }
        return {n for n, closure in watch.items() if closure & open_nodes}

    return gate


def apply_decision(run: FlowRun, plan: Plan, decision: Decision, loader: StateLoader) -> int:
    """Write the decision's transitions, send ready nodes after commit; returns nodes closed."""
    now = timezone.now()
    ids = loader.ids
    closed = 0
    if decision.ready:
        pks = [ids[n] for n in decision.ready]
        NodeRun.objects.filter(pk__in=pks, status__in=NOT_STARTED).update(
            status=QUEUED, queued_at=now, next_attempt_at=None
        )
        # Higher priority first, so the broker's FIFO order follows it.
        ordered = sorted(decision.ready, key=lambda n: -plan.nodes[n].priority)
        dispatch.send_nodes([(ids[n], now, None, plan.nodes[n].timeout) for n in ordered])
    if decision.waiting:
        NodeRun.objects.filter(pk__in=[ids[n] for n in decision.waiting], status=PENDING).update(
            status=WAITING
        )
    for nodes, status in ((decision.skipped, SKIPPED), (decision.upstream_failed, UPSTREAM_FAILED)):
        if nodes:
            closed += NodeRun.objects.filter(
                pk__in=[ids[n] for n in nodes], status__in=NOT_STARTED
            ).update(status=status, finished_at=now)
    if decision.stop:
        stop_pks = [ids[n] for n in decision.stop]
        queued = list(
            NodeRun.objects.filter(pk__in=stop_pks, status=QUEUED).values_list("pk", "queued_at")
        )
        closed += NodeRun.objects.filter(
            pk__in=stop_pks, status__in=(PENDING, WAITING, QUEUED, RUNNING)
        ).update(status=STOPPED, finished_at=now)
        dispatch.revoke([dispatch.node_task_id(pk, at) for pk, at in queued])
    return closed


def finish_run(run: FlowRun, status: str, *, user=None, message: str = "") -> None:
    """Close the run (caller holds its lock and saves it)."""
    run.status = status
    run.finished_at = timezone.now()
    if status == RunStatus.FAILED and not run.error:
        failed = list(
            NodeRun.objects.filter(run_id=run.pk, is_latest=True, status=FAILED)
            .order_by("node_id")
            .values_list("node_name", flat=True)[:10]
        )
        run.error = ("Failed nodes: " + ", ".join(failed)) if failed else "A node failed."
    event(run, EventKind.RUN_FINISHED, message or f"Run {status}.", user=user)
    run_id = run.pk
    transaction.on_commit(lambda: _alert(run_id))
    if run.batch:
        dispatch.send_run_task("batch_advance", str(run.batch))


def _alert(run_id: int) -> None:
    from operations import alerts

    alerts.alert_run_finished(run_id=run_id)


def outcome_of_nodes(run_id: int) -> str:
    """The run status once every node is terminal (same rule as core's run outcome)."""
    statuses = set(
        NodeRun.objects.filter(run_id=run_id, is_latest=True).values_list("status", flat=True)
    )
    if statuses & {FAILED, UPSTREAM_FAILED}:
        return RunStatus.FAILED
    if STOPPED in statuses:
        return RunStatus.STOPPED
    return RunStatus.SUCCEEDED


def wake_successors(run: FlowRun) -> None:
    """Runs gated by this one re-evaluate their waiting nodes after commit (no polling)."""
    if not run.has_successors:
        return
    for pk in FlowRun.objects.filter(previous_run_id=run.pk, status__in=RUN_ACTIVE).values_list(
        "pk", flat=True
    ):
        dispatch.send_run_task("run_evaluate", pk)


def decide_full(
    run: FlowRun, plan: Plan | None = None, *, stopping: bool = False, user=None
) -> Decision:
    """Run core.decide over the whole DAG and apply it (caller holds the run lock)."""
    plan = plan or run_plan(run)
    loader = StateLoader(run.pk)
    loader.load_all()
    not_started = {n for n, s in loader.states.items() if s in NOT_STARTED}
    blocked = gate_for(run)(not_started) if not_started and not stopping else set()
    decision = core.decide(
        plan.dag,
        loader.states,
        policy=run.error_policy,
        branches=loader.branches,
        blocked=blocked,
        paused=run.status == RunStatus.PAUSED,
        stopping=stopping,
    )
    apply_decision(run, plan, decision, loader)
    new_states = core.apply(loader.states, decision)
    if not stopping and run.error_policy == core.COMPLETE_RUNNING and FAILED in new_states.values():
        # core counts a queued node as started; for us it has not started until a worker
        # claims it, and after a failure under complete_running no further node starts.
        _stop_unclaimed(new_states, loader)
    run.nodes_open = NodeRun.objects.filter(
        run_id=run.pk, is_latest=True, status__in=(PENDING, WAITING, QUEUED, RUNNING)
    ).count()
    if run.status not in RUN_TERMINAL and run.nodes_open == 0:
        finish_run(run, decision.run_status or outcome_of_nodes(run.pk), user=user)
    elif run.status == RunStatus.QUEUED and not decision.ready and decision.waiting:
        run.status = RunStatus.WAITING
    elif run.status == RunStatus.WAITING and decision.ready:
        run.status = RunStatus.QUEUED if run.started_at is None else RunStatus.RUNNING
    run.save(update_fields=["status", "nodes_open", "finished_at", "error"])
    wake_successors(run)
    return decision


def _stop_unclaimed(states: dict, loader: StateLoader) -> None:
    queued = [loader.ids[n] for n, s in states.items() if s == QUEUED]
    if not queued:
        return
    rows = list(NodeRun.objects.filter(pk__in=queued, status=QUEUED).values_list("pk", "queued_at"))
    NodeRun.objects.filter(pk__in=[pk for pk, _ in rows], status=QUEUED).update(
        status=STOPPED, finished_at=timezone.now()
    )
    dispatch.revoke([dispatch.node_task_id(pk, at) for pk, at in rows])


def run_evaluate(run_id: int) -> None:
    """Re-decide an active run (its gate opened, or a sweep checks it); idempotent."""
    with transaction.atomic():
        run = lock_run(run_id)
        if run is None or run.status not in RUN_ACTIVE:
            return
        decide_full(run)
