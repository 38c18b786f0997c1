"""MySQL and MariaDB data sources (PyMySQL), connected to the address the policy checked."""

from __future__ import annotations

import datetime as dt
import math
from contextlib import contextmanager
from typing import Any

import pymysql
import pymysql.cursors

from flows.choices import Engine

from .base import BACKSTOP_GRACE, Connection, ConnectorError


class MySQLConnection(Connection):
    """PyMySQL; MariaDB `max_statement_time` or MySQL `max_execution_time`, `KILL QUERY` to cancel."""

    engine = Engine.MYSQL
    quote_char = "`"
    driver_errors = (pymysql.MySQLError,)

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
