"""Creating runs: test runs, time ranges (a batch started `parallelism` at a time), scheduled runs.

The concurrency policy is applied when a run joins the flow's active runs ("activation"),
under the flow's row lock, so many simultaneous triggers line up one by one; time-range
runs activate when their turn in the batch comes.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.db import insert_rows
from flows import hooks
from flows.choices import ConcurrencyPolicy
from flows.models import FlowVersion, TaskFlow
from flows.parameters import run_values
from operations import dispatch
from operations.choices import (
    GATING_POLICIES,
    RUN_ACTIVE,
    EventKind,
    NodeStatus,
    OperationAction,
    RunMode,
    RunStatus,
    RunTrigger,
    WaitingReason,
)
from operations.engine import core, fair
from operations.engine.core import NOT_QUEUED
from operations.models import FlowRun, NodeRun
from operations.plan import Plan, SnapshotError, parse_snapshot, plans_for_versions, seed_plan

from . import decisions, slots
from .audit import clean_reason, operation_record
from .deadlines import run_deadline
from .locking import lock_flow, lock_flows_to_fire, lock_run, lock_tenant_runs
from .logs import event, event_row

MAX_PARALLELISM = 32
ORDERS = ("asc", "desc")


# --------------------------------------------------------------------------- creation


def _editing_snapshot(flow: TaskFlow) -> dict:
    from flows.snapshot import flow_snapshot

    return flow_snapshot(flow)


# What a request may name as the version to run, besides a version number.
VERSION_DRAFT = "draft"
VERSION_PUBLISHED = "published"


def run_version(*, flow: TaskFlow, mode: str, version=None) -> FlowVersion | None:
    """The published version a new run executes, or None for the editing draft.

    Without `version`: try and dry runs run the draft (as the canvas shows it);
    point-in-time and time-range runs run the latest published version when there is one.
    A version that does not exist is a 400 naming `version`.
    """
    if version is None or version == "":
        if mode in (RunMode.TRY, RunMode.DRY):
            return None
        version = VERSION_PUBLISHED if flow.published_version_id else VERSION_DRAFT
    if version == VERSION_DRAFT:
        return None
    if version == VERSION_PUBLISHED:
        if flow.published_version_id is None:
            raise ValidationError(
                {"version": ["The flow has no published version: publish it, or run the draft."]}
            )
        return FlowVersion.objects.get(pk=flow.published_version_id)
    number = version
    if isinstance(number, str) and number.strip().isdigit():
        number = int(number.strip())
    if isinstance(number, bool) or not isinstance(number, int):
        raise ValidationError(
            {"version": ['Give "draft", "published" or a published version number.']}
        )
    found = FlowVersion.objects.filter(flow=flow, number=number).first()
    if found is None:
        raise ValidationError({"version": [f"The flow has no version {number}."]})
    return found


def check_runnable(snapshot: dict) -> Plan:
    """The snapshot's plan; a 400 naming the flow when it cannot run."""
    try:
        plan = parse_snapshot(snapshot)
    except SnapshotError as exc:
        raise ValidationError({"flow": [f"The flow cannot run: {exc}."]}) from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError({"flow": ["The flow's definition is not runnable."]}) from exc
    if not plan.nodes:
        raise ValidationError({"flow": ["The flow has no nodes to run: add a node first."]})
    return plan


def _build(
    *,
    flow: TaskFlow,
    mode: str,
    trigger: str,
    business_time: datetime,
    plan: Plan,
    user=None,
    version: FlowVersion | None = None,
    snapshot: dict | None = None,
    fire_time: datetime | None = None,
    batch: uuid.UUID | None = None,
    batch_index: int | None = None,
    parallelism: int = 1,
    scope: set | None = None,
    parameters: dict | None = None,
    parent: tuple | None = None,
) -> tuple[FlowRun, list[NodeRun]]:
    """A run and one pending node run per node, not saved yet (not active); in a node-scoped
    run (`scope`), the nodes outside it are not_run from the start.

    `parameters` are the run's values, validated and coerced against what the plan's
    version declares (here, for every kind of run); None takes the defaults (scheduled
    runs). A problem is a 400 naming `parameters.<name>`.
    """
    values = run_parameters(plan, parameters)
    run = FlowRun(
        tenant_id=flow.tenant_id,
        flow=flow,
        version=version,
        snapshot=None if version is not None else snapshot,
        parameters=values,
        mode=mode,
        trigger=trigger,
        business_time=business_time,
        fire_time=fire_time,
        triggered_by=user if getattr(user, "is_authenticated", False) else None,
        error_policy=plan.error_policy or flow.error_policy,
        concurrency_policy=plan.concurrency_policy or flow.concurrency_policy,
        batch=batch,
        batch_index=batch_index,
        parallelism=parallelism,
        nodes_total=len(plan.nodes),
        nodes_open=len(plan.nodes) if scope is None else len(scope),
        node_scope=None if scope is None else sorted(scope),
        parent_run_id=parent[0] if parent else None,
        parent_node_run_id=parent[1] if parent else None,
        parent_key=parent[2] if parent else "",
        deadline_at=run_deadline(
            mode=mode, plan=plan, business_time=business_time, fire_time=fire_time
        ),
    )
    nodes = [
        NodeRun(tenant_id=flow.tenant_id, node_id=spec.id, node_name=spec.name, node_type=spec.type)
        for spec in plan.nodes.values()
    ]
    if scope is not None:
        now = timezone.now()
        for node in nodes:
            if node.node_id not in scope:
                node.status, node.finished_at = NodeStatus.NOT_RUN, now
    return run, nodes


def run_parameters(plan: Plan, parameters: dict | None) -> dict:
    """A run's parameter values against the plan's declarations (flows.parameters.run_values);
    a ValidationError naming `parameters.<name>` for each problem."""
    values, problems = run_values(plan.parameters, parameters)
    if problems:
        raise ValidationError({key: [message] for key, message in problems.items()})
    return values


def _created_message(run: FlowRun) -> str:
    return f"{run.get_mode_display()} ({run.trigger})."


def _create(*, flow: TaskFlow, plan: Plan, user=None, **fields) -> FlowRun:
    """Insert a run and one pending node run per node (not yet active)."""
    run, nodes = _build(flow=flow, plan=plan, user=user, **fields)
    run.save()
    for node in nodes:
        node.run = run
    # Node runs are operational records (no history), so one INSERT for a 1,000-node flow.
    NodeRun.objects.bulk_create(nodes, batch_size=500)
    event(run, EventKind.RUN_CREATED, _created_message(run), user=user)
    # This process decides the run's first step next: spare it a reload of the snapshot.
    seed_plan(run, plan)
    return run


def _active(runs):
    """The runs that joined their flow's active runs and are not finished."""
    return runs.filter(activated_at__isnull=False, status__in=RUN_ACTIVE)


def _active_runs(flow_id: int, exclude_pk: int | None = None):
    runs = _active(FlowRun.objects.filter(flow_id=flow_id))
    if exclude_pk is not None:
        runs = runs.exclude(pk=exclude_pk)
    return runs.order_by("-activated_at", "-id")


def _activate(run: FlowRun) -> FlowRun:
    """Apply the concurrency policy and queue the first nodes (caller holds the flow lock)."""
    active = _active_runs(run.flow_id, run.pk)
    policy = run.concurrency_policy
    if policy == ConcurrencyPolicy.SKIP:
        # Runs of one time range do not skip each other: their parallelism says how many
        # overlap; nor do the item runs of one loop node (its max_parallel does).
        if run.batch:
            active = active.exclude(batch=run.batch)
        if run.parent_node_run_id:
            active = active.exclude(parent_node_run_id=run.parent_node_run_id)
        blocker = active.first()
        if blocker is not None:
            return _skip(run, f"Skipped: run {blocker.pk} of this flow was still {blocker.status}.")
    elif policy in GATING_POLICIES:
        previous = active.first()
        if previous is not None:
            # Lock it: its finishing nodes must see this run as a successor, or we see them.
            previous = lock_run(previous.pk)
            if not previous.has_successors:
                previous.has_successors = True
                previous.save(update_fields=["has_successors"])
            run.previous_run = previous
    run.activated_at = timezone.now()
    run.save(update_fields=["previous_run", "activated_at"])
    # Created in this transaction, so no one else can see (or lock) the row yet.
    decisions.decide_full(run)
    return run


def _run_limit_reached(tenant_id: int, *, extra: int = 0) -> bool:
    """Whether the tenant's active runs (plus `extra` about to join) reach its limit.

    Counted under the tenant's run lock with the limit as it is now, so two runs created
    at once for different flows cannot both take the last place (the cached state only
    says whether the tenant has a limit at all; one set in the last
    TRIBUTARY_FAIR_REFRESH_SECONDS by another process applies from the next read).
    """
    from accounts.models import Tenant

    if tenant_id not in slots.fair_state().run_limits:
        return False
    lock_tenant_runs(tenant_id)
    limit = Tenant.objects.filter(pk=tenant_id).values_list("max_active_runs", flat=True).first()
    if limit is None:
        return False
    return _active(FlowRun.objects.filter(tenant_id=tenant_id)).count() + extra >= limit


def _hold(run: FlowRun) -> FlowRun:
    """A run over its tenant's active-run limit waits, queued and not activated, until
    `runs_admit` lets it join (its nodes stay pending)."""
    event(run, EventKind.RUN_CREATED, "Waiting: the tenant's limit of active runs is reached.")
    return run


def runs_admit(tenant_id: int) -> int:
    """Activate the tenant's runs that wait for its active-run limit, best first (scheduled,
    manual, backfill; oldest first); then let its time ranges go on. The number activated."""

    slots.fair_state(fresh=True)  # a limit set or removed a moment ago counts here
    held = list(
        FlowRun.objects.filter(
            tenant_id=tenant_id,
            activated_at__isnull=True,
            batch__isnull=True,
            status=RunStatus.QUEUED,
        ).values_list("pk", "flow_id", "mode", "created_at")
    )
    held.sort(key=lambda r: (fair.rank(r[2]), r[3], r[0]))
    activated = 0
    for pk, flow_id, _mode, _at in held:
        with transaction.atomic():
            lock_flow(flow_id)
            if _run_limit_reached(tenant_id):
                break
            run = lock_run(pk)
            if run is None or run.activated_at is not None or run.status != RunStatus.QUEUED:
                continue
            _activate(run)
            activated += 1
    for batch in (
        FlowRun.objects.filter(
            tenant_id=tenant_id,
            activated_at__isnull=True,
            batch__isnull=False,
            status=RunStatus.QUEUED,
        )
        .order_by()
        .values_list("batch", flat=True)
        .distinct()
    ):
        activated += batch_advance(batch)
    return activated


def runs_waiting_tenants() -> list[int]:
    """Tenants with an active-run limit and runs waiting for it (the watchdog's safety net)."""
    return [
        tenant_id
        for tenant_id in slots.fair_state(fresh=True).run_limits
        if FlowRun.objects.filter(
            tenant_id=tenant_id, status=RunStatus.QUEUED, activated_at__isnull=True
        ).exists()
    ]


def run_create(*, flow: TaskFlow, plan: Plan, user=None, **fields) -> FlowRun:
    """Create a run and let it join its flow's active runs now (in the caller's transaction)."""
    run = _create(flow=flow, plan=plan, user=user, **fields)
    lock_flow(flow.pk)
    if _run_limit_reached(flow.tenant_id):
        return _hold(run)
    return _activate(run)


def _skip(run: FlowRun, reason: str) -> FlowRun:
    now = timezone.now()
    NodeRun.objects.filter(run=run, status__in=NOT_QUEUED).update(
        status=NodeStatus.SKIPPED, finished_at=now
    )
    run.status = RunStatus.SKIPPED
    run.skip_reason = reason
    run.activated_at = now
    run.finished_at = now
    run.nodes_open = 0
    run.save(update_fields=["status", "skip_reason", "activated_at", "finished_at", "nodes_open"])
    event(run, EventKind.RUN_SKIPPED, reason)
    if run.batch:
        dispatch.send_run_task("batch_advance", str(run.batch))
    return run


def _parse_parallelism(value) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError({"parallelism": ["Give a whole number from 1 to 32."]}) from None
    if not 1 <= number <= MAX_PARALLELISM:
        raise ValidationError({"parallelism": [f"Must be between 1 and {MAX_PARALLELISM}."]})
    return number


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValidationError({field: ["Give a date and time (ISO 8601)."]})
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


def run_start(
    *,
    flow: TaskFlow,
    mode: str,
    user,
    business_time: datetime | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    parallelism: int = 1,
    order: str = "asc",
    trigger: str | None = None,
    nodes: list | None = None,
    from_node: int | None = None,
    version=None,
    parameters: dict | None = None,
    reason: str | None = "",
    parent: tuple | None = None,
    start_nodes: list | None = None,
    include_downstream: bool = True,
    only: str = "all",
    plan_only: bool = False,
    downstream_flows: bool = False,
    ctx=None,
) -> FlowRun | list[FlowRun] | dict:
    """Start a run of the draft or a published version (`run_version`); a time range
    returns its runs. `parameters`: the values a person or an integration gives (a
    required parameter without a default must be among them).

    `nodes` (ids) or `from_node` (an id: it and its downstream) make a try run of those
    nodes only (the others are not_run; dependency checks pass without checking).
    `start_nodes` (ids) make each run of a time range run those nodes and, with
    `include_downstream` (the default), everything downstream of them; the others are
    not_run (a backfill's dependency checks still check). `only` picks the fire times
    (backfill.select_times); `downstream_flows` also backfills the flows whose dependency
    checks wait for this one, on the same dates, each date in dependency order (one batch:
    at the default parallelism of 1 a date's dependent runs start after this flow's run of
    that date); the user (`ctx`) must be allowed to run each of them (a 403 naming those it
    may not). `plan_only` answers the plan ({"count", "runs"}) and creates nothing.

    A time range (a backfill) is an O&M action: the audit trail records it with `reason`.
    """
    reason = clean_reason(reason)
    if mode not in (RunMode.TRY, RunMode.DRY, RunMode.POINT_IN_TIME, RunMode.TIME_RANGE):
        raise ValidationError(
            {"mode": [f"Unknown mode {mode!r}: use try, dry, point_in_time or time_range."]}
        )
    parallelism = _parse_parallelism(parallelism)
    if order not in ORDERS:
        raise ValidationError({"order": ["Use asc (oldest first) or desc (newest first)."]})
    business_time = _aware(business_time, "business_time")
    start, end = _aware(start, "start"), _aware(end, "end")

    if mode == RunMode.POINT_IN_TIME and business_time is None:
        raise ValidationError({"business_time": ["A point-in-time run needs a business time."]})
    times: list[datetime] = []
    if mode == RunMode.TIME_RANGE:
        if start is None:
            raise ValidationError({"start": ["A time-range run needs a start."]})
        if end is None:
            raise ValidationError({"end": ["A time-range run needs an end."]})
        # The schedule's calendar is scheduling's: it answers through flows.hooks.
        times = hooks.fire_times_in_range(flow=flow, start=start, end=end)
        if order == "desc":
            times.reverse()
    elif mode in (RunMode.TRY, RunMode.DRY):
        business_time = business_time or timezone.now()

    chosen = run_version(flow=flow, mode=mode, version=version)
    if chosen is None:
        snapshot = _editing_snapshot(flow)
        plan = check_runnable(snapshot)
    else:
        snapshot = None
        plan = check_runnable(chosen.snapshot)
    scope = _node_scope(
        plan,
        mode=mode,
        nodes=nodes,
        from_node=from_node,
        start_nodes=start_nodes,
        include_downstream=include_downstream,
    )
    trigger = trigger or (RunTrigger.BACKFILL if mode == RunMode.TIME_RANGE else RunTrigger.MANUAL)
    parameters = {} if parameters is None else parameters
    run_parameters(plan, parameters)  # refused before anything is written, even for 0 runs

    if mode == RunMode.TIME_RANGE:
        units = _backfill_units(
            flow=flow,
            version=chosen,
            snapshot=snapshot,
            plan=plan,
            scope=scope,
            parameters=parameters,
            times=times,
            start=start,
            end=end,
            only=only,
            downstream_flows=downstream_flows,
            ctx=ctx,
        )
        items = _backfill_order(flow, units, times)
        if plan_only:
            return _backfill_plan(items)
        return _backfill_create(
            items,
            units=units,
            user=user,
            trigger=trigger,
            parallelism=parallelism,
            reason=reason,
            start=start,
            end=end,
        )
    for field, given in (
        ("only", only != "all"),
        ("plan_only", plan_only),
        ("downstream_flows", downstream_flows),
    ):
        if given:
            raise ValidationError({field: ["Only a time-range run (a backfill) takes this."]})

    with transaction.atomic():
        lock_flow(flow.pk)
        pending: list = []
        fields = dict(
            flow=flow,
            mode=mode,
            trigger=trigger,
            business_time=business_time,
            user=user,
            version=chosen,
            snapshot=snapshot,
            plan=plan,
            parameters=parameters,
        )
        if scope is not None:
            fields["scope"] = scope
        if parent is not None:
            # A sub-flow's child: (parent run, parent node run, key) (services.subflows).
            fields["parent"] = parent
        now = timezone.now()
        run = _start(fields, busy=_active_runs(flow.pk).exists(), pending=pending, now=now)
        _insert_activated(pending, now)
        return run


# --------------------------------------------------------------------------- backfills


def _backfill_units(
    *,
    flow,
    version,
    snapshot,
    plan,
    scope,
    parameters,
    times,
    start,
    end,
    only,
    downstream_flows,
    ctx,
) -> list[dict]:
    """One unit per flow a backfill runs: this flow, then (`downstream_flows`) the flows that
    depend on it, in dependency order, each with its version, plan, scope and times."""
    from flows import permissions

    from . import backfill

    times = backfill.select_times(flow=flow, version=version, times=times, only=only)
    units = [
        dict(
            flow=flow,
            version=version,
            snapshot=snapshot,
            plan=plan,
            scope=scope,
            parameters=parameters,
            times=times,
        )
    ]
    if not downstream_flows:
        return units
    dependants = backfill.dependent_flows(flow)
    refused = [
        f
        for f in dependants
        if ctx is None or not permissions.flow_rights(ctx, f).allows(permissions.OPERATE)
    ]
    if refused:
        names = ", ".join(
            f.name
            if ctx is not None and permissions.flow_rights(ctx, f).allows(permissions.VIEW)
            else f"flow {f.pk}"
            for f in refused
        )
        raise PermissionDenied(f"downstream_flows: you may not run these dependent flows: {names}.")
    for dependant in dependants:
        chosen = run_version(flow=dependant, mode=RunMode.TIME_RANGE)
        dsnapshot = _editing_snapshot(dependant) if chosen is None else None
        dplan = check_runnable(dsnapshot if chosen is None else chosen.snapshot)
        units.append(
            dict(
                flow=dependant,
                version=chosen,
                snapshot=dsnapshot,
                plan=dplan,
                scope=None,
                parameters={},
                times=backfill.same_dates(
                    root=flow, flow=dependant, times=times, start=start, end=end
                ),
            )
        )
    for unit in units[1:]:
        run_parameters(unit["plan"], unit["parameters"])
    return units


def _backfill_order(root: TaskFlow, units: list[dict], times: list) -> list[tuple[dict, datetime]]:
    """(unit, business time) in the order the runs start: the root's order of dates, and on
    each date the flows in dependency order."""
    from . import backfill

    if len(units) == 1:
        return [(units[0], at) for at in units[0]["times"]]
    day = backfill.date_key(root)
    rank: dict = {}
    for at in units[0]["times"]:
        rank.setdefault(day(at), len(rank))
    items = [
        (rank.get(day(at), len(rank)), position, at, unit)
        for position, unit in enumerate(units)
        for at in unit["times"]
    ]
    items.sort(key=lambda item: (item[0], item[1], item[2]))
    return [(unit, at) for _, _, at, unit in items]


def _backfill_plan(items) -> dict:
    runs = []
    for unit, at in items:
        plan, scope = unit["plan"], unit["scope"]
        runs.append(
            {
                "flow": unit["flow"].pk,
                "flow_name": unit["flow"].name,
                "version": None if unit["version"] is None else unit["version"].number,
                "business_time": at,
                "nodes": [
                    spec.name for spec in plan.nodes.values() if scope is None or spec.id in scope
                ],
            }
        )
    return {"count": len(runs), "runs": runs}


def _backfill_create(items, *, units, user, trigger, parallelism, reason, start, end):
    """The backfill's runs, one batch started `parallelism` at a time, in `items` order;
    one O&M record per flow."""
    with transaction.atomic():
        batch = uuid.uuid4()
        for index, (unit, at) in enumerate(items):
            _create(
                flow=unit["flow"],
                mode=RunMode.TIME_RANGE,
                trigger=trigger,
                business_time=at,
                user=user,
                version=unit["version"],
                snapshot=unit["snapshot"],
                batch=batch,
                batch_index=index,
                parallelism=parallelism,
                plan=unit["plan"],
                parameters=unit["parameters"],
                scope=unit["scope"],
            )
        _lock_batch_flows(batch, [unit["flow"].pk for unit in units])
        _batch_fill(batch)
        runs = list(FlowRun.objects.filter(batch=batch).order_by("batch_index"))
        root = units[0]["flow"]
        for unit in units:
            detail = {
                "runs": [r.pk for r in runs if r.flow_id == unit["flow"].pk],
                "start": start.isoformat(),
                "end": end.isoformat(),
                "batch": str(batch),
            }
            if unit["flow"].pk != root.pk:
                detail["cascade_from"] = root.pk
            operation_record(
                action=OperationAction.BACKFILL,
                user=user,
                flow=unit["flow"],
                reason=reason,
                detail=detail,
            )
    return runs


def _lock_batch_flows(batch, flow_ids=None) -> None:
    """Lock the flows of a batch (a cascading backfill spans several) in primary-key order."""
    if flow_ids is None:
        flow_ids = FlowRun.objects.filter(batch=batch).values_list("flow_id", flat=True)
    for flow_id in sorted(set(flow_ids)):
        lock_flow(flow_id)


def _node_scope(
    plan: Plan, *, mode: str, nodes, from_node, start_nodes=None, include_downstream=True
) -> set | None:
    """The nodes a node-scoped run runs, or None; a 400 naming the field otherwise.

    A try run takes `nodes` or `from_node`; a time range (a backfill) takes `start_nodes`
    (with their downstream unless `include_downstream` is false)."""
    if nodes is None and from_node is None and start_nodes is None:
        return None
    if start_nodes is not None:
        field, wanted = "start_nodes", list(start_nodes)
        if mode != RunMode.TIME_RANGE:
            raise ValidationError(
                {field: ["Only a time-range run starts from chosen nodes (try: nodes)."]}
            )
        if nodes is not None or from_node is not None:
            raise ValidationError({field: ["Give start_nodes alone, without nodes or from_node."]})
    else:
        field = "nodes" if nodes is not None else "from_node"
        if nodes is not None and from_node is not None:
            raise ValidationError({"from_node": ["Give nodes or from_node, not both."]})
        if mode != RunMode.TRY:
            raise ValidationError(
                {field: ["Only a try run can run some nodes of a flow (backfill: start_nodes)."]}
            )
        wanted = list(nodes) if nodes is not None else [from_node]
    if not wanted:
        raise ValidationError({field: ["Name at least one node."]})
    unknown = [n for n in wanted if n not in plan.nodes]
    if unknown:
        raise ValidationError(
            {field: [f"No node {', '.join(map(str, unknown))} in the version this run executes."]}
        )
    if start_nodes is not None:
        if include_downstream:
            return core.scope_of(plan.dag, from_nodes=wanted)
        return core.scope_of(plan.dag, nodes=wanted)
    if nodes is not None:
        return core.scope_of(plan.dag, nodes=nodes)
    return core.scope_of(plan.dag, from_node=from_node)


def _batch_fill(batch) -> int:
    """Activate the batch's next runs until `parallelism` of them are active (its flows locked)."""
    activated = 0
    # At most `parallelism` (<= MAX_PARALLELISM) of them start now: lock only those, not
    # every waiting run of a 500-run backfill each time one of its runs ends.
    waiting = list(
        FlowRun.objects.select_for_update()
        .filter(batch=batch, activated_at__isnull=True, status=RunStatus.QUEUED)
        .order_by("batch_index")[:MAX_PARALLELISM]
    )
    if not waiting:
        return 0
    parallelism = waiting[0].parallelism
    active = FlowRun.objects.filter(
        batch=batch, activated_at__isnull=False, status__in=RUN_ACTIVE
    ).count()
    for run in waiting:
        if active >= parallelism or _run_limit_reached(run.tenant_id):
            break
        run = _activate(run)
        activated += 1
        if run.status in RUN_ACTIVE:
            active += 1
    return activated


def batch_advance(batch) -> int:
    """A run of a time range finished: start the next ones (the `batch_advance` task)."""
    flow_ids = set(FlowRun.objects.filter(batch=batch).values_list("flow_id", flat=True))
    if not flow_ids:
        return 0
    with transaction.atomic():
        _lock_batch_flows(batch, flow_ids)
        return _batch_fill(batch)


def run_create_scheduled(*, flow_id: int, fire_time: datetime) -> FlowRun | None:
    """The scheduled run of the latest published version for a fire time, exactly once.

    None when the flow is gone, unpublished or frozen, or the fire time already has its run.
    """
    try:
        with transaction.atomic():
            return runs_create_scheduled(items=[(flow_id, fire_time)]).get((flow_id, fire_time))
    except IntegrityError:
        # Without row locks (SQLite) the unique (flow, fire_time) constraint decides.
        return None


def runs_create_scheduled(*, items: list[tuple[int, datetime]]) -> dict:
    """Scheduled runs for many (flow, fire time) pairs at once: beat's wake-up of a minute.

    Same rules as `run_create_scheduled`, one pair at a time in flow order under the
    flows' row locks, but a run that joins no active run of its flow (the usual case) is
    inserted already activated, with its first nodes queued, in a few bulk statements.
    Returns {(flow_id, fire_time): run} for the runs it created. Runs in the caller's
    transaction; its nodes are sent when that commits.
    """
    from flows.choices import FlowStatus

    if not items:
        return {}
    flows = lock_flows_to_fire({flow_id for flow_id, _ in items})
    flows = {
        pk: flow
        for pk, flow in flows.items()
        if flow.status == FlowStatus.PUBLISHED
        and not flow.is_frozen
        and flow.published_version_id is not None
    }
    if not flows:
        return {}
    times = {t for _, t in items}
    taken = {
        (flow_id, t.timestamp())
        for flow_id, t in FlowRun.objects.filter(
            flow_id__in=list(flows), fire_time__in=list(times)
        ).values_list("flow_id", "fire_time")
    }
    busy = set(
        _active(FlowRun.objects.filter(flow_id__in=list(flows))).values_list("flow_id", flat=True)
    )
    plans = plans_for_versions([flow.published_version for flow in flows.values()])
    now = timezone.now()
    created: dict = {}
    fresh: list[tuple[FlowRun, list[NodeRun], Plan, list[int]]] = []
    for flow_id, fire_time in sorted(items, key=lambda item: (item[0], item[1])):
        flow = flows.get(flow_id)
        plan = plans.get(flow.published_version_id) if flow is not None else None
        if plan is None or not plan.nodes or (flow_id, fire_time.timestamp()) in taken:
            continue
        taken.add((flow_id, fire_time.timestamp()))
        fields = dict(
            flow=flow,
            mode=RunMode.SCHEDULED,
            trigger=RunTrigger.SCHEDULE,
            business_time=fire_time,
            version=flow.published_version,
            fire_time=fire_time,
            plan=plan,
        )
        created[(flow_id, fire_time)] = _start(fields, busy=flow_id in busy, pending=fresh, now=now)
        busy.add(flow_id)
    # Beat's wake-up waits for nothing but the runs: their first nodes leave through a relay.
    _insert_activated(fresh, now, relay=True)
    return created


def _start(fields: dict, *, busy: bool, pending: list, now: datetime) -> FlowRun:
    """Create a run and let it join its flow's active runs (caller holds the flow's lock).

    A run that joins no active run of its flow (`busy` false), and whose first step only
    queues nodes, goes to `pending`: inserted by `_insert_activated`, already activated
    with its first nodes queued, by the caller (in bulk). Any other run goes through the
    concurrency policy now (`_activate`), after the flow's pending runs are inserted so
    that the policy sees them.
    """
    run, nodes = _build(**fields)
    tenant_id = fields["flow"].tenant_id
    if _run_limit_reached(tenant_id, extra=sum(1 for p in pending if p[0].tenant_id == tenant_id)):
        return _hold(_create(**fields))
    # A node-scoped run's first step is not the whole flow's: decided in full.
    first = fields["plan"].first_step(run.error_policy) if run.node_scope is None else None
    if busy or first is None:
        flow_id = fields["flow"].pk
        if any(waiting.flow_id == flow_id for waiting, _, _, _ in pending):
            _insert_activated(pending, now)
            pending.clear()
        return _activate(_create(**fields))
    run.activated_at = now
    pending.append((run, nodes, fields["plan"], first))
    return run


def _insert_activated(fresh: list, now: datetime, *, relay: bool = False) -> None:
    """Insert new runs with their first nodes already queued, and send those after commit.

    What `_create` + `_activate` do for a run joining no active run of its flow: the
    decision core's first step over an all-pending run only queues nodes (Plan.first_step).
    With `relay`, the node messages leave through one relay message (dispatch).
    """
    if not fresh:
        return
    insert_rows([run for run, _, _, _ in fresh])
    rows = []
    # Fair share: of the tenants' first nodes, those beyond what the tenant may still
    # start wait for admission (slots.queue_allowance) instead of crowding the broker.
    allowance: dict = {}
    for run, _, _, first in fresh:
        allowance.setdefault(run.tenant_id, [0, ""])[0] += len(first)
    for tenant_id, entry in allowance.items():
        entry[0], entry[1] = slots.queue_allowance(tenant_id, entry[0])
    for run, nodes, _, first in fresh:
        ready = set(first)
        entry = allowance[run.tenant_id]
        for node in nodes:
            node.run = run
            if node.node_id not in ready:
                continue
            if entry[0] > 0:
                node.status, node.queued_at = NodeStatus.QUEUED, now
                entry[0] -= 1
            else:
                node.status = NodeStatus.WAITING
                node.waiting_reason = WaitingReason.TENANT_LIMIT
                node.waiting_detail = entry[1]
        rows += nodes
    insert_rows(rows)
    insert_rows(
        [
            event_row(run, EventKind.RUN_CREATED, _created_message(run), user=run.triggered_by)
            for run, _, _, _ in fresh
        ]
    )
    ids = {
        (node.run_id, node.node_id): node.pk for node in rows if node.status == NodeStatus.QUEUED
    }
    sends = []
    for run, _, plan, first in fresh:
        seed_plan(run, plan)
        sends += [
            (ids[(run.pk, n)], now, None, plan.nodes[n].timeout)
            for n in first
            if (run.pk, n) in ids
        ]
    (dispatch.send_nodes_relayed if relay else dispatch.send_nodes)(sends)
