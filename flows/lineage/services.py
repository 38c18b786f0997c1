"""Recording lineage: computed once, when a version is published, from its snapshot."""

from __future__ import annotations

import logging

from django.db import transaction

from ..choices import LineageAccess
from ..models import DataSource, FlowVersion, LineageEntry, TaskFlow
from ..nodes import base as node_types

_MAX = 255
logger = logging.getLogger("tributary.lineage")


def _datasource_lookup(version: FlowVersion, nodes: list[dict]):
    """`lookup(id)` → the tenant's DataSource or None, for every data source the nodes name."""
    ids = set()
    for node in nodes:
        node_type = node_types.get(node.get("type"))
        if node_type is not None:
            ids.update(node_type.references(node.get("config") or {}).get("datasources", []))
    wanted = {i for i in ids if isinstance(i, int) and not isinstance(i, bool)}
    found = {
        ds.pk: ds for ds in DataSource.objects.filter(tenant_id=version.tenant_id, pk__in=wanted)
    }

    def lookup(value):
        return found.get(value) if isinstance(value, int) and not isinstance(value, bool) else None

    return lookup


def lineage_entries(version: FlowVersion) -> list[LineageEntry]:
    """The lineage facts of a version's snapshot (unsaved)."""
    nodes = [n for n in (version.snapshot or {}).get("nodes", []) if isinstance(n, dict)]
    lookup = _datasource_lookup(version, nodes)
    out: list[LineageEntry] = []
    for node in nodes:
        node_type = node_types.get(node.get("type"))
        if node_type is None:
            continue
        config = node.get("config") or {}

        common = {
            "tenant_id": version.tenant_id,
            "version": version,
            "flow_id": version.flow_id,
            "node_id": node["id"],
            "node_name": str(node.get("name", ""))[:128],
            "node_type": str(node.get("type", ""))[:32],
        }
        try:
            lineage = node_type.lineage(config, lookup)
        except Exception:  # noqa: BLE001 - lineage never stops a publish; the flow shows why
            logger.exception("lineage of node %s of version %s failed", node.get("id"), version.pk)
            out.append(
                LineageEntry(
                    **common,
                    access=LineageAccess.UNPARSED,
                    detail="the SQL parser failed on this node; its tables are not in the lineage",
                )
            )
            continue
        for access, uses in (
            (LineageAccess.READ, lineage.reads),
            (LineageAccess.WRITE, lineage.writes),
        ):
            for datasource_id, table in uses:
                out.append(
                    LineageEntry(
                        **common,
                        access=access,
                        datasource_id=datasource_id,
                        schema=table.schema[:_MAX],
                        name=table.name[:_MAX],
                    )
                )
        for flow_id in node_type.references(config).get("flows", []):
            if isinstance(flow_id, int) and not isinstance(flow_id, bool):
                out.append(LineageEntry(**common, access=LineageAccess.DEPENDS, depends_on=flow_id))
        for problem in lineage.problems:
            out.append(LineageEntry(**common, access=LineageAccess.UNPARSED, detail=problem[:500]))
    return out


def lineage_record(*, version: FlowVersion) -> int:
    """Store the lineage of a version that is being published (call inside its transaction)."""
    entries = lineage_entries(version)
    # Append-only operational facts of an immutable version (no history): bulk is fine.
    LineageEntry.objects.bulk_create(entries)
    return len(entries)


def lineage_rebuild(*, flows=None) -> int:
    """Recompute the lineage of each flow's published version (all flows by default), e.g.
    for versions published before lineage existed or after the parser improved."""
    qs = TaskFlow.objects.exclude(published_version=None).select_related("published_version")
    if flows is not None:
        qs = qs.filter(pk__in=[f.pk if isinstance(f, TaskFlow) else f for f in flows])
    count = 0
    for flow in qs.iterator():
        with transaction.atomic():
            LineageEntry.objects.filter(version=flow.published_version).delete()
            count += lineage_record(version=flow.published_version)
    return count
