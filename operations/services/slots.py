"""Fair share applied: tenant limits and data-source pools at a node's claim, admission after.

The rules are the pure engine's (operations.engine.fair); this module loads the numbers and
applies the verdicts:

- `claim_fair` is a worker's claim under fair share: in one transaction it takes the slot
  locks of the node's tenant and pools, counts what runs, and either claims the node (the
  same status-guarded statement as always, which takes the slot: a slot is a running node)
  or parks it as `waiting` with the reason. A slot is released by whatever moves the node
  out of `running` (its result, a stop, the watchdog declaring its worker lost), in that
  same transaction, so there is no counter to lose or count twice.
- `admit` sends parked nodes again once slots are free, best first (scheduled, manual,
  backfill; the tenant with the fewest running nodes; the oldest). It runs after a worker
  finishes a node, after a node is parked, and on the watchdog's sweep.
- `worker_report` / `worker_gone`: workers report their pool size at start and every
  `TRIBUTARY_WORKER_REPORT_SECONDS`; the slots of the workers seen recently are the base
  of the default limit.

Without any limit, pool or second tenant, `FairState.active` is false and the claim is the
single statement it always was.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from accounts.models import Tenant
from flows.models import DataSource, TaskFlow
from operations import conf, dispatch
from operations.choices import RUN_ACTIVE, RunStatus, WaitingReason
from operations.engine import fair
from operations.engine.core import DEFERRED, QUEUED, RUNNING, WAITING
from operations.models import FlowRun, NodeRun, WorkerSlots
from operations.plan import plan_for

from . import store
from .locking import (
    admission_coalesces,
    admissions_wanted,
    lock_slots,
    try_lock_admission,
    want_admission,
)

logger = logging.getLogger("tributary.engine")

FAIR_REASONS = (WaitingReason.TENANT_LIMIT, WaitingReason.POOL)
# Parked nodes admission looks at, best first, per pass.
ADMIT_WINDOW = 500


@dataclass
class FairState:
    """What the platform's fair share depends on, read at most every REFRESH seconds."""

    slots: int = 0
    tenants_with_flows: int = 0
    own_limits: dict = field(default_factory=dict)  # tenant id -> max_running_nodes
    run_limits: dict = field(default_factory=dict)  # tenant id -> max_active_runs
    caps: dict = field(default_factory=dict)  # data source id -> max_concurrency
    names: dict = field(default_factory=dict)  # data source id -> name (capped ones)
    default: int | None = None
    # Never read: older than any refresh period (the monotonic clock starts near 0 at boot).
    read_at: float = float("-inf")

    @property
    def active(self) -> bool:
        return bool(self.own_limits or self.caps or self.default is not None)

    def limit(self, tenant_id) -> int | None:
        return fair.effective_limit(self.own_limits.get(tenant_id), self.default)


_state = FairState()
_state_lock = threading.Lock()


def live_slots() -> int:
    """Worker slots up: the pool sizes of the workers heard from recently."""
    seen_after = timezone.now() - timedelta(seconds=conf.get("TRIBUTARY_WORKER_STALE_SECONDS"))
    total = WorkerSlots.objects.filter(seen_at__gte=seen_after).aggregate(n=Sum("concurrency"))
    return int(total["n"] or 0)


def read_state() -> FairState:
    """The fair-share numbers from the database (uncached)."""
    state = FairState(read_at=time.monotonic())
    state.slots = live_slots()
    # One tenant with flows, or more (two index look-ups, whatever the number of flows).
    first = TaskFlow.objects.order_by().values_list("tenant_id", flat=True).first()
    if first is not None:
        flows = TaskFlow.objects.order_by()
        others = (
            flows.filter(tenant_id__gt=first).exists() or flows.filter(tenant_id__lt=first).exists()
        )
        state.tenants_with_flows = 2 if others else 1
    state.own_limits = dict(
        Tenant.objects.filter(max_running_nodes__isnull=False).values_list(
            "pk", "max_running_nodes"
        )
    )
    state.run_limits = dict(
        Tenant.objects.filter(max_active_runs__isnull=False).values_list("pk", "max_active_runs")
    )
    for pk, cap, name in DataSource.objects.filter(max_concurrency__isnull=False).values_list(
        "pk", "max_concurrency", "name"
    ):
        state.caps[pk] = cap
        state.names[pk] = name
    state.default = fair.default_limit(
        slots=state.slots,
        tenants_with_flows=state.tenants_with_flows,
        share=conf.get("TRIBUTARY_FAIR_HEADROOM_SHARE"),
    )
    return state


def fair_state(*, fresh: bool = False) -> FairState:
    """The cached state; re-read when older than TRIBUTARY_FAIR_REFRESH_SECONDS."""
    global _state
    age = time.monotonic() - _state.read_at
    if fresh or age > conf.get("TRIBUTARY_FAIR_REFRESH_SECONDS"):
        state = read_state()
        with _state_lock:
            _state = state
    return _state


def forget_state() -> None:
    """Re-read the state at the next claim (a limit or pool changed in this process)."""
    global _state
    with _state_lock:
        _state = FairState()


def node_pools(spec) -> tuple[int, ...]:
    """The data sources a node runs on (its type's references), as pool ids."""
    if spec is None:
        return ()
    from flows.nodes import base as nodes

    node_type = nodes.get(spec.type)
    if node_type is None:
        return ()
    try:
        ids = node_type.references(spec.config).get("datasources", [])
    except Exception:  # noqa: BLE001 - a malformed configuration fails at execution
        return ()
    out = []
    for value in ids:
        try:
            out.append(int(value))
        except (TypeError, ValueError):
            continue
    return tuple(sorted(set(out)))


def pools_text(pools) -> str:
    return "," + ",".join(str(p) for p in pools) + "," if pools else ""


def pools_of(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in (text or "").split(",") if p.isdigit())


def claim_fair(node_run_id: int, now, worker: str) -> tuple[dict | None, bool]:
    """A worker's claim under fair share: (claimed row or None, admission due).

    The second value is true when the node was parked although a slot has been released
    since: the caller then runs the admission.

    A deferred node's next check is claimed without a slot check: it was admitted when it
    started, and a check is short.
    """
    state = fair_state()
    if not state.active:
        got = store.claim(node_run_id, now, worker)
        if got is None:
            return None, False
        return _checked_after_claim(got, state)
    row = _claim_target(node_run_id)
    if row is None or row["status"] not in (QUEUED, DEFERRED):
        return None, False
    info = store.run_info(row["run_id"])
    if not info:
        return None, False
    plan = plan_for(run_id=row["run_id"], version_id=info["version_id"], stamp=info["stamp"])
    pools = node_pools(plan.nodes.get(row["node_id"]))
    text = pools_text(pools)
    limit = state.limit(row["tenant_id"])
    # A node on a data source always counts its pools' caps as they are now (a cap set a
    # moment ago by another process is not in this process's state yet).
    if row["status"] == DEFERRED or (limit is None and not pools):
        return store.claim(node_run_id, now, worker, pools=text), False
    with transaction.atomic():
        lock_slots(tenant_id=row["tenant_id"], pools=pools, relaxed=True)
        # The tenant's own limit and the pools' caps as they are now, not as this process
        # last read them: a limit lowered a moment ago holds at the next claim (another
        # process's cache may be up to TRIBUTARY_FAIR_REFRESH_SECONDS old).
        running, on_pools, own, caps = store.slots_and_limits(row["tenant_id"], pools)
        limit = fair.effective_limit(own, state.default)
        capped = [p for p in pools if p in caps]
        verdict = fair.blocked(
            tenant_running=running,
            limit=limit,
            pools=capped,
            pool_running=on_pools,
            caps=caps,
        )
        if verdict is None:
            return store.claim(node_run_id, now, worker, pools=text), False
        reason, pool = verdict
        detail = held_detail(reason, pool, caps=caps, limit=limit, state=state)
        parked = store.park(node_run_id, reason=reason, detail=detail, pools=text)
    if parked:
        # Committed: if a slot was released meanwhile, its releaser's admission may have
        # looked before our park committed. A count now sees every release committed
        # before it; a later release admits after its own commit and sees our node.
        running, on_pools = store.slots_in_use(row["tenant_id"], capped)
        still = fair.blocked(
            tenant_running=running,
            limit=limit,
            pools=capped,
            pool_running=on_pools,
            caps=caps,
        )
        return None, still is None
    return None, False


def _claim_target(node_run_id: int) -> dict | None:
    """The node's run, tenant, node and status as last committed, for a claim.

    A node's message may arrive before the transaction that queued it commits (the
    recording sends just before its commit, lifecycle.record): a plain read then still sees
    the node pending, and the message would be dropped with the node left queued until the
    watchdog re-sends it. So a node not seen claimable is read again behind its row's lock
    (PostgreSQL; SQLite's immediate transaction waits for the writer), which waits for that
    commit, as the claim statement itself does.
    """
    fields = ("run_id", "tenant_id", "node_id", "status")
    rows = NodeRun.objects.filter(pk=node_run_id)
    row = rows.values(*fields).first()
    if row is not None and row["status"] not in (QUEUED, DEFERRED):
        with transaction.atomic():
            row = rows.select_for_update().values(*fields).first()
    return row


def _checked_after_claim(got: dict, state: FairState) -> tuple[dict | None, bool]:
    """A node claimed while this process saw no limit and no cap: a node on data sources
    checks the caps as they are now (one set by another process a moment ago, or by the
    admin, would otherwise not hold until this process re-reads its state), and records its
    pools so the claims after it count it. Nodes on no data source cost nothing more."""
    info = store.run_info(got["run_id"])
    if not info:
        return got, False
    plan = plan_for(run_id=got["run_id"], version_id=info["version_id"], stamp=info["stamp"])
    pools = node_pools(plan.nodes.get(got["node_id"]))
    if not pools:
        return got, False
    text = pools_text(pools)
    with transaction.atomic():
        lock_slots(tenant_id=got["tenant_id"], pools=pools, relaxed=True)
        store.record_pools(got["id"], text)
        # This node is running now: it counts itself.
        running, on_pools, own, caps = store.slots_and_limits(got["tenant_id"], pools)
        limit = fair.effective_limit(own, state.default)
        verdict = fair.blocked(
            tenant_running=running - 1,
            limit=limit,
            pools=[p for p in pools if p in caps],
            pool_running={p: n - 1 for p, n in on_pools.items()},
            caps=caps,
        )
        if verdict is None:
            return got, False
        reason, pool = verdict
        detail = held_detail(reason, pool, caps=caps, limit=limit, state=state)
        store.unclaim_park(got["id"], reason=reason, detail=detail, pools=text)
    forget_state()  # a limit or cap this process did not know of: read them at the next claim
    return None, False


def held_detail(reason: str, pool, *, caps: dict, limit, state: FairState) -> str:
    """Why a node is held, in words (its waiting_detail)."""
    if reason == WaitingReason.POOL:
        name = state.names.get(pool) or (
            DataSource.objects.filter(pk=pool).values_list("name", flat=True).first() or pool
        )
        return f"pool {name} full ({caps[pool]} running)"
    return limit_detail(limit)


def queue_allowance(tenant_id: int, wanted: int) -> tuple[int, str]:
    """How many of `wanted` ready nodes of the tenant to send now, and the detail for the rest.

    A pre-filter (one count, no lock): nodes beyond the tenant's limit, counting its nodes
    running or already sent, are parked at once rather than crowding the broker ahead of
    other tenants. The claim remains the check that holds; admission sends the rest.
    """
    state = fair_state()
    limit = state.limit(tenant_id) if state.active else None
    if limit is None or wanted <= 0:
        return wanted, ""
    in_flight = NodeRun.objects.filter(tenant_id=tenant_id, status__in=(RUNNING, QUEUED)).count()
    return max(0, min(wanted, limit - in_flight)), limit_detail(limit)


def limit_detail(limit: int) -> str:
    """A node held by its tenant's limit, in words."""
    return f"tenant limit ({limit} running node{'' if limit == 1 else 's'})"


def hand_off_allowed(spec) -> bool:
    """Whether a worker may go on with this node itself (it keeps the slot its node held).

    Not onto a node on a data source: its pool's slot is another count, taken (and its
    pools recorded) by a claim, which reads the caps as they are now.
    """
    return not node_pools(spec)


def tenant_may_keep(tenant_id: int) -> bool:
    """Whether the slot a finishing node of the tenant releases is still the tenant's to keep
    for its next node: not while it runs more nodes than its limit allows (a limit lowered
    while they ran; the finishing node still counts as running)."""
    state = fair_state()
    if not state.active:
        return True
    running, _, own, _ = store.slots_and_limits(tenant_id, ())
    limit = fair.effective_limit(own, state.default)
    return limit is None or running <= limit


def _candidates(limit: int) -> list[dict]:
    return list(
        NodeRun.objects.filter(
            status=WAITING,
            waiting_reason__in=FAIR_REASONS,
            run__status__in=[s for s in RUN_ACTIVE if s != RunStatus.PAUSED],
        )
        .order_by("run__created_at", "pk")
        .values("pk", "tenant_id", "pools", "run__mode", "run__created_at", "run_id", "node_id")[
            :limit
        ]
    )


def admit(*, fresh: bool = False) -> int:
    """Send parked nodes that fit now, best first; returns how many were sent.

    `fresh`: read the default share and the worker slots now rather than from this
    process's cache (a limit changed; the candidates' own limits and caps are always read
    now, in `_admit_locked`); such an admission waits for the one under way. A worker that merely freed a slot does
    not wait (PostgreSQL): if another admission holds the lock, it asks that one to look
    again once it ends, and returns, so worker threads never queue behind each other's
    admissions. The one under way compares the requests before and after its own: any
    made meanwhile, by a releaser that committed before asking, makes it go round again.
    """
    if not _candidates(1):
        return 0
    coalesce = admission_coalesces() and not connection.in_atomic_block
    if coalesce and not fresh:
        want_admission()
    sent = 0
    while True:
        state = fair_state(fresh=fresh)
        with transaction.atomic():
            if fresh or not coalesce:
                lock_slots(admission=True)
            elif not try_lock_admission():
                return sent  # the admission under way looks again when it ends
            seen = admissions_wanted() if coalesce else None
            sent += _admit_locked(state)
        if not coalesce or admissions_wanted() == seen:
            return sent
        fresh = False


def _admit_locked(state: FairState) -> int:
    """The admission itself, under the admission's lock; how many nodes it sent."""
    rows = _candidates(ADMIT_WINDOW)
    if not rows:
        return 0
    tenants = {r["tenant_id"] for r in rows}
    on = {r["pk"]: pools_of(r["pools"]) for r in rows}
    # The candidates' own limits and their pools' caps as they are now, as the claim reads
    # them: with this process's cached ones (up to TRIBUTARY_FAIR_REFRESH_SECONDS old) an
    # admission just after a limit was set sent more nodes than it allows, whose claims
    # then raced for the slots in any order instead of the priority order.
    own = dict(
        Tenant.objects.filter(pk__in=tenants)
        .exclude(max_running_nodes=None)
        .values_list("pk", "max_running_nodes")
    )
    caps = dict(
        DataSource.objects.filter(pk__in={p for named in on.values() for p in named})
        .exclude(max_concurrency=None)
        .values_list("pk", "max_concurrency")
    )
    pools = sorted({p for named in on.values() for p in named if p in caps})
    in_flight = dict(
        NodeRun.objects.filter(tenant_id__in=tenants, status__in=(RUNNING, QUEUED))
        .order_by()
        .values_list("tenant_id")
        .annotate(n=Count("pk"))
    )
    pool_in_flight = {}
    for pool in pools:
        pool_in_flight[pool] = NodeRun.objects.filter(
            status__in=(RUNNING, QUEUED), pools__contains=f",{pool},"
        ).count()
    free = None
    if state.slots:
        busy = NodeRun.objects.filter(status__in=(RUNNING, QUEUED)).count()
        free = max(0, state.slots - busy)
    by_key = {r["pk"]: r for r in rows}
    chosen = fair.admit(
        [
            fair.Candidate(
                key=r["pk"],
                tenant=r["tenant_id"],
                rank=fair.rank(r["run__mode"]),
                age=(r["run__created_at"], r["pk"]),
                pools=tuple(p for p in on[r["pk"]] if p in caps),
            )
            for r in rows
        ],
        in_flight=in_flight,
        limits={t: fair.effective_limit(own.get(t), state.default) for t in tenants},
        pool_in_flight=pool_in_flight,
        caps=caps,
        free=free,
    )
    if not chosen:
        return 0
    now = timezone.now()
    moved = set(NodeRun.objects.filter(pk__in=chosen, status=WAITING).values_list("pk", flat=True))
    NodeRun.objects.filter(pk__in=moved, status=WAITING).update(
        status=QUEUED,
        queued_at=now,
        waiting_reason=WaitingReason.NONE,
        waiting_detail="",
    )
    items = []
    for pk in chosen:
        if pk not in moved:
            continue
        r = by_key[pk]
        info = store.run_info(r["run_id"])
        plan = plan_for(run_id=r["run_id"], version_id=info["version_id"], stamp=info["stamp"])
        spec = plan.nodes.get(r["node_id"])
        items.append((pk, now, None, spec.timeout if spec else 3600))
    dispatch.send_nodes(items)
    return len(items)


def admit_quietly(*, fresh: bool = False) -> None:
    """`admit`, for the end of a node's task: a failure here only delays the parked nodes
    until the watchdog's sweep admits them."""
    try:
        admit(fresh=fresh)
    except Exception:  # noqa: BLE001
        logger.exception("admitting parked nodes failed; the watchdog will retry")


def limits_changed() -> None:
    """A limit or a pool changed: this process re-reads them, and parked nodes that now fit
    are sent after commit."""
    forget_state()
    transaction.on_commit(lambda: admit_quietly(fresh=True))
    # Runs waiting for an active-run limit (creation.runs_admit, by its task).
    for tenant_id in (
        FlowRun.objects.filter(
            activated_at__isnull=True, batch__isnull=True, status=RunStatus.QUEUED
        )
        .order_by()
        .values_list("tenant_id", flat=True)
        .distinct()
    ):
        dispatch.send_run_task("runs_admit", tenant_id)


def admission_due() -> bool:
    """Whether a finished node may have freed a slot someone waits for (cheap: cached)."""
    return fair_state().active


# --------------------------------------------------------------------------- workers


def worker_report(*, name: str, concurrency: int) -> None:
    """A worker's pool size, at start and periodically (its heartbeat)."""
    now = timezone.now()
    updated = WorkerSlots.objects.filter(name=name).update(concurrency=concurrency, seen_at=now)
    if not updated:
        WorkerSlots.objects.get_or_create(
            name=name, defaults={"concurrency": concurrency, "seen_at": now}
        )


def worker_gone(*, name: str) -> None:
    """A worker stopped cleanly: its slots are no longer up."""
    WorkerSlots.objects.filter(name=name).delete()


# --------------------------------------------------------------------------- use


def tenant_use(tenant_id: int) -> dict:
    """A tenant's limits and current use (the tenant API, the O&M centre, /metrics)."""
    state = fair_state(fresh=True)
    tenant = Tenant.objects.filter(pk=tenant_id).values(
        "max_running_nodes", "max_active_runs"
    ).first() or {"max_running_nodes": None, "max_active_runs": None}
    running = NodeRun.objects.filter(tenant_id=tenant_id, status=RUNNING).count()
    waiting = NodeRun.objects.filter(
        tenant_id=tenant_id, status=WAITING, waiting_reason__in=FAIR_REASONS
    ).count()
    active_runs = FlowRun.objects.filter(
        tenant_id=tenant_id, status__in=RUN_ACTIVE, activated_at__isnull=False
    ).count()
    return {
        "limits": {
            "running_nodes": tenant["max_running_nodes"],
            "active_runs": tenant["max_active_runs"],
        },
        "default_running_nodes": state.default,
        "effective": {
            "running_nodes": fair.effective_limit(tenant["max_running_nodes"], state.default),
            "active_runs": tenant["max_active_runs"],
        },
        "use": {"running_nodes": running, "active_runs": active_runs, "waiting_nodes": waiting},
        "worker_slots": state.slots,
    }


def pool_use(tenant_id: int) -> list[dict]:
    """Each data source of the tenant with its cap and the nodes running / waiting on it."""
    sources = list(
        DataSource.objects.filter(tenant_id=tenant_id)
        .order_by("name")
        .values("pk", "name", "max_concurrency")
    )
    out = []
    for ds in sources:
        marker = f",{ds['pk']},"
        counts = NodeRun.objects.filter(
            tenant_id=tenant_id, status__in=(RUNNING, WAITING), pools__contains=marker
        ).aggregate(
            running=Count("pk", filter=Q(status=RUNNING)),
            waiting=Count("pk", filter=Q(status=WAITING, waiting_reason=WaitingReason.POOL)),
        )
        out.append(
            {
                "id": ds["pk"],
                "name": ds["name"],
                "max_concurrency": ds["max_concurrency"],
                "running": counts["running"],
                "waiting": counts["waiting"],
            }
        )
    return out
