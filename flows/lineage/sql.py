"""The tables a piece of SQL reads and writes, parsed with sqlglot in the engine's dialect.

Pure functions (no ORM). Each statement is parsed on its own, so one statement the parser
does not understand costs only its own tables, and is reported as a problem naming it.
Identifiers are normalised the way the engine resolves them (PostgreSQL folds unquoted
names to lower case, SQLite ignores case, MySQL keeps it) and an unqualified table is
put in the engine's default schema (`public`, the data source's database, `main`), so the
same table written by one flow and read by another has one name. `${variables}` are kept
in names as written (`sales_${bizdate}`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

# Data source engine → sqlglot dialect.
DIALECTS = {"postgresql": "postgres", "mysql": "mysql", "sqlite": "sqlite"}
_VARIABLE = re.compile(r"\$\{[^}]*\}")
# Statement kinds whose tables we classify; anything else the parser returned is not SQL
# it understood (sqlglot reads "selec * frm" as an arithmetic expression).
_STATEMENTS = (
    exp.Query, exp.Values, exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop,
    exp.Alter, exp.TruncateTable, exp.Copy, exp.Set, exp.Transaction, exp.Commit, exp.Rollback,
    exp.Use, exp.Analyze,
)  # fmt: skip
# MySQL's REPLACE INTO, which sqlglot leaves unparsed, moves data as INSERT INTO does.
_REPLACE = re.compile(r"^\s*replace\b", re.IGNORECASE)
# sqlglot warns (and parses as a Command) what it does not support; we report it instead.
logging.getLogger("sqlglot").setLevel(logging.ERROR)


@dataclass(frozen=True, order=True)
class TableRef:
    """A table by schema and name as the engine resolves them."""

    schema: str
    name: str

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass
class SqlTables:
    reads: list[TableRef] = field(default_factory=list)
    writes: list[TableRef] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, other: SqlTables) -> None:
        for ref in other.reads:
            if ref not in self.reads:
                self.reads.append(ref)
        for ref in other.writes:
            if ref not in self.writes:
                self.writes.append(ref)
        self.problems.extend(other.problems)


class _Variables:
    """`${name}` ↔ an identifier-safe stand-in, so the parser sees plain SQL."""

    def __init__(self):
        self.by_token: dict[str, str] = {}

    def hide(self, sql: str) -> str:
        def swap(match):
            token = f"__tvar{len(self.by_token)}__"
            self.by_token[token] = match.group(0)
            return token

        return _VARIABLE.sub(swap, sql)

    def show(self, text: str) -> str:
        for token, original in self.by_token.items():
            text = text.replace(token, original)
        return text


def default_schema(engine: str, database: str = "") -> str:
    """The schema an unqualified table lives in on this engine."""
    if engine == "postgresql":
        return "public"
    if engine == "mysql":
        return database or ""
    return "main"


def _ref(table: exp.Table, schema: str, variables: _Variables) -> TableRef:
    return TableRef(
        schema=variables.show(table.db or schema),
        name=variables.show(table.name),
    )


def _unwrap(node) -> list[exp.Table]:
    """The tables a statement's target names (a Schema wraps a table with its columns)."""
    if isinstance(node, exp.Schema):
        node = node.this
    return [node] if isinstance(node, exp.Table) else []


def _targets(statement: exp.Expression) -> tuple[list[exp.Table], list[exp.Table], bool]:
    """(written tables, tables that are neither read nor written, temporary?) of a statement."""
    if isinstance(statement, exp.Insert | exp.Update | exp.Merge | exp.Alter):
        return _unwrap(statement.this), [], False
    if isinstance(statement, exp.Delete):
        # MySQL's multi-table DELETE t1, t2 FROM ... names its targets in "tables".
        extra = [t for t in statement.args.get("tables") or [] if isinstance(t, exp.Table)]
        return _unwrap(statement.this) + extra, [], False
    if isinstance(statement, exp.Create):
        kind = (statement.args.get("kind") or "").upper()
        if kind == "INDEX":
            # An index changes no data: its table is neither read nor written.
            return [], list(statement.find_all(exp.Table)), False
        properties = statement.args.get("properties")
        temporary = bool(properties) and any(
            isinstance(p, exp.TemporaryProperty) for p in properties.expressions
        )
        return _unwrap(statement.this), [], temporary
    if isinstance(statement, exp.Drop | exp.TruncateTable):
        tables = [statement.this] if statement.this is not None else []
        tables += statement.args.get("tables") or []
        tables += statement.expressions or []
        tables = [t for t in tables if isinstance(t, exp.Table)]
        if isinstance(statement, exp.Drop) and (statement.args.get("kind") or "").upper() not in (
            "TABLE",
            "VIEW",
            "MATERIALIZED VIEW",
        ):
            return [], list(statement.find_all(exp.Table)), False  # DROP INDEX and the like
        return tables, [], False
    if isinstance(statement, exp.Copy):
        # COPY t FROM … loads into t; COPY t TO … reads it.
        return (_unwrap(statement.this) if statement.args.get("kind") else []), [], False
    if isinstance(statement, exp.Select) and isinstance(statement.args.get("into"), exp.Into):
        return _unwrap(statement.args["into"].this), [], False
    return [], [], False


def statement_tables(statement: exp.Expression, schema: str, variables: _Variables) -> SqlTables:
    """Reads and writes of one parsed (and normalised) statement."""
    written, ignored, temporary = _targets(statement)
    skip = {id(t) for t in written + ignored}
    ctes = {cte.alias_or_name for cte in statement.find_all(exp.CTE)}
    out = SqlTables()
    if not temporary:
        out.writes = sorted({_ref(t, schema, variables) for t in written if t.name})
    reads = set()
    for table in statement.find_all(exp.Table):
        if id(table) in skip or not table.name:  # a table function has no name
            continue
        if not table.db and table.name in ctes:
            continue
        reads.add(_ref(table, schema, variables))
    out.reads = sorted(reads)
    return out


def sql_tables(statements: list[str], *, engine: str | None, schema: str) -> SqlTables:
    """Reads and writes of the statements; a temporary table made here is neither."""
    dialect = DIALECTS.get(engine or "")
    out = SqlTables()
    temporary: set[TableRef] = set()
    for number, text in enumerate(statements, 1):
        variables = _Variables()
        hidden = variables.hide(text)
        if dialect == "mysql":
            hidden = _REPLACE.sub("INSERT", hidden, count=1)
        try:
            parsed = sqlglot.parse(hidden, read=dialect)
        except RecursionError:  # nested deeper than the parser recurses
            out.problems.append(f"statement {number}: nested too deeply for the SQL parser")
            continue
        except SqlglotError as exc:
            out.problems.append(
                f"statement {number}: the SQL parser could not read it ({_short(exc)})"
            )
            continue
        for statement in parsed:
            if statement is None:
                continue
            if isinstance(statement, exp.Command):
                out.problems.append(
                    f"statement {number}: {statement.name.upper()} is not understood by the SQL "
                    "parser; its tables are not in the lineage"
                )
                continue
            if not isinstance(statement, _STATEMENTS):
                out.problems.append(f"statement {number}: the SQL parser could not read it")
                continue
            statement = normalize_identifiers(statement, dialect=dialect)
            tables = statement_tables(statement, schema, variables)
            if _is_temporary(statement):
                temporary.update(_ref(t, schema, variables) for t in _unwrap(statement.this))
            out.add(tables)
    out.reads = [t for t in out.reads if t not in temporary]
    out.writes = [t for t in out.writes if t not in temporary]
    return out


def table_ref(text: str, *, engine: str | None, schema: str) -> TableRef | None:
    """A table named in configuration (`table` or `schema.table`), or None if unreadable."""
    dialect = DIALECTS.get(engine or "")
    variables = _Variables()
    try:
        table = sqlglot.parse_one(variables.hide(text), into=exp.Table, read=dialect)
    except SqlglotError:
        return None
    table = normalize_identifiers(table, dialect=dialect)
    if not isinstance(table, exp.Table) or not table.name:
        return None
    return _ref(table, schema, variables)


def _is_temporary(statement: exp.Expression) -> bool:
    return isinstance(statement, exp.Create) and _targets(statement)[2]


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:199] + "…"
