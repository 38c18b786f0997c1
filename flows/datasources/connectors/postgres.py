"""PostgreSQL data sources (psycopg 3), connected to the address the policy checked."""

from __future__ import annotations

import math
import os
import uuid
from contextlib import contextmanager
from typing import Any

import psycopg

from flows.choices import Engine

from .. import netpolicy
from .base import Connection, ConnectorError, json_value

# A path that never exists (inside the code tree, which only its owner can write): libpq
# then reads no password file at all instead of the worker's ~/.pgpass.
NO_PASSFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".no-pgpass", "pgpass")


class PostgresConnection(Connection):
    """psycopg 3; `statement_timeout` per statement, cancelled with `cancel_safe()`."""

    engine = Engine.POSTGRESQL
    driver_errors = (psycopg.Error,)

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
