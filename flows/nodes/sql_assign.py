"""sql_assign: one read-only query whose result becomes output variables.

`rows` and `columns` choose what (DMS's "Row" and "Column"; they cannot both be `all`):
- rows first, columns all (the default): the first row, each column a variable;
- rows first, columns first: the first row's first column, one variable;
- rows all, columns first: the first column of every row, one list-valued variable, which
  renders in `${name}` as its items joined by commas (`IN (${ids})`); no row gives an
  empty list.
"""

from __future__ import annotations

from sqlparse import sql as sqlnodes
from sqlparse import tokens as T

from ._support import (
    DATASOURCE_PROPERTY,
    SQL_PROPERTY,
    OnDataSources,
    datasource_problems,
    parsed_statement,
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

CHOICES = ("first", "all")
# Rows one list-valued variable may hold: it is rendered into text such as an IN (...) list.
MAX_LIST_ROWS = 10_000


def shape(config) -> tuple[str, str]:
    """(rows, columns) of a configuration, with their defaults (first row, every column)."""
    config = config if isinstance(config, dict) else {}
    return config.get("rows") or "first", config.get("columns") or "all"


@register
class SqlAssign(OnDataSources, NodeType):
    type = "sql_assign"
    label = "SQL assignment"
    schema = {
        "type": "object",
        "title": "SQL assignment",
        "description": (
            "One query; its result becomes variables of downstream nodes, named after the "
            "columns. A list (every row of the first column) renders as its items joined by "
            "commas."
        ),
        "properties": {
            "datasource": DATASOURCE_PROPERTY,
            "sql": SQL_PROPERTY,
            "rows": {
                "enum": list(CHOICES),
                "default": "first",
                "title": "Rows",
                "x-enum-labels": ["the first row", "every row (one list-valued variable)"],
            },
            "columns": {
                "enum": list(CHOICES),
                "default": "all",
                "title": "Columns",
                "x-enum-labels": ["the first column only", "every column (a variable each)"],
            },
        },
        "required": ["datasource", "sql"],
        "additionalProperties": False,
    }

    def validate(self, config: dict, ctx: ValidationContext) -> list[tuple[str, str]]:
        problems = schema_problems(self.schema, config)
        if problems:
            return problems
        if shape(config) == ("all", "all"):
            return [
                (
                    "columns",
                    "Rows and columns cannot both be 'all': with every row, assign the "
                    "first column only (one list-valued variable).",
                )
            ]
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
        items = select_items(config.get("sql", "") if isinstance(config, dict) else "")
        if shape(config)[1] == "first":
            return [items[0]] if items and items[0] else []
        return [name for name in items or [] if name]

    def outputs_dynamic(self, config: dict) -> bool:
        items = select_items(config.get("sql", "") if isinstance(config, dict) else "")
        if shape(config)[1] == "first":
            return not (items and items[0])
        return not items or None in items

    def execute(self, ctx: ExecutionContext) -> NodeResult:
        from flows.datasources.connectors import text_value

        rows, columns = shape(ctx.config)
        if (rows, columns) == ("all", "all"):
            raise NodeFailed("columns: rows and columns cannot both be 'all'.")
        if rows == "all":
            result = run_single_read(ctx, "query", max_rows=MAX_LIST_ROWS)
            if result.rowcount > MAX_LIST_ROWS:
                raise NodeFailed(
                    f"The query returned {result.rowcount} rows; a list variable holds at most "
                    f"{MAX_LIST_ROWS}: filter or aggregate the rows."
                )
            name = result.columns[0]
            values = [text_value(row[0]) for row in result.rows]
            ctx.log(f"assigned {name} = a list of {len(values)} value(s) (every row, column 1)")
            return NodeResult(output={name: values})
        result = run_single_read(ctx, "query")
        if not result.rows:
            raise NodeFailed("The query returned no row: there is nothing to assign.")
        if columns == "first":
            name = result.columns[0]
            ctx.log(f"assigned {name} (first row, column 1)")
            return NodeResult(output={name: text_value(result.rows[0][0])})
        output = {}
        for name, value in zip(result.columns, result.rows[0], strict=True):
            if name in output:
                ctx.log(f"column {name} appears twice; the last one wins")
            output[name] = text_value(value)
        ctx.log(f"assigned {len(output)} variable(s): {', '.join(output)}")
        return NodeResult(output=output)


def select_names(sql: str) -> tuple[list[str], bool]:
    """Column names of a SELECT known from its text, and whether that is all of them."""
    items = select_items(sql)
    if not items:
        return [], False
    return [name for name in items if name], None not in items


def select_items(sql: str) -> list[str | None] | None:
    """The SELECT list's column names in order (None where the text does not tell), or None."""
    statements = split_statements(sql) if isinstance(sql, str) else []
    if len(statements) != 1:
        return None
    parsed = parsed_statement(statements[0])
    tokens = [t for t in parsed.tokens if not t.is_whitespace]
    for index, token in enumerate(tokens):
        if token.ttype is T.DML and token.normalized == "SELECT":
            rest = tokens[index + 1 :]
            while rest and rest[0].ttype is T.Keyword and rest[0].normalized in ("DISTINCT", "ALL"):
                rest = rest[1:]
            if not rest:
                return None
            items = rest[0]
            if isinstance(items, sqlnodes.IdentifierList):
                items = list(items.get_identifiers())
            else:
                items = [items]
            return [_column_name(item) for item in items]
    return None


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
