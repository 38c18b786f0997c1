"""Data source reads: the tenant-scoped queryset every reader uses, who may manage them,
which nodes use one, and its audit trail. Nothing here reads a password.
"""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.selectors import TenantContext
from flows.models import DataSource, FlowVersion, TaskFlow, TaskNode


def data_source_list(*, ctx: TenantContext) -> QuerySet[DataSource]:
    """Data sources of the request's tenant (every member may list them; no secret is read)."""
    return DataSource.objects.filter(tenant=ctx.tenant).defer("password_encrypted")


def data_source_get(*, ctx: TenantContext, datasource_id) -> DataSource | None:
    """One data source of the tenant, or None (unknown and foreign ids alike)."""
    try:
        pk = int(datasource_id)
    except (TypeError, ValueError):
        return None
    return DataSource.objects.filter(tenant=ctx.tenant, pk=pk).first()


def can_manage(ctx: TenantContext) -> bool:
    """Tenant admins and DBAs create, change and delete data sources."""
    return ctx.is_privileged


def data_source_references(*, datasource: DataSource) -> list[str]:
    """Names ("flow / node") of nodes that use the data source, in editing or published versions."""
    from flows.nodes import base as node_types

    types = {name for name, t in node_types.all_types().items() if _refers_to_datasources(t)}
    found: list[str] = []
    nodes = TaskNode.objects.filter(tenant_id=datasource.tenant_id, type__in=types).select_related(
        "flow"
    )
    for node in nodes.only("name", "type", "config", "flow__name"):
        if _uses(node.type, node.config, datasource.pk):
            found.append(f"{node.flow.name} / {node.name}")
    published = TaskFlow.objects.filter(
        tenant_id=datasource.tenant_id, published_version__isnull=False
    ).values_list("published_version_id", flat=True)
    for version in FlowVersion.objects.filter(pk__in=published).select_related("flow"):
        for node in (version.snapshot or {}).get("nodes", []) or []:
            if (
                isinstance(node, dict)
                and node.get("type") in types
                and _uses(node["type"], node.get("config"), datasource.pk)
            ):
                label = f"{version.flow.name} / {node.get('name')} (published v{version.number})"
                if f"{version.flow.name} / {node.get('name')}" not in found:
                    found.append(label)
    return sorted(found)


def _refers_to_datasources(node_type) -> bool:
    from flows.nodes.base import NodeType

    return type(node_type).references is not NodeType.references


def _uses(type_name: str, config, pk: int) -> bool:
    from flows.nodes import base as node_types

    node_type = node_types.get(type_name)
    if node_type is None or not isinstance(config, dict):
        return False
    try:
        ids = node_type.references(config).get("datasources", [])
    except Exception:  # noqa: BLE001 - a malformed config simply references nothing
        return False
    return any(str(i) == str(pk) for i in ids)


def data_source_history(*, datasource: DataSource):
    """The data source's audit rows (newest first) and their sources, for the timeline paginator."""
    from django.db.models import Q

    from flows import timeline

    sources = [
        timeline.Source(
            "datasource",
            DataSource.history.model,
            Q(id=datasource.pk, tenant_id=datasource.tenant_id),
        )
    ]
    return timeline.timeline_queryset(sources), sources
