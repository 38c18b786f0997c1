"""Permission-aware reads of runs: visible to whoever may see the run's flow."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from accounts.selectors import TenantContext
from flows import permissions, timeline
from flows.models import TaskFlow

from .choices import OperationAction
from .models import FlowRun, NodeRun, OperationRecord

# Filters run_list understands, each mapped to its lookup.
RUN_FILTERS = {
    "flow": "flow_id",
    "status": "status",
    "mode": "mode",
    "trigger": "trigger",
    "business_time_after": "business_time__gte",
    "business_time_before": "business_time__lte",
    "triggered_by": "triggered_by_id",
    "batch": "batch",
}


def visible_flow_ids(ctx: TenantContext) -> QuerySet | None:
    """A subquery of the flows the user may see; None when they see all of the tenant's."""
    visible = permissions.visibility_filter(ctx)
    if visible is None:
        return None
    return TaskFlow.objects.filter(tenant=ctx.tenant).filter(visible).values("pk")


def run_list(*, ctx: TenantContext, filters: dict | None = None) -> QuerySet[FlowRun]:
    """Runs of the flows the user may see, newest first, in a constant number of queries."""
    qs = FlowRun.objects.filter(tenant=ctx.tenant)
    flows = visible_flow_ids(ctx)
    if flows is not None:
        qs = qs.filter(flow_id__in=flows)
    for key, value in (filters or {}).items():
        if value is not None and key in RUN_FILTERS:
            qs = qs.filter(**{RUN_FILTERS[key]: value})
    return qs.select_related("flow", "version", "triggered_by").defer("snapshot").order_by("-id")


def run_get(*, ctx: TenantContext, run_id, action: str = permissions.VIEW) -> FlowRun:
    """A run the user may see (else 404) and act on as `action` says (else 403)."""
    try:
        pk = int(run_id)
    except (TypeError, ValueError):
        raise Http404("No such run.") from None
    run = run_list(ctx=ctx).filter(pk=pk).first()
    if run is None:
        raise Http404("No such run.")
    check_flow_action(ctx, run.flow, action)
    return run


def check_flow_action(ctx: TenantContext, flow: TaskFlow, action: str) -> None:
    if action != permissions.VIEW and not permissions.flow_rights(ctx, flow).allows(action):
        raise PermissionDenied(f"You may not {action} runs of this task flow.")


def run_node_runs(*, run: FlowRun) -> QuerySet[NodeRun]:
    """The latest attempt of every node of a run (its `attempt` is the number of attempts)."""
    return (
        NodeRun.objects.filter(run=run, is_latest=True)
        .defer("log", "defer_state")
        .order_by("node_id")
    )


def node_run_list(*, ctx: TenantContext) -> QuerySet[NodeRun]:
    """Node runs of the runs the user may see."""
    qs = NodeRun.objects.filter(tenant=ctx.tenant)
    flows = visible_flow_ids(ctx)
    if flows is not None:
        qs = qs.filter(run__flow_id__in=flows)
    return qs.select_related("run")


def run_critical_path(*, run: FlowRun, node_runs) -> list[dict]:
    """The chain of nodes that determined a finished run's duration (empty while it runs)."""
    from operations.engine.core import critical_path
    from operations.plan import plan_of_run

    from .choices import RUN_TERMINAL

    if run.status not in RUN_TERMINAL:
        return []
    by_node = {nr.node_id: nr for nr in node_runs}
    timings = {n: (nr.started_at, nr.finished_at) for n, nr in by_node.items()}
    path = critical_path(plan_of_run(run).dag, timings)
    return [
        {
            "node": n,
            "node_name": by_node[n].node_name,
            "duration_s": round(
                (by_node[n].finished_at - by_node[n].started_at).total_seconds(), 3
            ),
        }
        for n in path
    ]


# --------------------------------------------------------------------------- audit trail

# How each O&M action's detail reads as the audit trail's field changes.
_DETAIL_FIELDS = ("status", "new_run", "node", "node_run", "nodes", "start", "end", "runs")


def _operation_entry(record: OperationRecord) -> dict:
    detail = record.detail or {}
    changes = []
    for key in _DETAIL_FIELDS:
        if key not in detail:
            continue
        value = detail[key]
        if key == "status" and isinstance(value, list) and len(value) == 2:
            changes.append({"field": "status", "old": value[0], "new": value[1]})
        else:
            changes.append({"field": key, "old": None, "new": value})
    if record.action == OperationAction.BULK:
        changes = [
            {"field": "action", "old": None, "new": detail.get("action")},
            {"field": "runs", "old": None, "new": detail.get("runs", [])},
            {"field": "done", "old": None, "new": detail.get("done", [])},
            {"field": "refused", "old": None, "new": detail.get("refused", {})},
        ]
        what = f"{detail.get('action')} of {len(detail.get('runs', []))} run(s)"
    elif record.run_id:
        what = (
            f"run {record.run_id} of {record.flow_name}"
            if record.flow_name
            else f"run {record.run_id}"
        )
    else:
        what = f"{len(detail.get('runs', []))} run(s) of {record.flow_name}"
    return {
        "_summary": _operation_summary(record),
        "user": record.user_id,
        "object_type": "run",
        "object_id": record.run_id,
        "object_repr": what,
        "flow": record.flow_id,
        "action": record.action,
        "reason": record.reason,
        "changes": changes,
    }


def _operation_summary(record: OperationRecord) -> str:
    """The action in words; the audit fills in {who} and {flow} (flows.timeline)."""
    d = record.detail or {}
    run = f"run #{record.run_id} of “{{flow}}”"
    nodes = d.get("nodes")
    if record.action == OperationAction.BULK:
        refused = d.get("refused", {})
        return (
            f"{{who}} asked to {d.get('action')} {len(d.get('runs', []))} run(s) at once: "
            f"{len(d.get('done', []))} done, {len(refused)} refused"
        )
    if record.action == OperationAction.BACKFILL:
        return (
            f"{{who}} backfilled {len(d.get('runs', []))} run(s) of “{{flow}}” "
            f"from {d.get('start')} to {d.get('end')}"
        )
    if record.action == OperationAction.RERUN:
        return f"{{who}} reran {run} as run #{d.get('new_run')}"
    if record.action == OperationAction.RESTORE:
        return f"{{who}} restored {run} ({nodes} node(s) rerun)"
    if record.action == OperationAction.RERUN_FROM:
        return f"{{who}} reran {run} from node “{d.get('node')}” ({nodes} node(s))"
    if record.action == OperationAction.MARK_SUCCESS:
        return f"{{who}} marked node “{d.get('node')}” succeeded in {run}"
    verb = {"stop": "stopped", "pause": "paused", "resume": "resumed"}.get(
        record.action, record.action
    )
    return f"{{who}} {verb} {run}"


def _operation_entries(ids: list[int]) -> dict[int, dict]:
    return {r.pk: _operation_entry(r) for r in OperationRecord.objects.filter(pk__in=ids)}


def operation_audit_sources(*, tenant_id: int) -> list[timeline.Source]:
    """The tenant's O&M actions as a source of its audit trail (flows.hooks.audit_sources)."""
    return [
        timeline.Source(
            "run",
            OperationRecord,
            Q(tenant_id=tenant_id),
            historical=False,
            entries=_operation_entries,
            flow_field="flow_id",  # a bulk request names no one flow: not under a flow filter
        )
    ]
