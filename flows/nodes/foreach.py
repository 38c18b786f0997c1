"""foreach: runs a sub-flow once per item, at most `max_parallel` at once (DMS's loop node).

Items come from a SQL query (`datasource`, `sql`: one item per row, its columns by name) or
a literal list (`items`: a list of objects). Each item's child run takes `parameters`, in
which `${item.<column>}` is the item's value (the rest of `${...}` is rendered like any
configuration). The node waits without holding a worker, starting the next items as
children finish, and succeeds when every item's run succeeded; the item runs are the run's
child runs under this node (`parent_key` = the item's index, from 0).
"""

from __future__ import annotations

from flows.variables import REF_RE

from ._support import (
    DATASOURCE_PROPERTY,
    SQL_PROPERTY,
    OnDataSources,
    datasource_problems,
    run_single_read,
    schema_problems,
    single_read_problems,
    sql_lineage,
)
from .base import (
    ExecutionContext,
    NodeDeferred,
    NodeFailed,
    NodeLineage,
    NodeResult,
    NodeType,
    ValidationContext,
    register,
)
from .subflow import CHILD_DONE, POLL_S, parameters_schema, target_problems

ITEM_PREFIX = "item."
# Items one loop runs at most (they are kept in the node's wait state).
MAX_ITEMS = 1000
MAX_PARALLEL = 32


def item_references(config) -> set[str]:
    """The ${item.<column>} names of a configuration (filled per item, not at render time)."""
    found: set[str] = set()

    def walk(value):
        if isinstance(value, str):
            found.update(n for n in REF_RE.findall(value) if n.startswith(ITEM_PREFIX))
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(config)
    return found


def item_parameters(parameters: dict, item: dict) -> dict:
    """The parameters of one item's child: ${item.<column>} replaced by the item's value."""

    def fill(value):
        if not isinstance(value, str):
            return value
        whole = REF_RE.fullmatch(value)
        if whole and whole[1].startswith(ITEM_PREFIX):
            return item.get(whole[1][len(ITEM_PREFIX) :])  # keep the value's type
        return REF_RE.sub(
            lambda m: (
                _text(item.get(m[1][len(ITEM_PREFIX) :])) if m[1].startswith(ITEM_PREFIX) else m[0]
            ),
            value,
        )

    return {name: fill(value) for name, value in (parameters or {}).items()}


def _text(value) -> str:
    return "" if value is None else str(value)


@register
class Foreach(OnDataSources, NodeType):
    type = "foreach"
    label = "Loop (for each)"
    schema = {
        "type": "object",
        "title": "Loop (for each)",
        "description": (
            "Runs a sub-flow once per row of a query (or per item of a list), with "
            '${item.<column>} in its parameters; "At most at once" caps how many run together.'
        ),
        "properties": {
            "flow": {"type": "integer", "minimum": 1, "title": "Flow", "x-widget": "flow"},
            "datasource": DATASOURCE_PROPERTY,
            "sql": SQL_PROPERTY,
            "items": {
                "type": "array",
                "title": "Items",
                "description": "Instead of a query: a list of objects.",
                "items": {"type": "object"},
                "maxItems": MAX_ITEMS,
            },
            "parameters": parameters_schema(),
            "max_parallel": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_PARALLEL,
                "default": 4,
                "title": "At most at once",
            },
        },
        "required": ["flow"],
        "additionalProperties": False,
    }

    def validate(self, config: dict, ctx: ValidationContext) -> list[tuple[str, str]]:
        problems = schema_problems(self.schema, config)
        if problems:
            return problems
        has_sql = bool(config.get("sql"))
        if has_sql == ("items" in config):
            return [("items", "Give either a query (datasource and sql) or items, not both.")]
        problems = target_problems(config["flow"], ctx)
        if has_sql:
            problems += datasource_problems(ctx, config, "datasource")
            problems += single_read_problems(config["sql"], "sql")
        return problems

    def late_references(self, config) -> set[str]:
        return item_references(config)

    def references(self, config: dict) -> dict[str, list]:
        config = config if isinstance(config, dict) else {}
        ds, flow = config.get("datasource"), config.get("flow")
        return {
            "datasources": [ds] if ds is not None else [],
            "flows": [flow] if flow is not None else [],
        }

    def lineage(self, config: dict, datasource) -> NodeLineage:
        if not isinstance(config, dict) or not config.get("sql"):
            return NodeLineage()
        return sql_lineage(config.get("sql"), config.get("datasource"), datasource)

    def output_names(self, config: dict) -> list[str]:
        return ["items", "succeeded"]

    def execute(self, ctx: ExecutionContext) -> NodeResult:
        cfg = ctx.config
        flow = int(cfg["flow"])
        state = dict(ctx.state or {})
        items = state.get("items")
        if items is None:
            items = self._items(ctx)
            ctx.log(f"{len(items)} item(s) to run through flow {flow}")
        parallel = max(1, min(MAX_PARALLEL, int(cfg.get("max_parallel") or 4)))
        started = int(state.get("started", 0))
        parameters = cfg.get("parameters") or {}
        done, failed, running = 0, [], 0
        for index in range(started):
            child = ctx.child_run(flow, item_parameters(parameters, items[index]), str(index))
            if child["status"] in CHILD_DONE:
                done += 1
                if child["status"] != "succeeded":
                    failed.append(index)
            else:
                running += 1
        while started < len(items) and running < parallel:
            ctx.child_run(flow, item_parameters(parameters, items[started]), str(started))
            started += 1
            running += 1
        if done < len(items):
            raise NodeDeferred(
                POLL_S,
                {"items": items, "started": started},
                f"{done} of {len(items)} item run(s) finished, {running} running",
            )
        if failed:
            shown = ", ".join(str(i) for i in failed[:20])
            raise NodeFailed(f"{len(failed)} of {len(items)} item run(s) did not succeed: {shown}")
        ctx.log(f"every item run succeeded ({len(items)})")
        return NodeResult(output={"items": len(items), "succeeded": len(items)})

    def _items(self, ctx: ExecutionContext) -> list[dict]:
        from flows.datasources.connectors import text_value

        if ctx.config.get("sql"):
            result = run_single_read(ctx, "query", max_rows=MAX_ITEMS)
            if result.rowcount > MAX_ITEMS:
                raise NodeFailed(
                    f"The query returned {result.rowcount} rows; a loop runs at most {MAX_ITEMS}."
                )
            return [
                {name: text_value(value) for name, value in zip(result.columns, row, strict=True)}
                for row in result.rows
            ]
        items = ctx.config.get("items") or []
        if not all(isinstance(item, dict) for item in items):
            raise NodeFailed("items: each item must be an object")
        return list(items)
