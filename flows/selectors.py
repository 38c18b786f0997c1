"""Permission-aware reads of flows: the only place that turns "who asks" into a queryset."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch, QuerySet
from django.http import Http404

from accounts.selectors import TenantContext

from . import dag, exporting, permissions, snapshot, timeline, variables
from .choices import PERM_OPERATE
from .models import DataSource, Edge, FlowVersion, TaskFlow, TaskFlowUserObjectPermission, TaskNode
from .parameters import as_text as parameter_text
from .secrets import references as secret_refs
from .secrets.selectors import available_names
from .services import validation

PREVIEW_RUN_ID = "<run id>"


def flow_list(*, ctx: TenantContext, filters: dict | None = None) -> QuerySet[TaskFlow]:
    """Flows of the tenant the user may see, in a constant number of queries."""
    qs = TaskFlow.objects.filter(tenant=ctx.tenant)
    visible = permissions.visibility_filter(ctx)
    if visible is not None:
        qs = qs.filter(visible)
    qs = permissions.annotate_stakeholder(qs, ctx.user.id)
    if filters:
        qs = qs.filter(**filters)
    # A list shows the published version's number, never its snapshot (which can be large).
    return qs.select_related("owner", "published_version").defer("published_version__snapshot")


def flow_get(
    *, ctx: TenantContext, flow_id, action: str = permissions.VIEW, lock: bool = False
) -> TaskFlow:
    """The flow if the user may see it (else 404) and do `action` on it (else 403)."""
    try:
        pk = int(flow_id)
    except (TypeError, ValueError):
        raise Http404("No such task flow.") from None
    qs = flow_list(ctx=ctx).filter(pk=pk)
    if lock:
        qs = qs.select_for_update(of=("self",))
    flow = qs.first()
    if flow is None:
        raise Http404("No such task flow.")
    if not permissions.flow_rights(ctx, flow).allows(action):
        raise PermissionDenied(f"You may not {action.replace('_', ' ')} this task flow.")
    return flow


# --------------------------------------------------------------------------- sub-resources


def flow_list_with_stakeholders(
    *, ctx: TenantContext, filters: dict | None = None
) -> QuerySet[TaskFlow]:
    """flow_list plus each flow's stakeholder grants prefetched (one more query per page)."""
    grants = TaskFlowUserObjectPermission.objects.filter(permission__codename=PERM_OPERATE).only(
        "id", "user_id", "content_object_id"
    )
    return flow_list(ctx=ctx, filters=filters).prefetch_related(
        Prefetch("taskflowuserobjectpermission_set", queryset=grants, to_attr="_stakeholder_grants")
    )


def stakeholders_of(flow: TaskFlow) -> list[int]:
    """Stakeholder user ids (owner excluded), from the prefetch when there is one."""
    grants = getattr(flow, "_stakeholder_grants", None)
    if grants is None:
        grants = TaskFlowUserObjectPermission.objects.filter(
            content_object_id=flow.pk, permission__codename=PERM_OPERATE
        ).only("user_id")
    return sorted({g.user_id for g in grants if g.user_id != flow.owner_id})


def node_list(*, ctx: TenantContext, flow_id, action: str = permissions.VIEW) -> QuerySet[TaskNode]:
    """Nodes of a flow the user may see (404/403 from flow_get)."""
    flow = flow_get(ctx=ctx, flow_id=flow_id, action=action)
    return TaskNode.objects.filter(flow=flow, tenant=ctx.tenant).select_related("flow")


def edge_list(*, ctx: TenantContext, flow_id, action: str = permissions.VIEW) -> QuerySet[Edge]:
    """Edges of a flow the user may see."""
    flow = flow_get(ctx=ctx, flow_id=flow_id, action=action)
    return Edge.objects.filter(flow=flow, tenant=ctx.tenant).select_related("flow")


def version_list(*, ctx: TenantContext, flow_id) -> QuerySet[FlowVersion]:
    """Published versions of a flow the user may see, newest first."""
    flow = flow_get(ctx=ctx, flow_id=flow_id)
    return FlowVersion.objects.filter(flow=flow, tenant=ctx.tenant).order_by("-number")


def version_get(*, ctx: TenantContext, flow_id, number) -> FlowVersion:
    try:
        number = int(number)
    except (TypeError, ValueError):
        raise Http404("No such version.") from None
    version = version_list(ctx=ctx, flow_id=flow_id).filter(number=number).first()
    if version is None:
        raise Http404("No such version.")
    return version


def version_diff(*, ctx: TenantContext, flow_id, number, against: str | None = "editing") -> dict:
    """What changed from version `number` to version `against` (a number) or the editing version."""
    version = version_get(ctx=ctx, flow_id=flow_id, number=number)
    if against in (None, "", "editing", "current"):
        other, label = snapshot.flow_snapshot(version.flow), "editing"
    else:
        try:
            other_version = version_get(ctx=ctx, flow_id=flow_id, number=int(against))
        except (ValueError, Http404):
            raise ValidationError(
                {"against": ["Give a version number of this flow or 'editing'."]}
            ) from None
        other, label = other_version.snapshot, other_version.number
    diff = snapshot.snapshot_diff(version.snapshot, other)
    return {"from": version.number, "to": label, "empty": snapshot.diff_is_empty(diff), **diff}


def flow_graph(*, flow: TaskFlow) -> dict:
    """The editing graph: {"nodes": [...], "edges": [...]} as model instances."""
    return {
        "nodes": list(flow.nodes.all().order_by("id")),
        "edges": list(flow.edges.all().order_by("id")),
    }


def flow_preview(*, flow: TaskFlow, business_time: datetime, node_id=None) -> dict:
    """Variables resolved for a business time and each node's configuration rendered with them."""
    try:
        return _flow_preview(flow=flow, business_time=business_time, node_id=node_id)
    except OverflowError:
        # bizdate (the day before) or a time variable's offset left the calendar (year 1-9999).
        raise ValidationError(
            {"business_time": ["Too close to year 1 or 9999: a variable would leave the calendar."]}
        ) from None


def _flow_preview(*, flow: TaskFlow, business_time: datetime, node_id=None) -> dict:
    nodes = list(flow.nodes.all().order_by("id"))
    if node_id is not None:
        nodes_by_id = {n.pk: n for n in nodes}
        if node_id not in nodes_by_id:
            raise ValidationError({"node": [f"No node {node_id} in this flow."]})
    pairs = list(flow.edges.values_list("upstream_id", "downstream_id"))
    upstream = dag.ancestors([n.pk for n in nodes], pairs)
    by_id = {n.pk: n for n in nodes}
    try:
        values = variables.resolve(
            flow.variables, business_time, flow_id=flow.pk, run_id=PREVIEW_RUN_ID
        )
    except variables.VariableError as exc:
        raise ValidationError({"variables": [exc.message]}) from None
    # Parameters preview as their defaults (a run may give others), else as ${name}.
    parameter_values = {
        d["name"]: (
            f"${{{d['name']}}}" if d.get("default") is None else parameter_text(d["default"])
        )
        for d in flow.parameters or []
        if isinstance(d, dict) and isinstance(d.get("name"), str)
    }
    # Secrets the flow may use preview as ***; they are resolved only in the worker.
    secrets = secret_refs.masked(available_names(tenant_id=flow.tenant_id, flow_id=flow.pk))
    rendered = []
    for node in nodes:
        if node_id is not None and node.pk != node_id:
            continue
        outputs = set()
        for pk in upstream.get(node.pk, ()):
            outputs |= set(validation.safe_output_names(by_id[pk].type, by_id[pk].config))
        # Upstream outputs are only known at run time: they stay as ${name} placeholders.
        try:
            node_values = variables.resolve(
                flow.variables,
                business_time,
                flow_id=flow.pk,
                run_id=PREVIEW_RUN_ID,
                outputs={name: f"${{{name}}}" for name in outputs},
                node_definitions=node.variables,
                parameters=parameter_values,
            )
        except variables.VariableError as exc:
            raise ValidationError({"variables": [f"{node.name}: {exc.message}"]}) from None
        node_values.update(secrets)
        missing = sorted(variables.find_references(node.config) - node_values.keys())
        config = variables.render_config(
            node.config, {**node_values, **{m: f"${{{m}}}" for m in missing}}
        )
        rendered.append(
            {
                "id": node.pk,
                "name": node.name,
                "type": node.type,
                "config": config,
                "undefined": missing,
                "upstream_outputs": sorted(outputs),
            }
        )
    return {"business_time": business_time, "variables": values, "nodes": rendered}


def flow_export(*, flow: TaskFlow) -> dict:
    """The flow as a portable document: data sources and flows by name, never ids or secrets."""

    def names_of(kind: str, ids) -> dict:
        pks = [int(i) for i in ids if str(i).isdigit()]
        model = DataSource if kind == "datasources" else TaskFlow
        return dict(
            model.objects.filter(tenant_id=flow.tenant_id, pk__in=pks).values_list("pk", "name")
        )

    return exporting.flow_document(flow, names_of=names_of)


def flow_history(*, flow: TaskFlow, user_id=None, since=None, until=None) -> tuple[QuerySet, list]:
    """The flow's audit timeline as a paginatable queryset of rows, and its sources."""
    sources = timeline.flow_sources(flow)
    return timeline.timeline_queryset(sources, user_id=user_id, since=since, until=until), sources


def tenant_audit(
    *, ctx: TenantContext, user_id=None, since=None, until=None, object_types=None, flow_id=None
):
    """The tenant-wide audit timeline; tenant admins and auditors only."""
    if not ctx.can_read_audit:
        raise PermissionDenied("Only tenant admins and auditors read the tenant's audit trail.")
    sources = timeline.tenant_sources(ctx.tenant.pk)
    qs = timeline.timeline_queryset(
        sources,
        user_id=user_id,
        since=since,
        until=until,
        object_types=object_types,
        flow_id=flow_id,
    )
    return qs, sources
