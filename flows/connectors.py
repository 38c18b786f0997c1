"""DB-API connections to data sources: policy-checked, time-limited and cancellable.

`connect(ds, timeout=...)` opens PostgreSQL (psycopg 3), MySQL/MariaDB (PyMySQL) or SQLite
connections in autocommit mode. The node's remaining time is set on the session before each
statement (PostgreSQL `statement_timeout`, MariaDB `max_statement_time`, MySQL
`max_execution_time`, SQLite a progress handler), and a timer cancels the connection's work
at the deadline as a backstop. `cancel()` may be called from any thread. Every error is
re-raised as `ConnectorError` with the password scrubbed from its message.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import psycopg
import pymysql
import pymysql.cursors
from django.core.exceptions import ImproperlyConfigured

from . import netpolicy
from .choices import Engine

DEFAULT_CONNECT_TIMEOUT = 10.0
# The server-side timeout fires first; the timer only catches what it cannot (MySQL DML).
BACKSTOP_GRACE = 2.0
MAX_ERROR_LENGTH = 500
# A path that never exists (inside the code tree, which only its owner can write): libpq
# then reads no password file at all instead of the worker's ~/.pgpass.
NO_PASSFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".no-pgpass", "pgpass")

# Options a data source may set, per engine; anything else could make the driver read files
# on the worker (PyMySQL read_default_file, libpq service files) or change what it reaches.
ALLOWED_OPTIONS: dict[str, dict[str, Any]] = {
    Engine.POSTGRESQL: {
        "sslmode": ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
        "application_name": str,
    },
    Engine.MYSQL: {"charset": ("utf8mb4", "utf8", "latin1", "ascii", "binary")},
    Engine.SQLITE: {"create": bool, "read_only": bool},
}
IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}(\.[A-Za-z_][A-Za-z0-9_$]{0,62})?$")


class ConnectorError(Exception):
    """Connecting or running a statement failed; the message is safe to show and log."""


class StatementTimeout(ConnectorError):
    """The statement ran past the node's timeout and was cancelled on the server."""


class StatementCancelled(ConnectorError):
    """The statement was cancelled on request (run stopped)."""


@dataclass
class StatementResult:
    """What one statement produced: columns (None for non-queries), first rows, row count."""

    columns: list[str] | None
    rows: list[tuple]
    rowcount: int

    @property
    def is_query(self) -> bool:
        return self.columns is not None


def validate_options(engine: str, options: Any) -> list[str]:
    """Messages for options the engine does not accept (empty when fine)."""
    if options in (None, ""):
        return []
    if not isinstance(options, dict):
        return ["Options must be a JSON object."]
    allowed = ALLOWED_OPTIONS.get(engine, {})
    problems = []
    for key, value in options.items():
        rule = allowed.get(key)
        if rule is None:
            names = ", ".join(sorted(allowed)) or "none"
            problems.append(f"Unknown option '{key}' for {engine} (allowed: {names}).")
        elif isinstance(rule, tuple) and value not in rule:
            problems.append(f"Option '{key}' must be one of: {', '.join(rule)}.")
        elif rule is bool and not isinstance(value, bool):
            problems.append(f"Option '{key}' must be true or false.")
        elif rule is str and (not isinstance(value, str) or len(value) > 64):
            problems.append(f"Option '{key}' must be a short text.")
    return problems


def is_identifier(name: str) -> bool:
    """A table name: `table` or `schema.table`, letters, digits, `_` and `$`."""
    return bool(isinstance(name, str) and IDENTIFIER_RE.match(name))


def default_port(engine: str) -> int | None:
    return {Engine.POSTGRESQL: 5432, Engine.MYSQL: 3306}.get(engine)


def check_destination(ds) -> None:
    """Raise ConnectorError if the policy refuses the data source's host or file."""
    try:
        if ds.engine == Engine.SQLITE:
            netpolicy.check_sqlite_path(ds.database)
        else:
            netpolicy.check(ds.host, ds.port or default_port(ds.engine), database=ds.database or "")
    except netpolicy.NetworkPolicyError as exc:
        raise ConnectorError(str(exc)) from None


def connect(
    ds, *, timeout: float | None = None, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
) -> Connection:
    """Open a connection to data source `ds`; `timeout` bounds everything run on it (seconds)."""
    try:
        password = ds.password
    except ImproperlyConfigured:
        raise ConnectorError(
            f"The password of data source '{ds.name}' cannot be decrypted with the configured keys."
        ) from None
    if timeout is not None:
        connect_timeout = max(1.0, min(connect_timeout, timeout))
    options = ds.options or {}
    problems = validate_options(ds.engine, options)
    if problems:
        raise ConnectorError(problems[0])
    if ds.engine == Engine.SQLITE:
        conn: Connection = SQLiteConnection(ds, password, timeout)
    elif ds.engine == Engine.POSTGRESQL:
        conn = PostgresConnection(ds, password, timeout)
    elif ds.engine == Engine.MYSQL:
        conn = MySQLConnection(ds, password, timeout)
    else:
        raise ConnectorError(f"Unknown engine '{ds.engine}'.")
    conn.open(connect_timeout)
    return conn


def json_value(value: Any) -> Any:
    """A database value as something JSON can hold (node outputs are stored as JSON)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return str(value)


def text_value(value: Any) -> str:
    """A database value as the text an output variable holds (NULL → empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


class Connection:
    """A data source connection: statements, streaming reads, batched inserts, cancel."""

    engine: str = ""
    quote_char = '"'
    placeholder = "%s"

    def __init__(self, ds, password: str, timeout: float | None):
        self.ds = ds
        self._password = password
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout if timeout else None
        self.raw: Any = None
        self._cancelled = False
        self._timed_out = False
        self._closed = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._session_timeout: float | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def open(self, connect_timeout: float) -> None:
        raise NotImplementedError

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
        try:
            if self.raw is not None:
                self.raw.close()
        except Exception:  # noqa: BLE001 - closing a broken connection must not mask the real error
            pass

    def cancel(self) -> None:
        """Abort the running statement (safe from another thread); later statements fail too."""
        with self._lock:
            self._cancelled = True
            if self._closed or self.raw is None:
                return
        try:
            self._cancel_running()
        except Exception:  # noqa: BLE001 - best effort: the flag still stops further statements
            pass

    def _cancel_running(self) -> None:
        raise NotImplementedError

    def _start_backstop(self) -> None:
        if self.timeout:
            self._timer = threading.Timer(self.timeout + BACKSTOP_GRACE, self._deadline_reached)
            self._timer.daemon = True
            self._timer.start()

    def _deadline_reached(self) -> None:
        self._timed_out = True
        self.cancel()

    # --- statements --------------------------------------------------------------------

    def run(
        self, sql: str, *, max_rows: int = 20, single: bool = False, read_only: bool = False
    ) -> StatementResult:
        """Run one statement; keep up to `max_rows` rows of a query and count the others.

        `single` makes the server refuse several statements; `read_only` runs it in a
        read-only transaction, so a check cannot change data.
        """
        if read_only:
            with self.transaction(read_only=True):
                return self.run(sql, max_rows=max_rows, single=single)
        with self._statement():
            cur = self.raw.cursor()
            try:
                self._execute(cur, sql, single=single)
                if cur.description is None:
                    return StatementResult(None, [], max(cur.rowcount, 0))
                columns = [str(d[0]) for d in cur.description]
                rows = [tuple(r) for r in cur.fetchmany(max_rows)] if max_rows else []
                total = cur.rowcount
                if total is None or total < 0:
                    total = len(rows) + sum(1 for _ in iter(cur.fetchone, None))
                return StatementResult(columns, rows, total)
            finally:
                cur.close()

    def _execute(self, cur, sql: str, *, single: bool) -> None:
        cur.execute(sql)

    @contextmanager
    def stream(
        self, sql: str, batch_size: int
    ) -> Iterator[tuple[list[str], Iterator[list[tuple]]]]:
        """Yield (columns, batches) of one query, read-only, from a server-side / unbuffered cursor."""
        with self._statement():
            with self.transaction(read_only=True), self._stream_cursor() as cur:
                self._execute_stream(cur, sql)
                if cur.description is None:
                    raise ConnectorError("The source query returns no rows (it is not a SELECT).")
                columns = [str(d[0]) for d in cur.description]

                def batches() -> Iterator[list[tuple]]:
                    while True:
                        with self._statement():
                            rows = cur.fetchmany(batch_size)
                        if not rows:
                            return
                        yield [tuple(r) for r in rows]

                yield columns, batches()

    @contextmanager
    def _stream_cursor(self):
        cur = self.raw.cursor()
        try:
            yield cur
        finally:
            cur.close()

    def _execute_stream(self, cur, sql: str) -> None:
        self._execute(cur, sql, single=True)

    def insert_many(self, table: str, columns: list[str], rows: list[tuple]) -> int:
        """Insert rows into `table`; return how many the database says it wrote."""
        if not rows:
            return 0
        cols = ", ".join(self.quote(c) for c in columns)
        marks = ", ".join([self.placeholder] * len(columns))
        sql = f"INSERT INTO {self.quote_table(table)} ({cols}) VALUES ({marks})"
        adapted = [tuple(self.adapt(v) for v in row) for row in rows]
        with self._statement():
            cur = self.raw.cursor()
            try:
                cur.executemany(sql, adapted)
                count = cur.rowcount
            finally:
                cur.close()
        return count if count is not None and count >= 0 else len(rows)

    def delete_all(self, table: str) -> int:
        with self._statement():
            cur = self.raw.cursor()
            try:
                cur.execute(f"DELETE FROM {self.quote_table(table)}")
                return max(cur.rowcount, 0)
            finally:
                cur.close()

    @contextmanager
    def transaction(self, *, read_only: bool = False):
        """One transaction around the block (the connection is in autocommit otherwise)."""
        with self._statement():
            self._begin(read_only)
        try:
            yield self
        except BaseException:
            try:
                self._rollback()
            except Exception:  # noqa: BLE001 - the original error matters more
                pass
            raise
        with self._statement():
            self._commit()

    def _begin(self, read_only: bool) -> None:
        self.raw.execute("BEGIN READ ONLY" if read_only else "BEGIN")

    def _commit(self) -> None:
        self.raw.execute("COMMIT")

    def _rollback(self) -> None:
        self.raw.execute("ROLLBACK")

    def adapt(self, value: Any) -> Any:
        """A value read from another engine, in a form this driver can write."""
        if isinstance(value, dict | list):
            import json

            return json.dumps(json_value(value))
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, memoryview):
            return bytes(value)
        return value

    def quote(self, name: str) -> str:
        q = self.quote_char
        quoted = q + str(name).replace(q, q + q) + q
        # pyformat drivers read "%" as the start of a placeholder.
        return quoted.replace("%", "%%") if self.placeholder == "%s" else quoted

    def quote_table(self, table: str) -> str:
        if not is_identifier(table):
            raise ConnectorError(f"'{table}' is not a valid table name.")
        return ".".join(self.quote(part) for part in table.split("."))

    # --- timeouts and errors -----------------------------------------------------------

    def remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return self.deadline - time.monotonic()

    def _apply_timeout(self) -> None:
        remaining = self.remaining()
        if remaining is None:
            return
        if remaining <= 0:
            self._timed_out = True
            raise self._timeout_error()
        # Re-set only when the remaining time dropped noticeably: one round trip saved per statement.
        if self._session_timeout is None or self._session_timeout > remaining + 1.0:
            self._set_session_timeout(max(remaining, 0.001))
            self._session_timeout = remaining

    def _set_session_timeout(self, seconds: float) -> None:
        pass

    def _timeout_error(self) -> StatementTimeout:
        return StatementTimeout(
            f"The statement was cancelled: the node's timeout of {self.timeout:g}s was reached."
        )

    @contextmanager
    def _statement(self):
        if self._cancelled:
            if self._timed_out:
                raise self._timeout_error()
            raise StatementCancelled("The statement was cancelled (the run was stopped).")
        try:
            self._apply_timeout()
            yield
        except ConnectorError:
            raise
        except (
            psycopg.Error,
            pymysql.MySQLError,
            sqlite3.Error,
            OSError,
            ValueError,
            TypeError,
        ) as exc:
            if self._timed_out or self._is_timeout(exc):
                self._timed_out = True
                raise self._timeout_error() from None
            if self._cancelled:
                raise StatementCancelled(
                    "The statement was cancelled (the run was stopped)."
                ) from None
            raise ConnectorError(self.scrub(self._describe(exc))) from None

    def _is_timeout(self, exc: BaseException) -> bool:
        return False

    def _describe(self, exc: BaseException) -> str:
        return str(exc).strip() or type(exc).__name__

    def scrub(self, message: str) -> str:
        """Remove the password (in any quoting) from a message and shorten it."""
        pw = self._password
        if pw and len(pw) >= 4:
            for form in {pw, repr(pw)[1:-1], quote(pw, safe="")}:
                message = message.replace(form, "***")
        message = " ".join(message.split())
        if len(message) > MAX_ERROR_LENGTH:
            message = message[: MAX_ERROR_LENGTH - 1] + "…"
        return message

    def _connect_error(self, exc: BaseException) -> ConnectorError:
        return ConnectorError(
            self.scrub(f"Cannot connect to data source '{self.ds.name}': {self._describe(exc)}")
        )

    def _addresses(self) -> list[str]:
        port = self.ds.port or default_port(self.engine)
        try:
            return netpolicy.check(self.ds.host, port, database=self.ds.database or "")
        except netpolicy.NetworkPolicyError as exc:
            raise ConnectorError(f"Data source '{self.ds.name}': {exc}") from None


class PostgresConnection(Connection):
    engine = Engine.POSTGRESQL

    def open(self, connect_timeout: float) -> None:
        ds = self.ds
        options = ds.options or {}
        last: BaseException | None = None
        for address in self._addresses():
            try:
                self.raw = psycopg.connect(
                    host=netpolicy.normalize_host(ds.host),
                    hostaddr=address,  # the checked address: no second DNS lookup
                    port=ds.port or 5432,
                    dbname=ds.database,
                    user=ds.username,
                    password=self._password,
                    connect_timeout=max(1, math.ceil(connect_timeout)),
                    autocommit=True,
                    application_name=options.get("application_name", "tributary"),
                    sslmode=options.get("sslmode", "prefer"),
                    # Never fall back to the worker's own ~/.pgpass or Kerberos tickets.
                    passfile=NO_PASSFILE,
                    gssencmode="disable",
                )
                break
            except psycopg.Error as exc:
                last = exc
        if self.raw is None:
            raise self._connect_error(last or ConnectorError("no address"))
        self._start_backstop()

    def _set_session_timeout(self, seconds: float) -> None:
        self.raw.execute(f"SET statement_timeout = {max(1, int(seconds * 1000))}")

    def _execute(self, cur, sql: str, *, single: bool) -> None:
        # A prepared statement refuses several commands: the server enforces "one statement".
        if single:
            cur.execute(sql, prepare=True)
        else:
            cur.execute(sql)

    def _cancel_running(self) -> None:
        self.raw.cancel_safe(timeout=5.0)

    def _is_timeout(self, exc: BaseException) -> bool:
        return isinstance(exc, psycopg.errors.QueryCanceled) and "timeout" in str(exc)

    def _describe(self, exc: BaseException) -> str:
        text = str(exc).strip()
        diag = getattr(exc, "diag", None)
        sqlstate = getattr(diag, "sqlstate", None) if diag is not None else None
        return f"{text} (SQLSTATE {sqlstate})" if sqlstate else (text or type(exc).__name__)

    @contextmanager
    def _stream_cursor(self):
        # A named cursor (inside stream()'s transaction): rows arrive batch by batch (FETCH).
        cur = self.raw.cursor(name=f"tributary_stream_{uuid.uuid4().hex[:8]}")
        try:
            yield cur
        finally:
            if not cur.closed:
                cur.close()

    def _execute_stream(self, cur, sql: str) -> None:
        cur.execute(sql)

    def adapt(self, value: Any) -> Any:
        if isinstance(value, dict | list):
            from psycopg.types.json import Json

            return Json(json_value(value))
        return super().adapt(value)


class MySQLConnection(Connection):
    engine = Engine.MYSQL
    quote_char = "`"

    is_mariadb = True

    def _kwargs(self, address: str, connect_timeout: float) -> dict:
        read_timeout = None
        if self.timeout:
            read_timeout = math.ceil(self.timeout + BACKSTOP_GRACE + 5)
        return {
            "host": address,  # the checked address: no second DNS lookup
            "port": self.ds.port or 3306,
            "user": self.ds.username,
            "password": self._password,
            "database": self.ds.database or None,
            "connect_timeout": max(1, math.ceil(connect_timeout)),
            "read_timeout": read_timeout,
            "write_timeout": read_timeout,
            "charset": (self.ds.options or {}).get("charset", "utf8mb4"),
            "autocommit": True,
            "local_infile": False,
            "client_flag": 0,  # no MULTI_STATEMENTS: the server refuses "a; b" in one call
        }

    def open(self, connect_timeout: float) -> None:
        last: BaseException | None = None
        for address in self._addresses():
            try:
                self.raw = pymysql.connect(**self._kwargs(address, connect_timeout))
                self._address = address
                break
            except (pymysql.MySQLError, OSError) as exc:
                last = exc
        if self.raw is None:
            raise self._connect_error(last or ConnectorError("no address"))
        self.is_mariadb = "mariadb" in (self.raw.get_server_info() or "").lower()
        self._thread_id = self.raw.thread_id()
        self._start_backstop()

    def _set_session_timeout(self, seconds: float) -> None:
        cur = self.raw.cursor()
        try:
            if self.is_mariadb:
                cur.execute(f"SET SESSION max_statement_time = {max(seconds, 0.001):.3f}")
            else:  # MySQL: SELECT only; the backstop timer covers the rest
                cur.execute(f"SET SESSION max_execution_time = {max(1, int(seconds * 1000))}")
        finally:
            cur.close()

    def _cancel_running(self) -> None:
        # KILL QUERY over a second connection: the first one is busy waiting for its result.
        killer = pymysql.connect(
            **{**self._kwargs(self._address, 5), "read_timeout": 10, "database": None}
        )
        try:
            with killer.cursor() as cur:
                cur.execute(f"KILL QUERY {int(self._thread_id)}")
        finally:
            killer.close()

    def _is_timeout(self, exc: BaseException) -> bool:
        code = exc.args[0] if exc.args else None
        return code in (1969, 3024)  # MariaDB max_statement_time, MySQL max_execution_time

    def _describe(self, exc: BaseException) -> str:
        if len(exc.args) >= 2 and isinstance(exc.args[0], int):
            return f"MySQL error {exc.args[0]}: {exc.args[1]}"
        return str(exc).strip() or type(exc).__name__

    @contextmanager
    def _stream_cursor(self):
        if self.timeout:
            # An unbuffered read waits on the consumer (the target's inserts); the server's
            # default 60 s write timeout would otherwise drop a slow sync midway.
            with self.raw.cursor() as cur:
                cur.execute(f"SET SESSION net_write_timeout = {max(60, math.ceil(self.timeout))}")
        cur = self.raw.cursor(pymysql.cursors.SSCursor)
        try:
            yield cur
        finally:
            try:
                cur.close()
            except Exception:  # noqa: BLE001 - an aborted unbuffered read leaves the connection unusable
                pass

    def _begin(self, read_only: bool) -> None:
        if read_only:
            with self.raw.cursor() as cur:
                cur.execute("START TRANSACTION READ ONLY")
        else:
            self.raw.begin()

    def _commit(self) -> None:
        self.raw.commit()

    def _rollback(self) -> None:
        self.raw.rollback()

    def adapt(self, value: Any) -> Any:
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            # PyMySQL writes the wall clock and drops the offset: store UTC instead.
            return value.astimezone(dt.UTC).replace(tzinfo=None)
        if isinstance(value, dt.time) and value.tzinfo is not None:
            return value.replace(tzinfo=None)
        return super().adapt(value)


class SQLiteConnection(Connection):
    engine = Engine.SQLITE
    placeholder = "?"

    def open(self, connect_timeout: float) -> None:
        try:
            path = netpolicy.check_sqlite_path(self.ds.database)
        except netpolicy.NetworkPolicyError as exc:
            raise ConnectorError(f"Data source '{self.ds.name}': {exc}") from None
        options = self.ds.options or {}
        mode = "ro" if options.get("read_only") else ("rwc" if options.get("create") else "rw")
        uri = f"file:{quote(str(path))}?mode={mode}"
        try:
            self.raw = sqlite3.connect(
                uri,
                uri=True,
                timeout=connect_timeout,
                isolation_level=None,  # autocommit; transaction() issues BEGIN explicitly
                check_same_thread=False,  # cancel() calls interrupt() from another thread
            )
        except sqlite3.Error as exc:
            raise self._connect_error(exc) from None
        self.raw.set_authorizer(_sqlite_authorizer)
        self.raw.set_progress_handler(self._progress, 1000)

    def _begin(self, read_only: bool) -> None:
        self.raw.execute("BEGIN")
        # query_only lasts for the session; read-only work is the connection's last use.
        self.raw.execute(f"PRAGMA query_only = {1 if read_only else 0}")

    def _progress(self) -> int:
        if self._cancelled:
            return 1
        if self.deadline is not None and time.monotonic() > self.deadline:
            self._timed_out = True
            return 1
        return 0

    def _cancel_running(self) -> None:
        self.raw.interrupt()

    def adapt(self, value: Any) -> Any:
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                value = value.astimezone(dt.UTC).replace(tzinfo=None)
            return value.isoformat(sep=" ")
        if isinstance(value, dt.date | dt.time):
            return value.isoformat()
        if isinstance(value, dt.timedelta):
            return str(value)
        return super().adapt(value)


def _sqlite_authorizer(action: int, *_args) -> int:
    # ATTACH would open any file on the worker, including the platform's own database.
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK
