"""Surviving a database restart: a unit of work retried on a fresh connection.

A worker keeps its PostgreSQL connection between tasks (CELERY_DB_REUSE_MAX), so after the
database restarts the next statement fails on a dead connection; and a node that was
executing while the database was down must still record its result once it is back.
`reconnecting` runs a unit of work (a claim, the recording of a result, a task's service
call: each one transaction or one statement, so a retry repeats it whole) and, when it
failed because the connection is gone, drops the connection and tries again with backoff
until the database answers or `TRIBUTARY_DB_RECONNECT_SECONDS` have passed.

A node task that meets a locked SQLite database ("database is locked": another process
held the write lock past the busy timeout) retries its unit of work the same way.

Nothing is added on the normal path (no ping before use); any other database error
(a constraint, say) propagates unchanged.
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


def _locked(exc: Exception) -> bool:
    """SQLite's answer when another writer held the database past the busy timeout."""
    return "database is locked" in str(exc) or "database table is locked" in str(exc)


def _why_retry(exc: Exception) -> str | None:
    """Why a unit of work that failed with `exc` may run again: None when it may not."""
    if connection.in_atomic_block:
        return None  # inside a caller's transaction the retry is the caller's to make
    if _locked(exc):
        return "locked"
    if _connection_lost():
        return "lost"
    return None


def reconnecting(work, /, *args, **kwargs):
    """`work(*args, **kwargs)`, again while the database is unreachable or (SQLite) locked.

    A lost connection is dropped and the work runs on a new one; a locked SQLite database
    (another process held its write lock past the busy timeout) is simply tried again.
    Either way with backoff, for up to TRIBUTARY_DB_RECONNECT_SECONDS.
    """
    try:
        return work(*args, **kwargs)
    except GONE as exc:
        why = _why_retry(exc)
        if why is None:
            raise
        error = exc
    deadline = time.monotonic() + conf.get("TRIBUTARY_DB_RECONNECT_SECONDS")
    delay = FIRST_DELAY
    logger.warning(
        "database %s (%s); retrying %s",
        "connection lost" if why == "lost" else "locked",
        str(error).strip(),
        work.__name__,
    )
    while True:
        if why == "lost":
            _drop_connection()
        time.sleep(delay)
        try:
            result = work(*args, **kwargs)
        except GONE as exc:
            why = _why_retry(exc)
            if why is None or time.monotonic() + delay > deadline:
                raise
            delay = min(delay * 2, MAX_DELAY)
            continue
        logger.info("database available again; %s done", work.__name__)
        return result
