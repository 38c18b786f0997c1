"""DB-API connections to data sources: policy-checked, time-limited and cancellable.

`connect(ds, timeout=...)` opens PostgreSQL (psycopg 3), MySQL/MariaDB (PyMySQL) or SQLite
connections in autocommit mode. The node's remaining time is set on the session before each
statement (PostgreSQL `statement_timeout`, MariaDB `max_statement_time`, MySQL
`max_execution_time`, SQLite a progress handler), and a timer cancels the connection's work
at the deadline as a backstop. `cancel()` may be called from any thread. Every error is
re-raised as `ConnectorError` with the password scrubbed from its message.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from flows.choices import Engine

from .base import (
    ALLOWED_OPTIONS,
    DEFAULT_CONNECT_TIMEOUT,
    Connection,
    ConnectorError,
    StatementCancelled,
    StatementResult,
    StatementTimeout,
    default_port,
    is_identifier,
    json_value,
    text_value,
    validate_options,
)
from .mysql import MySQLConnection
from .postgres import PostgresConnection
from .sqlite import SQLiteConnection

__all__ = [
    "ALLOWED_OPTIONS",
    "Connection",
    "ConnectorError",
    "MySQLConnection",
    "PostgresConnection",
    "SQLiteConnection",
    "StatementCancelled",
    "StatementResult",
    "StatementTimeout",
    "connect",
    "default_port",
    "is_identifier",
    "json_value",
    "text_value",
    "validate_options",
]


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
