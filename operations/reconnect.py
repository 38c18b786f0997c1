"""Surviving a database restart: a unit of work retried on a fresh connection.

A worker keeps its PostgreSQL connection between tasks (CELERY_DB_REUSE_MAX), so after the
database restarts the next statement fails on a dead connection; and a node that was
executing while the database was down must still record its result once it is back.
`reconnecting` runs a unit of work (a claim, the recording of a result, a task's service
call: each one transaction or one statement, so a retry repeats it whole) and, when it
failed because the connection is gone, drops the connection and tries again with backoff
until the database answers or `TRIBUTARY_DB_RECONNECT_SECONDS` have passed.

Nothing is added on the normal path (no ping before use); any other database error
(a constraint, a lock wait on SQLite...) propagates unchanged.
"""

from __future__ import annotations

import logging
import time

from django.db import DatabaseError, InterfaceError, OperationalError, connection

from operations import conf

logger = logging.getLogger("tributary.engine")

GONE = (OperationalError, InterfaceError)
FIRST_DELAY = 0.1
MAX_DELAY = 2.0


def _connection_lost() -> bool:
    """After a failed statement outside any transaction: is the connection unusable?"""
    if connection.connection is None:  # Django already dropped it (failed rollback)
        return True
    return not connection.is_usable()


def _drop_connection() -> None:
    try:
        connection.close()
    except DatabaseError:
        connection.connection = None


def reconnecting(work, /, *args, **kwargs):
    """`work(*args, **kwargs)`, again on a new connection while the database is unreachable."""
    try:
        return work(*args, **kwargs)
    except GONE as exc:
        # Inside a caller's transaction the retry is the caller's to make.
        if connection.in_atomic_block or not _connection_lost():
            raise
        error = exc
    deadline = time.monotonic() + conf.get("TRIBUTARY_DB_RECONNECT_SECONDS")
    delay = FIRST_DELAY
    logger.warning("database connection lost (%s); retrying %s", str(error).strip(), work.__name__)
    while True:
        _drop_connection()
        time.sleep(delay)
        try:
            result = work(*args, **kwargs)
        except GONE:
            if (
                connection.in_atomic_block
                or not _connection_lost()
                or time.monotonic() + delay > deadline
            ):
                raise
            delay = min(delay * 2, MAX_DELAY)
            continue
        logger.info("database connection restored; %s done", work.__name__)
        return result
