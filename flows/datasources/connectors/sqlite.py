"""SQLite data sources: files in the directories the operator allows, never ATTACH."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from flows.choices import Engine

from .. import netpolicy
from .base import Connection, ConnectorError


class SQLiteConnection(Connection):
    """sqlite3 on a file the policy allows; a progress handler enforces the deadline."""

    engine = Engine.SQLITE
    placeholder = "?"
    driver_errors = (sqlite3.Error,)

    def open(self, connect_timeout: float) -> None:
        slug = self.ds.tenant.slug
        # The tenant's folders exist before the first file is created in one of them.
        netpolicy.tenant_sqlite_dirs(slug, create=True)
        try:
            path = netpolicy.check_sqlite_path(self.ds.database, tenant_slug=slug)
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
