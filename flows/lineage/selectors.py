"""Lineage reads: who reads and writes a table, and the flows up- and downstream of a flow.

Only the latest published version of each flow counts (what its schedule runs), and only
flows the user may see: an invisible flow is neither shown nor followed, so it cannot be
inferred from the links around it. Each answer costs the same few queries whatever the
size of the tenant; the transitive walk is one recursive SQL query.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import F, QuerySet

from accounts.selectors import TenantContext

from .. import permissions
from ..choices import LineageAccess
from ..models import LineageEntry, TaskFlow
from ..selectors import flow_list


def visible_flows(*, ctx: TenantContext) -> QuerySet[TaskFlow]:
    """Ids of the tenant's flows the user may see (a subquery)."""
    qs = TaskFlow.objects.filter(tenant=ctx.tenant)
    visible = permissions.visibility_filter(ctx)
    if visible is not None:
        qs = qs.filter(visible)
    return qs.order_by().values("id")


def current_entries(*, ctx: TenantContext) -> QuerySet[LineageEntry]:
    """Lineage of the latest published version of each flow the user may see."""
    return LineageEntry.objects.filter(
        tenant=ctx.tenant,
        version_id=F("flow__published_version_id"),
        flow_id__in=visible_flows(ctx=ctx),
    )


def parse_table(text: str) -> tuple[str | None, str]:
    """`schema.table` → (schema, table); `table` → (None, table)."""
    text = text.strip()
    if "." in text:
        schema, name = text.rsplit(".", 1)
        return schema.strip(), name.strip()
    return None, text


def _spellings(text: str) -> list[str]:
    """As written and folded to lower case (how unquoted names are stored on most engines)."""
    return list(dict.fromkeys([text, text.lower()]))


def table_lineage(
    *, ctx: TenantContext, table: str, datasource: int | None = None
) -> dict[str, list[LineageEntry]]:
    """The nodes that read and that write the table (any schema when none is named)."""
    schema, name = parse_table(table)
    qs = current_entries(ctx=ctx).filter(
        access__in=[LineageAccess.READ, LineageAccess.WRITE], name__in=_spellings(name)
    )
    if schema:
        qs = qs.filter(schema__in=_spellings(schema))
    if datasource is not None:
        qs = qs.filter(datasource_id=datasource)
    rows = list(
        qs.select_related("flow", "datasource", "version")
        .only(
            "id", "access", "node_id", "node_name", "node_type", "schema", "name",
            "flow__id", "flow__name", "flow__status",
            "datasource__id", "datasource__name", "datasource__engine",
            "version__id", "version__number",
        )
        .order_by("flow__name", "flow_id", "node_name", "id")
    )  # fmt: skip
    return {
        "readers": [e for e in rows if e.access == LineageAccess.READ],
        "writers": [e for e in rows if e.access == LineageAccess.WRITE],
    }


# --------------------------------------------------------------------------- flow graph


@dataclass
class FlowLineage:
    flow: TaskFlow
    # Flows reached (the flow itself included) with their direction(s) from it.
    flows: list[TaskFlow] = field(default_factory=list)
    upstream: set[int] = field(default_factory=set)
    downstream: set[int] = field(default_factory=set)
    # (upstream flow, downstream flow) → {"tables": set of "schema.name", "dependency": bool}
    edges: dict[tuple[int, int], dict] = field(default_factory=dict)
    # The flow's own facts (its published version): reads, writes, waits, problems.
    own: list[LineageEntry] = field(default_factory=list)


_WALK = """
WITH RECURSIVE
  vis(id) AS ({visible}),
  cur AS (
    SELECT e.flow_id, e.access, e.datasource_id, e.schema, e.name, e.depends_on
    FROM {entry} e JOIN {flow} f ON f.id = e.flow_id AND f.published_version_id = e.version_id
    WHERE e.tenant_id = %s AND e.flow_id IN (SELECT id FROM vis)
  ),
  links(up, down) AS (
    SELECT w.flow_id, r.flow_id FROM cur w JOIN cur r
      ON r.name = w.name AND r.schema = w.schema AND r.datasource_id = w.datasource_id
    WHERE w.access = %s AND r.access = %s AND w.flow_id <> r.flow_id
    UNION
    SELECT d.depends_on, d.flow_id FROM cur d
    WHERE d.access = %s AND d.depends_on <> d.flow_id AND d.depends_on IN (SELECT id FROM vis)
  ),
  down(id) AS (
    SELECT CAST(%s AS BIGINT) UNION SELECT l.down FROM links l JOIN down ON l.up = down.id
  ),
  up(id) AS (
    SELECT CAST(%s AS BIGINT) UNION SELECT l.up FROM links l JOIN up ON l.down = up.id
  )
SELECT 'down', id FROM down UNION ALL SELECT 'up', id FROM up
"""


def _walk(ctx: TenantContext, flow_id: int) -> tuple[set[int], set[int]]:
    """Ids of the visible flows downstream and upstream of `flow_id` (one recursive query)."""
    visible_sql, visible_params = visible_flows(ctx=ctx).query.sql_with_params()
    sql = _WALK.format(
        visible=visible_sql,
        entry=connection.ops.quote_name(LineageEntry._meta.db_table),
        flow=connection.ops.quote_name(TaskFlow._meta.db_table),
    )
    params = [
        *visible_params,
        ctx.tenant.pk,
        LineageAccess.WRITE.value,
        LineageAccess.READ.value,
        LineageAccess.DEPENDS.value,
        flow_id,
        flow_id,
    ]
    down, up = set(), set()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for direction, reached in cursor.fetchall():
            (down if direction == "down" else up).add(int(reached))
    down.discard(flow_id)
    up.discard(flow_id)
    return down, up


def flow_lineage(*, ctx: TenantContext, flow: TaskFlow) -> FlowLineage:
    """The flows upstream and downstream of `flow` through tables and dependency checks, the
    links between them, and the flow's own tables."""
    down, up = _walk(ctx, flow.pk)
    reached = down | up | {flow.pk}
    flows = list(flow_list(ctx=ctx).filter(pk__in=reached).order_by("name", "pk"))
    entries = list(
        current_entries(ctx=ctx)
        .filter(flow_id__in=reached)
        .select_related("datasource")
        .order_by("node_name", "id")
    )
    result = FlowLineage(flow=flow, flows=flows, upstream=up, downstream=down)
    writers, readers = defaultdict(set), defaultdict(set)
    for e in entries:
        if e.flow_id == flow.pk:
            result.own.append(e)
        key = (e.datasource_id, e.schema, e.name)
        if e.access == LineageAccess.WRITE and e.datasource_id is not None:
            writers[key].add(e.flow_id)
        elif e.access == LineageAccess.READ and e.datasource_id is not None:
            readers[key].add(e.flow_id)
        elif e.access == LineageAccess.DEPENDS and e.depends_on in reached:
            if e.depends_on != e.flow_id:
                _edge(result, e.depends_on, e.flow_id)["dependency"] = True
    for key, wrote in writers.items():
        for w in wrote:
            for r in readers.get(key, ()):
                if w != r:
                    _edge(result, w, r)["tables"].add(f"{key[1]}.{key[2]}" if key[1] else key[2])
    return result


def _edge(result: FlowLineage, up: int, down: int) -> dict:
    return result.edges.setdefault((up, down), {"tables": set(), "dependency": False})
