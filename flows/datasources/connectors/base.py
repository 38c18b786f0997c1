"""What every data source connection shares: errors, options, value conversion, the
`Connection` base class (statements, streaming, batched inserts, timeouts, cancel).

Each engine subclasses `Connection` in its own module (postgres, mysql, sqlite); the
package's `connect()` picks one.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from flows.choices import Engine

from .. import netpolicy

DEFAULT_CONNECT_TIMEOUT = 10.0
# The server-side timeout fires first; the timer only catches what it cannot (MySQL DML).
BACKSTOP_GRACE = 2.0
MAX_ERROR_LENGTH = 500

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
    # Exceptions of the driver (beyond OSError, ValueError, TypeError) turned into ConnectorError.
    driver_errors: tuple[type[BaseException], ...] = ()

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
        except (*self.driver_errors, OSError, ValueError, TypeError) as exc:
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
