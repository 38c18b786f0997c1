"""Pages of the O&M centre: dashboard, runs list and the live run page (thin views).

The run page is reachable only when the run's flow is visible to the user
(flows.selectors.flow_get); its action buttons follow flows.permissions.flow_rights().operate,
and the actions themselves go through the REST API, which checks the same rights again.
"""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.views import tenant_required
from flows import hooks, permissions
from flows import selectors as flow_selectors
from flows.views import node_type_catalog

from .choices import RUN_TERMINAL, NodeStatus, RunMode, RunStatus, RunTrigger, WaitingReason
from .dashboard import dashboard_stats
from .models import FlowRun
from .selectors import run_get
from .selectors import run_list as runs_visible


@tenant_required
@require_GET
def dashboard(request, *, ctx):
    """Flows and runs at a glance for the current tenant (public flows only for their owner)."""
    return render(request, "operations/dashboard.html", {"stats": dashboard_stats(ctx=ctx)})


@tenant_required
@require_GET
def run_list(request, *, ctx):
    """Runs with filters; the rows are read from /api/v1/runs/ by the page."""
    flows = list(flow_selectors.flow_list(ctx=ctx).order_by("name").values("id", "name"))
    selected_flow = request.GET.get("flow", "")
    if selected_flow and not any(str(f["id"]) == selected_flow for f in flows):
        selected_flow = ""
    return render(
        request,
        "operations/run_list.html",
        {
            "flows": flows,
            "flow_info": _flow_info(ctx, selected_flow) if selected_flow else None,
            "page_data": {
                "flows": flows,
                "zones": hooks.schedule_zones(flow_ids=[f["id"] for f in flows]),
                "statuses": RunStatus.choices,
                "modes": RunMode.choices,
                "triggers": RunTrigger.choices,
                "initial": {
                    "flow": selected_flow,
                    "status": request.GET.get("status", ""),
                    "mode": request.GET.get("mode", ""),
                    "trigger": request.GET.get("trigger", ""),
                },
            },
        },
    )


def _flow_info(ctx, flow_id) -> dict:
    """The O&M centre's "Task flow information": creator, owner, version, schedule and its state."""
    flow = flow_selectors.flow_get(ctx=ctx, flow_id=flow_id)
    summary = hooks.schedule_summary(flow=flow) or {"schedule": None, "state": None}
    return {"flow": flow, **summary, "rights": permissions.flow_rights(ctx, flow)}


def _run_graph(run: FlowRun) -> dict:
    """Nodes and edges of the version the run executed (its own snapshot for test runs)."""
    # run_list defers the snapshot column; reading it here costs one query for this one run.
    snap = run.snapshot or (run.version.snapshot if run.version_id else None) or {}
    nodes = [
        {
            "id": n.get("id"),
            "name": n.get("name"),
            "type": n.get("type"),
            "position": n.get("position") or {"x": 0, "y": 0},
            # The control fields, for the node's mark (older snapshots lack them: defaults).
            "trigger_rule": n.get("trigger_rule") or "all_success",
            "enabled": n.get("enabled", True) is not False,
        }
        for n in snap.get("nodes", [])
    ]
    edges = [
        {
            "upstream": e.get("upstream"),
            "downstream": e.get("downstream"),
            "branch": e.get("branch"),
        }
        for e in snap.get("edges", [])
    ]
    return {"nodes": nodes, "edges": edges}


def _parent_of(ctx, run: FlowRun) -> dict | None:
    """The run whose sub-flow or loop node started this one, as the page names it: its flow,
    the node and the loop's item. Only what the user may see (else just the run's id)."""
    if not run.parent_run_id:
        return None
    parent = runs_visible(ctx=ctx).filter(pk=run.parent_run_id).select_related("flow").first()
    if parent is None:
        return {"run": run.parent_run_id}
    node = (
        parent.node_runs.filter(pk=run.parent_node_run_id).values("node_name", "node_type").first()
        or {}
    )
    return {
        "run": parent.pk,
        "flow_name": parent.flow.name,
        "node_name": node.get("node_name"),
        "node_type": node.get("node_type"),
        "key": run.parent_key,
    }


@tenant_required
@require_GET
def run_detail(request, pk: int, *, ctx):
    """A run's DAG coloured by node status (live), its Gantt timeline, logs, outputs and actions."""
    # The API's selector: another tenant's run, or a run of a flow the user cannot see, is a 404.
    run = run_get(ctx=ctx, run_id=pk)
    flow = run.flow
    rights = permissions.flow_rights(ctx, flow)
    return render(
        request,
        "operations/run_detail.html",
        {
            "run": run,
            "flow": flow,
            "rights": rights,
            "page_data": {
                "run_id": run.pk,
                "flow_id": flow.pk,
                "can_operate": rights.operate,
                "graph": _run_graph(run),
                "parent": _parent_of(ctx, run),
                "type_labels": {t["type"]: t["label"] for t in node_type_catalog()},
                "modes": dict(RunMode.choices),
                "triggers": dict(RunTrigger.choices),
                "zone": hooks.schedule_zones(flow_ids=[flow.pk]).get(flow.pk),
                "terminal": sorted(RUN_TERMINAL),
                # How the page names node states and why a node waits (the choices' labels).
                "node_statuses": dict(NodeStatus.choices),
                "waiting_reasons": {k: v for k, v in WaitingReason.choices if k},
            },
        },
    )
