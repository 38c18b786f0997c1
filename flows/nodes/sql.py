"""sql: runs one or more statements on a data source within the node's timeout."""

from __future__ import annotations

import time

from ._support import (
    DATASOURCE_PROPERTY,
    SQL_PROPERTY,
    OnDataSources,
    datasource_problems,
    load_datasource,
    open_connection,
    schema_problems,
    shorten,
    split_statements,
    sql_lineage,
)
from .base import (
    ExecutionContext,
    NodeFailed,
    NodeLineage,
    NodeResult,
    NodeType,
    ValidationContext,
    register,
)

MAX_ROWS = 20
MAX_STATEMENTS = 500


@register
class Sql(OnDataSources, NodeType):
    type = "sql"
    label = "SQL"
    schema = {
        "type": "object",
        "title": "SQL",
        "description": "Runs the statements in order; the output keeps the first rows of the last query.",
        "properties": {"datasource": DATASOURCE_PROPERTY, "sql": SQL_PROPERTY},
        "required": ["datasource", "sql"],
        "additionalProperties": False,
    }

    def validate(self, config: dict, ctx: ValidationContext) -> list[tuple[str, str]]:
        problems = schema_problems(self.schema, config)
        if problems:
            return problems
        problems = datasource_problems(ctx, config, "datasource")
        count = len(split_statements(config["sql"]))
        if count == 0:
            problems.append(("sql", "Write at least one SQL statement."))
        elif count > MAX_STATEMENTS:
            problems.append(
                ("sql", f"At most {MAX_STATEMENTS} statements are allowed; found {count}.")
            )
        return problems

    def output_names(self, config: dict) -> list[str]:
        return ["rowcount", "statements"]

    def lineage(self, config: dict, datasource) -> NodeLineage:
        if not isinstance(config, dict):
            return NodeLineage()
        return sql_lineage(config.get("sql"), config.get("datasource"), datasource)

    def references(self, config: dict) -> dict[str, list]:
        ds = config.get("datasource") if isinstance(config, dict) else None
        return {"datasources": [ds] if ds is not None else [], "flows": []}

    def execute(self, ctx: ExecutionContext) -> NodeResult:
        from flows.datasources.connectors import ConnectorError, json_value

        statements = split_statements(ctx.config.get("sql", ""))
        if not statements:
            raise NodeFailed("sql: there is no statement to run.")
        ds = load_datasource(ctx, ctx.config.get("datasource"), "datasource")
        total = len(statements)
        last = last_query = None
        with open_connection(ds, ctx, "datasource") as conn:
            for number, statement in enumerate(statements, 1):
                if ctx.cancelled():
                    raise NodeFailed(f"Cancelled before statement {number}/{total}.")
                ctx.log(f"statement {number}/{total}: {shorten(statement)}")
                started = time.monotonic()
                try:
                    last = conn.run(statement, max_rows=MAX_ROWS)
                except ConnectorError as exc:
                    raise NodeFailed(f"statement {number}/{total} failed: {exc}") from None
                ms = (time.monotonic() - started) * 1000
                verb = "returned" if last.is_query else "affected"
                ctx.log(f"statement {number}/{total}: {last.rowcount} row(s) {verb} in {ms:.0f} ms")
                if last.is_query:
                    last_query = last
        output = {"rowcount": last.rowcount, "statements": total, "columns": [], "rows": []}
        if last_query is not None:
            output["columns"] = last_query.columns
            output["rows"] = [[json_value(v) for v in row] for row in last_query.rows]
        return NodeResult(output=output)
