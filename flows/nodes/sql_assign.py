"""sql_assign: one read-only query whose first row's columns become output variables."""

from __future__ import annotations

import sqlparse
from sqlparse import sql as sqlnodes
from sqlparse import tokens as T

from ._support import (
    DATASOURCE_PROPERTY,
    SQL_PROPERTY,
    datasource_problems,
    run_single_read,
    schema_problems,
    single_read_problems,
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


@register
class SqlAssign(NodeType):
    type = "sql_assign"
    label = "SQL assignment"
    schema = {
        "type": "object",
        "title": "SQL assignment",
        "description": "One query; the columns of its first row become variables of downstream nodes.",
        "properties": {"datasource": DATASOURCE_PROPERTY, "sql": SQL_PROPERTY},
        "required": ["datasource", "sql"],
        "additionalProperties": False,
    }

    def validate(self, config: dict, ctx: ValidationContext) -> list[tuple[str, str]]:
        problems = schema_problems(self.schema, config)
        if problems:
            return problems
        return datasource_problems(ctx, config, "datasource") + single_read_problems(
            config["sql"], "sql"
        )

    def lineage(self, config: dict, datasource) -> NodeLineage:
        if not isinstance(config, dict):
            return NodeLineage()
        return sql_lineage(config.get("sql"), config.get("datasource"), datasource)

    def references(self, config: dict) -> dict[str, list]:
        ds = config.get("datasource") if isinstance(config, dict) else None
        return {"datasources": [ds] if ds is not None else [], "flows": []}

    def output_names(self, config: dict) -> list[str]:
        names, _complete = select_names(config.get("sql", "") if isinstance(config, dict) else "")
        return names

    def outputs_dynamic(self, config: dict) -> bool:
        _names, complete = select_names(config.get("sql", "") if isinstance(config, dict) else "")
        return not complete

    def execute(self, ctx: ExecutionContext) -> NodeResult:
        from flows.datasources.connectors import text_value

        result = run_single_read(ctx, "query")
        if not result.rows:
            raise NodeFailed("The query returned no row: there is nothing to assign.")
        output = {}
        for name, value in zip(result.columns, result.rows[0], strict=True):
            if name in output:
                ctx.log(f"column {name} appears twice; the last one wins")
            output[name] = text_value(value)
        ctx.log(f"assigned {len(output)} variable(s): {', '.join(output)}")
        return NodeResult(output=output)


def select_names(sql: str) -> tuple[list[str], bool]:
    """Column names of a SELECT known from its text, and whether that is all of them."""
    statements = split_statements(sql) if isinstance(sql, str) else []
    if len(statements) != 1:
        return [], False
    parsed = sqlparse.parse(statements[0])[0]
    tokens = [t for t in parsed.tokens if not t.is_whitespace]
    for index, token in enumerate(tokens):
        if token.ttype is T.DML and token.normalized == "SELECT":
            rest = tokens[index + 1 :]
            while rest and rest[0].ttype is T.Keyword and rest[0].normalized in ("DISTINCT", "ALL"):
                rest = rest[1:]
            if not rest:
                return [], False
            items = rest[0]
            if isinstance(items, sqlnodes.IdentifierList):
                items = list(items.get_identifiers())
            else:
                items = [items]
            names, complete = [], True
            for item in items:
                name = _column_name(item)
                if name is None:
                    complete = False
                else:
                    names.append(name)
            return names, complete
    return [], False


def _column_name(item) -> str | None:
    if isinstance(item, sqlnodes.Identifier):
        alias = item.get_alias()
        if alias:
            return alias.strip('"`')
        if item.is_wildcard():
            return None
        # A plain column reference (t.col) keeps its name; expressions are engine-specific.
        if all(
            t.ttype in (T.Name, T.Punctuation, T.Literal.String.Symbol)
            or isinstance(t, sqlnodes.Identifier)
            for t in item.tokens
        ):
            name = item.get_real_name()
            return name.strip('"`') if name else None
    return None
