"""data_sync: streams a source query's rows into a target table in batches and checks the counts."""

from __future__ import annotations

import time
from contextlib import contextmanager

from ._support import (
    DATASOURCE_PROPERTY,
    SQL_PROPERTY,
    OnDataSources,
    datasource_problems,
    load_datasource,
    open_connection,
    schema_problems,
    shorten,
    single_read_problems,
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


@register
class DataSync(OnDataSources, NodeType):
    type = "data_sync"
    label = "Data sync"
    schema = {
        "type": "object",
        "title": "Data sync",
        "description": "Copies the rows of a query on one data source into a table of another.",
        "properties": {
            "source": {**DATASOURCE_PROPERTY, "title": "Source data source"},
            "query": {**SQL_PROPERTY, "title": "Source query"},
            "target": {**DATASOURCE_PROPERTY, "title": "Target data source"},
            "table": {
                "type": "string",
                "minLength": 1,
                "maxLength": 127,
                "title": "Target table",
                "description": "table or schema.table; its columns are named like the query's.",
            },
            "mode": {
                "type": "string",
                "enum": ["append", "overwrite"],
                "x-enum-labels": ["Append the rows", "Overwrite the table"],
                "default": "append",
                "title": "Mode",
                "description": "overwrite empties the table in the same transaction as the inserts.",
            },
            "batch_size": {
                "type": "integer",
                "minimum": 1,
                "maximum": 100_000,
                "default": 1000,
                "title": "Batch size",
            },
        },
        "required": ["source", "query", "target", "table"],
        "additionalProperties": False,
    }

    def validate(self, config: dict, ctx: ValidationContext) -> list[tuple[str, str]]:
        from flows.datasources.connectors import is_identifier

        problems = schema_problems(self.schema, config)
        if problems:
            return problems
        problems = datasource_problems(ctx, config, "source") + datasource_problems(
            ctx, config, "target"
        )
        problems += single_read_problems(config["query"], "query")
        table = config["table"]
        if "${" not in table and not is_identifier(table):
            problems.append(
                ("table", "Give a table name (letters, digits, _), optionally schema.table.")
            )
        return problems

    def output_names(self, config: dict) -> list[str]:
        return ["rows_read", "rows_written", "rows_deleted"]

    def lineage(self, config: dict, datasource) -> NodeLineage:
        """Reads what the source query reads; writes the target table on the target."""
        from flows.lineage.sql import default_schema, table_ref

        if not isinstance(config, dict):
            return NodeLineage()
        lineage = sql_lineage(config.get("query"), config.get("source"), datasource)
        lineage.writes = []  # the source query is read-only (validated)
        target = datasource(config.get("target"))
        table = config.get("table")
        if isinstance(table, str) and table:
            engine = target.engine if target is not None else ""
            schema = default_schema(engine, target.database if target is not None else "")
            ref = table_ref(table, engine=engine, schema=schema)
            if ref is None:
                lineage.problems.append(
                    f"table: the SQL parser could not read {shorten(table, 80)!r}"
                )
            else:
                lineage.writes.append((target.pk if target is not None else None, ref))
        return lineage

    def references(self, config: dict) -> dict[str, list]:
        if not isinstance(config, dict):
            return {"datasources": [], "flows": []}
        ids = [config.get(k) for k in ("source", "target") if config.get(k) is not None]
        return {"datasources": list(dict.fromkeys(ids)), "flows": []}

    def execute(self, ctx: ExecutionContext) -> NodeResult:
        from flows.datasources.connectors import is_identifier

        cfg = ctx.config
        table = cfg.get("table", "")
        if not is_identifier(table):
            raise NodeFailed(f"table: '{shorten(table, 80)}' is not a valid table name.")
        problems = single_read_problems(cfg.get("query", ""), "query")
        if problems:
            raise NodeFailed(f"{problems[0][0]}: {problems[0][1]}")
        mode = cfg.get("mode", "append")
        batch_size = int(cfg.get("batch_size") or 1000)
        source = load_datasource(ctx, cfg.get("source"), "source")
        target = load_datasource(ctx, cfg.get("target"), "target")
        ctx.log(f"reading from {source.name}: {shorten(cfg['query'])}")
        ctx.log(f"writing to {target.name}.{table} ({mode}, batches of {batch_size})")
        started = time.monotonic()
        rows_read = rows_written = deleted = 0
        with (
            open_connection(source, ctx, "source") as src,
            open_connection(target, ctx, "target") as dst,
        ):
            with (
                _side("source"),
                src.stream(cfg["query"].strip().rstrip(";"), batch_size) as (columns, batches),
            ):
                with _side("target"), dst.transaction():
                    if mode == "overwrite":
                        deleted = dst.delete_all(table)
                        ctx.log(f"overwrite: deleted {deleted} row(s) from {table}")
                    for batch in _reading(batches):
                        if ctx.cancelled():
                            raise NodeFailed("Cancelled: the target transaction was rolled back.")
                        rows_read += len(batch)
                        rows_written += dst.insert_many(table, columns, batch)
                    if rows_read != rows_written:
                        raise NodeFailed(
                            f"Read {rows_read} row(s) but the target reports {rows_written} written; "
                            "the transaction was rolled back."
                        )
        seconds = time.monotonic() - started
        ctx.log(f"copied {rows_written} row(s) in {seconds:.1f} s")
        return NodeResult(
            output={"rows_read": rows_read, "rows_written": rows_written, "rows_deleted": deleted}
        )


@contextmanager
def _side(name: str):
    """Name the data source in connector errors raised in the block."""
    from flows.datasources.connectors import ConnectorError

    try:
        yield
    except ConnectorError as exc:
        raise NodeFailed(f"{name}: {exc}") from None


def _reading(batches):
    from flows.datasources.connectors import ConnectorError

    try:
        yield from batches
    except ConnectorError as exc:
        raise NodeFailed(f"source: {exc}") from None
