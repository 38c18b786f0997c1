"""Helpers shared by node types: schema checks, data source lookups, SQL splitting."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager

import sqlparse
from jsonschema import Draft202012Validator
from sqlparse import tokens as T
from sqlparse.engine import FilterStack
from sqlparse.lexer import tokenize

from .base import ExecutionContext, NodeFailed, NodeLineage, ValidationContext

Problems = list[tuple[str, str]]
VAR_RE = re.compile(r"\$\{[^}]*\}")
MAX_SQL_LENGTH = 100_000
LOG_SQL_LENGTH = 300

DATASOURCE_PROPERTY = {
    "type": "integer",
    "minimum": 1,
    "title": "Data source",
    "x-widget": "datasource",
}
SQL_PROPERTY = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_SQL_LENGTH,
    "title": "SQL",
    "x-widget": "sql",
}
_TYPE_NAMES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a text",
    "boolean": "true or false",
    "object": "an object",
    "array": "a list",
    "null": "null",
}


# Compiled validators by schema object: schemas are class attributes, built once.
_SCHEMAS: dict[int, Draft202012Validator] = {}


def schema_problems(schema: dict, config) -> Problems:
    """The schema's complaints about `config`, as (field, message) pairs."""
    if not isinstance(config, dict):
        return [("config", "The configuration must be a JSON object.")]
    key = id(schema)
    validator = _SCHEMAS.get(key)
    if validator is None:
        validator = _SCHEMAS[key] = Draft202012Validator(schema)
    problems: Problems = []
    for error in sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.path]):
        for problem in _describe(error):
            if problem not in problems:
                problems.append(problem)
    return problems


def _describe(error) -> Problems:
    field = ".".join(str(p) for p in error.path) or "config"
    kind, value = error.validator, error.validator_value
    if kind == "required":
        missing = [n for n in value if isinstance(error.instance, dict) and n not in error.instance]
        prefix = f"{field}." if field != "config" else ""
        return [(f"{prefix}{name}", "This field is required.") for name in missing]
    if kind == "additionalProperties":
        extra = [k for k in error.instance if k not in error.schema.get("properties", {})]
        prefix = f"{field}." if field != "config" else ""
        return [(f"{prefix}{name}", "Unknown field.") for name in extra] or [(field, error.message)]
    if kind == "type":
        kinds = value if isinstance(value, list) else [value]
        return [(field, "Must be " + " or ".join(_TYPE_NAMES.get(k, k) for k in kinds) + ".")]
    if kind == "enum":
        return [(field, "Must be one of: " + ", ".join(str(v) for v in value) + ".")]
    if kind == "minimum":
        return [(field, f"Must be at least {value}.")]
    if kind == "maximum":
        return [(field, f"Must be at most {value}.")]
    if kind == "exclusiveMinimum":
        return [(field, f"Must be greater than {value}.")]
    if kind == "minLength":
        return [
            (field, "Must not be empty." if value == 1 else f"Must be at least {value} characters.")
        ]
    if kind == "maxLength":
        return [(field, f"Must be at most {value} characters.")]
    if kind == "maxItems":
        return [(field, f"Must have at most {value} items.")]
    if kind == "minItems":
        return [(field, f"Must have at least {value} item(s).")]
    if kind in ("oneOf", "anyOf"):
        return [(field, "Has an invalid value or type.")]
    return [(field, error.message)]


def has_variables(text) -> bool:
    return isinstance(text, str) and "${" in text


def datasource_problems(ctx: ValidationContext, config: dict, field: str) -> Problems:
    """The data source `config[field]` must exist in the node's tenant."""
    value = config.get(field)
    if not isinstance(value, int) or isinstance(value, bool):
        return []  # the schema already complained
    if ctx.datasource(value) is None:
        return [(field, f"Data source {value} does not exist in this tenant.")]
    return []


class OnDataSources:
    """Mixin of the types that run on a data source: `prepare` loads the connectors (and
    their database drivers)."""

    def prepare(self) -> None:
        from flows.datasources import connectors  # noqa: F401


def load_datasource(ctx: ExecutionContext, value, field: str):
    """The tenant's data source for an execution, or NodeFailed."""
    from flows.models import DataSource

    try:
        pk = int(value)
    except (TypeError, ValueError):
        raise NodeFailed(f"{field}: '{value}' is not a data source id.") from None
    ds = DataSource.objects.filter(tenant_id=ctx.tenant_id, pk=pk).first()
    if ds is None:
        raise NodeFailed(f"{field}: data source {pk} does not exist in this tenant.")
    return ds


@contextmanager
def open_connection(ds, ctx: ExecutionContext, field: str) -> Iterator:
    """A connection whose work the run's stop can cancel; connector errors become NodeFailed."""
    from flows.datasources import connectors

    try:
        conn = connectors.connect(ds, timeout=ctx.timeout)
    except connectors.ConnectorError as exc:
        raise NodeFailed(f"{field}: {exc}") from None
    try:
        ctx.on_cancel(conn.cancel)
        yield conn
    finally:
        conn.close()


def split_statements(sql: str) -> list[str]:
    """The statements of `sql` (sqlparse), without empty or comment-only pieces or the final ';'."""
    return list(_split_statements(sql or ""))


def _is_blank(statement) -> bool:
    """Whether a statement, as the splitter yields it, holds nothing but whitespace, ';' and
    comments (an optimizer hint alone, `/*+ … */`, is not a statement either)."""
    return all(
        token.is_whitespace
        or token.ttype in T.Comment
        or (token.ttype is T.Punctuation and token.value == ";")
        for token in statement.flatten()
    )


# Validation and output listing split the same text of a node; sqlparse is the costly part of
# validating a large graph, so the same text is split once, in one lexing pass: the
# splitter's own tokens tell a comment-only piece (formatting each piece to strip its
# comments cost twice the split, ~60% of validating a graph of SQL nodes).
@functools.lru_cache(maxsize=2048)
def _split_statements(sql: str) -> tuple[str, ...]:
    out = []
    for statement in FilterStack().run(sql or ""):
        if _is_blank(statement):
            continue
        stripped = str(statement).strip()
        if stripped.endswith(";"):
            stripped = stripped[:-1].rstrip()
        out.append(stripped)
    return tuple(out)


@functools.lru_cache(maxsize=2048)
def parsed_statement(statement: str):
    """sqlparse's tree of one statement, parsed once for validation and output listing
    (callers read it, never change it)."""
    return sqlparse.parse(statement)[0]


WRITE_TYPES = {
    "INSERT",
    "UPDATE",
    "DELETE",
    "REPLACE",
    "MERGE",
    "CREATE",
    "DROP",
    "ALTER",
    "TRUNCATE",
    "GRANT",
    "REVOKE",
}
_KINDS = (T.Keyword.DML, T.Keyword.DDL)


def statement_kind(statement: str) -> str:
    """The statement's type (SELECT, INSERT, CREATE …, or UNKNOWN) as sqlparse's `get_type()`
    names it: its first DML or DDL keyword, read from the tokens without building the parse
    tree (the costly part of validating a SQL node); only a WITH statement, whose type
    follows its common table expressions, asks the tree."""
    for ttype, value in tokenize(statement):
        if ttype in T.Whitespace or ttype in T.Comment:
            continue
        if ttype in _KINDS:
            return value.upper()
        if ttype is T.Keyword.CTE:
            return parsed_statement(statement).get_type()
        return "UNKNOWN"
    return "UNKNOWN"


def single_read_problems(sql, field: str) -> Problems:
    """`sql` must be exactly one statement, and not one that obviously writes."""
    if not isinstance(sql, str):
        return []
    statements = split_statements(sql)
    if not statements:
        return [(field, "Write one SQL statement.")]
    if len(statements) > 1:
        return [(field, f"Exactly one statement is allowed here; found {len(statements)}.")]
    kind = statement_kind(statements[0])
    if kind in WRITE_TYPES:
        return [(field, f"This check is read-only: a {kind} statement is not allowed.")]
    return []


def sql_lineage(sql, datasource_id, datasource) -> NodeLineage:
    """Tables the statements of `sql` read and write on the data source, in its dialect."""
    from flows.lineage.sql import default_schema, sql_tables

    if not isinstance(sql, str):
        return NodeLineage()
    ds = datasource(datasource_id)
    engine = ds.engine if ds is not None else None
    schema = default_schema(engine or "", ds.database if ds is not None else "")
    tables = sql_tables(split_statements(sql), engine=engine, schema=schema)
    key = ds.pk if ds is not None else None
    return NodeLineage(
        reads=[(key, t) for t in tables.reads],
        writes=[(key, t) for t in tables.writes],
        problems=tables.problems,
    )


def shorten(text: str, limit: int = LOG_SQL_LENGTH) -> str:
    """One line, at most `limit` characters, for logs."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def truthy(value) -> bool:
    """A check's verdict: non-zero, non-empty and not 'false' / '0'."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return len(bytes(value)) > 0
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("", "false", "f", "no", "off", "null", "none"):
            return False
        try:
            return float(text) != 0
        except ValueError:
            return True
    try:
        return value != 0 and bool(value)
    except Exception:  # noqa: BLE001 - exotic values are truthy when present
        return True


def run_single_read(ctx: ExecutionContext, what: str, *, max_rows: int = 1):
    """Run the configured single read-only statement (`sql` on `datasource`), keeping up to
    `max_rows` rows (the result still counts them all).

    `what` names the statement in messages ("check", "query"). Returns the connector's result,
    which is a query (it has a result set).
    """
    from flows.datasources.connectors import ConnectorError

    sql = ctx.config.get("sql", "")
    problems = single_read_problems(sql, "sql")
    if problems:
        raise NodeFailed(f"{problems[0][0]}: {problems[0][1]}")
    statement = split_statements(sql)[0]
    ds = load_datasource(ctx, ctx.config.get("datasource"), "datasource")
    ctx.log(f"{what}: {shorten(statement)}")
    with open_connection(ds, ctx, "datasource") as conn:
        try:
            result = conn.run(statement, max_rows=max_rows, single=True, read_only=True)
        except ConnectorError as exc:
            raise NodeFailed(f"{what} failed: {exc}") from None
    if not result.is_query:
        raise NodeFailed(f"The {what} returned no result set; write a SELECT.")
    return result
