"""The engine's decisions applied to a run, under the run's row lock.

The rule is the pure engine's (operations.engine): this module loads what it needs (node
states, branches, the holds of the concurrency policy), asks `core.decide` (or, after a
success, `incremental.advance`, in lifecycle.record) and writes the transitions back as
status-guarded updates. Used when a node fails, a run is stopped, paused, resumed,
created or reopened, and when a gate opens.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from flows.choices import ConcurrencyPolicy
from operations import dispatch
from operations.choices import (
    GATING_POLICIES,
    RUN_ACTIVE,
    RUN_TERMINAL,
    EventKind,
    RunStatus,
    WaitingReason,
)
from operations.engine import core
from operations.engine.core import (
    CLAIMABLE,
    DISABLED,
    FAILED,
    NOT_QUEUED,
    OPEN,
    PENDING,
    QUEUED,
    SKIPPED,
    STOPPED,
    TERMINAL,
    UPSTREAM_FAILED,
    WAITING,
    Decision,
)
from operations.models import FlowRun, NodeRun
from operations.plan import Plan, plan_for

from . import slots, store
from .locking import lock_run
from .logs import event
from .webhooks import FINISHED, run_webhook


def run_plan(run: FlowRun) -> Plan:
    stamp = run.version.created_at if run.version_id else run.created_at
    return plan_for(run_id=run.pk, version_id=run.version_id, stamp=stamp)


def is_paused(run) -> bool:
    """The engine's `paused`: the run starts no node."""
    return run.status in store.PAUSED


def may_hold(run) -> bool:
    """Whether the engine may hold this run's nodes back (a previous run gates them).

    `run` is a FlowRun or its columns (store.run_info): both are fixed once it is active.
    """
    if isinstance(run, dict):
        previous, policy = run["previous_run_id"], run["concurrency_policy"]
    else:
        previous, policy = run.previous_run_id, run.concurrency_policy
    return bool(previous) and policy in GATING_POLICIES


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
            run_id=self.run_id, is_latest=True, node_id__in=list(nodes), status__in=OPEN
        ).exists()

    def add(self, pk, node_id, status, branch) -> None:
        self.states[node_id] = status
        self.ids[node_id] = pk
        if branch:
            self.branches[node_id] = branch


def holds_for(run: FlowRun):
    """A function telling which of the given nodes are held back, and why (the engine's `held`).

    Today the concurrency policy: under parallel_same_node / parallel_downstream a node
    waits while the same node of the previous run (and, for the latter, its downstream
    nodes) has not finished.
    """
    if not may_hold(run):
        return lambda _nodes: {}

    def held(nodes) -> dict:
        prev = (
            FlowRun.objects.select_related("version")
            .only("id", "status", "version_id", "created_at", "version__created_at")
            .filter(pk=run.previous_run_id)
            .first()
        )
        if prev is None or prev.status in RUN_TERMINAL:
            return {}
        prev_dag = run_plan(prev).dag
        if run.concurrency_policy == ConcurrencyPolicy.PARALLEL_SAME_NODE:
            watch = {n: {n} for n in nodes if n in prev_dag.nodes}
        else:
            watch = {n: {n} | prev_dag.descendants(n) for n in nodes if n in prev_dag.nodes}
        needed = set().union(*watch.values()) if watch else set()
        if not needed:
            return {}
        open_nodes = {
            node_id
            for node_id, status in NodeRun.objects.filter(
                run_id=prev.pk, is_latest=True, node_id__in=list(needed)
            ).values_list("node_id", "status")
            if status not in TERMINAL
        }
        return {
            n: core.HELD_BY_CONCURRENCY_POLICY
            for n, closure in watch.items()
            if closure & open_nodes
        }

    return held


FAIR_REASONS = (WaitingReason.TENANT_LIMIT, WaitingReason.POOL)


def _fair_holds(run_id: int) -> dict:
    """The run's nodes parked by fair share (tenant limit, pool), with their reasons."""
    return dict(
        NodeRun.objects.filter(
            run_id=run_id, is_latest=True, status=WAITING, waiting_reason__in=FAIR_REASONS
        ).values_list("node_id", "waiting_reason")
    )


def apply_decision(run: FlowRun, plan: Plan, decision: Decision, loader: StateLoader) -> int:
    """Write the decision's transitions, send ready nodes after commit; returns nodes closed.

    Each update is guarded by the states the engine decided it from (Decision.guards()).
    """
    now = timezone.now()
    ids = loader.ids
    guards = decision.guards()
    closed = 0
    nodes = NodeRun.objects.filter
    if decision.ready:
        # Higher priority first, so the broker's FIFO order follows it.
        ordered = sorted(decision.ready, key=lambda n: -plan.nodes[n].priority)
        # Fair share: nodes beyond what the tenant may still start wait for admission
        # instead of crowding the broker (a worker's claim stays the authority).
        allowed, detail = slots.queue_allowance(run.tenant_id, len(ordered))
        ordered, parked = ordered[:allowed], ordered[allowed:]
        nodes(pk__in=[ids[n] for n in ordered], status__in=guards[QUEUED]).update(
            status=QUEUED, queued_at=now, next_attempt_at=None, waiting_reason=WaitingReason.NONE
        )
        if parked:
            nodes(pk__in=[ids[n] for n in parked], status__in=guards[QUEUED]).update(
                status=WAITING,
                queued_at=None,
                next_attempt_at=None,
                waiting_reason=WaitingReason.TENANT_LIMIT,
                waiting_detail=detail,
            )
        dispatch.send_nodes([(ids[n], now, None, plan.nodes[n].timeout) for n in ordered])
    by_reason: dict = {}
    for n in decision.waiting:
        by_reason.setdefault(decision.reasons.get(n, WaitingReason.NONE), []).append(ids[n])
    # A pause sends queued nodes back (to waiting when held): their messages are revoked.
    back = [ids[n] for n in decision.unqueue | decision.waiting if loader.states[n] == QUEUED]
    sent = list(nodes(pk__in=back, status=QUEUED).values_list("pk", "queued_at")) if back else []
    for reason, pks in by_reason.items():
        nodes(pk__in=pks, status__in=guards[WAITING]).update(
            status=WAITING, waiting_reason=reason, queued_at=None
        )
    for moving, status in (
        (decision.skipped, SKIPPED),
        (decision.upstream_failed, UPSTREAM_FAILED),
        (decision.disabled, DISABLED),
    ):
        if moving:
            closed += nodes(pk__in=[ids[n] for n in moving], status__in=guards[status]).update(
                status=status, finished_at=now, waiting_reason=WaitingReason.NONE
            )
    if decision.stop:
        pks = [ids[n] for n in decision.stop]
        # Their messages (a queued node's, a deferred node's next check) are revoked.
        sent += nodes(pk__in=pks, status__in=CLAIMABLE & guards[STOPPED]).values_list(
            "pk", "queued_at"
        )
        closed += nodes(pk__in=pks, status__in=guards[STOPPED]).update(
            status=STOPPED, finished_at=now, waiting_reason=WaitingReason.NONE
        )
    if decision.unqueue:
        nodes(pk__in=[ids[n] for n in decision.unqueue], status__in=guards[PENDING]).update(
            status=PENDING, queued_at=None
        )
    dispatch.revoke([dispatch.node_task_id(pk, at) for pk, at in sent])
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
    if status in FINISHED:
        run_webhook(run=run, event_type=FINISHED[status])
    wake_parent(run)
    run_id = run.pk
    transaction.on_commit(lambda: _alert(run_id))
    if run.batch:
        dispatch.send_run_task("batch_advance", str(run.batch))
    if run.tenant_id in slots.fair_state().run_limits:
        # A run of a tenant with an active-run limit ended: a waiting one may join.
        dispatch.send_run_task("runs_admit", run.tenant_id)


def wake_parent(run: FlowRun) -> None:
    """A sub-flow's child that finished sends its waiting parent node to a worker at once
    (after commit): the node's next check now. Its scheduled check later finds it claimed
    or waiting again, which does no harm (a node is claimed once per check)."""
    pk = run.parent_node_run_id
    if pk and NodeRun.objects.filter(pk=pk, status=core.DEFERRED).exists():
        dispatch.send_nodes([(pk, None, None, 3600)])


def _alert(run_id: int) -> None:
    from operations import alerts

    alerts.alert_run_finished(run_id=run_id)


def outcome_of_nodes(run_id: int) -> str | None:
    """The run's status from its nodes' latest states (the engine's run_outcome): None while
    one of them is still open."""
    statuses = NodeRun.objects.filter(run_id=run_id, is_latest=True).values_list(
        "status", flat=True
    )
    return core.run_outcome(set(statuses))


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
    """Ask core.decide over the whole DAG and apply it (caller holds the run lock)."""
    plan = plan or run_plan(run)
    loader = StateLoader(run.pk)
    loader.load_all()
    not_queued = {n for n, s in loader.states.items() if s in NOT_QUEUED}
    held = holds_for(run)(not_queued) if not_queued and not stopping else {}
    if not stopping and any(s == WAITING for s in loader.states.values()):
        # Nodes parked by fair share stay held (with their reason) until admission sends
        # them: the concurrency policy's holds come on top.
        held = {**_fair_holds(run.pk), **held}
    decision = core.decide(
        plan.dag,
        loader.states,
        policy=run.error_policy,
        branches=loader.branches,
        held=held,
        paused=is_paused(run),
        stopping=stopping,
    )
    apply_decision(run, plan, decision, loader)
    run.nodes_open = NodeRun.objects.filter(run_id=run.pk, is_latest=True, status__in=OPEN).count()
    if run.status not in RUN_TERMINAL and run.nodes_open == 0:
        finish_run(run, decision.run_status or outcome_of_nodes(run.pk), user=user)
    elif run.status == RunStatus.QUEUED and not decision.ready and decision.waiting:
        run.status = RunStatus.WAITING
    elif run.status == RunStatus.WAITING and decision.ready:
        run.status = RunStatus.QUEUED if run.started_at is None else RunStatus.RUNNING
    run.save(update_fields=["status", "nodes_open", "finished_at", "error"])
    wake_successors(run)
    return decision


def run_evaluate(run_id: int) -> None:
    """Re-decide an active run (its gate opened, or a sweep checks it); idempotent."""
    with transaction.atomic():
        run = lock_run(run_id)
        if run is None or run.status not in RUN_ACTIVE:
            return
        decide_full(run)
