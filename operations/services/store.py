"""The store: the few statements on the path of every node, in SQL (PostgreSQL and SQLite alike).

A node costs one UPDATE ... RETURNING to claim it and, when it succeeds, one transaction of
three statements: lock the run by decrementing its open-node count, record the result
(guarded by the node still running) and queue the downstream nodes that became ready
(guarded by them still not queued). The ORM would issue twice as many round trips.

No rule is written here: every state, run status and policy a statement compares with is
a parameter taken from the engine (operations.engine.core) or the choices, and what a
statement queues is what the engine decided (core.queue_directly).
"""

from __future__ import annotations

import functools
import json
import threading
from collections import OrderedDict
from contextlib import contextmanager

from django.db import connection, transaction

from operations import conf
from operations.choices import RunStatus, WaitingReason
from operations.engine.core import (
    CLAIMABLE,
    NOT_QUEUED,
    OPEN,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    WAITING,
)
from operations.models import FlowRun, NodeRun

NR = NodeRun._meta.db_table
FR = FlowRun._meta.db_table

# The columns of a run the engine reads, for every statement and query that reads a run
# (never the snapshot). Of these, run_info caches the ones fixed once a run is active.
RUN_COLUMNS = (
    "id",
    "tenant_id",
    "flow_id",
    "version_id",
    "mode",
    "status",
    "error_policy",
    "concurrency_policy",
    "previous_run_id",
    "has_successors",
    "batch",
    "nodes_open",
    "nodes_total",
    "created_at",
    "started_at",
    "business_time",
    "finished_at",
    "error",
)
# The ORM's spelling, with the version's creation time (the plan cache's key).
RUN_FIELDS = (*RUN_COLUMNS, "version__created_at", "node_scope")
# Run statuses in which no node starts (the engine's `paused`).
PAUSED = (RunStatus.PAUSED,)

# A statement is prepared on its second execution on a connection (psycopg counts them).
PREPARE_AFTER = 1

_cache: OrderedDict = OrderedDict()
_lock = threading.Lock()
RUN_CACHE_SIZE = 1024


def _hot_cursor():
    """A cursor for the statements every node runs (see the module): on PostgreSQL they are
    bound on the server and prepared, so a connection plans each of them once, not on every
    call (planning was a third of their time). TRIBUTARY_PREPARED_STATEMENTS=0 turns this off
    behind a pooler that cannot keep prepared statements (PgBouncer in transaction mode
    before 1.21). Django's own cursors stay client-bound and unprepared.
    """
    if connection.vendor != "postgresql" or not conf.get("TRIBUTARY_PREPARED_STATEMENTS"):
        return connection.cursor()
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:  # Django's default: nothing is ever prepared
        raw.prepare_threshold = PREPARE_AFTER
    # Wrapped as Django wraps its own cursors: query logging, execute wrappers, errors.
    return connection._prepare_cursor(_prepared_cursor_class()(raw))


@functools.cache
def _prepared_cursor_class():
    import psycopg
    from django.db.backends.postgresql.base import ServerBindingCursor
    from psycopg import postgres

    timestamptz = postgres.types["timestamptz"].oid
    # psycopg's own loader (compiled, in psycopg[binary]). Django registers a Python
    # subclass of it on every connection, which parsed the recording's four run times in
    # about 7% of a node's time on the hot path (py-spy). Both give the same instant, in
    # the connection's time zone (UTC, which Django sets with USE_TZ).
    loader = psycopg.adapters.get_loader(timestamptz, psycopg.pq.Format.TEXT)

    class PreparedCursor(ServerBindingCursor):
        """Django's server-binding cursor, whose executions of a prepared statement still
        show in Django's query log (it reads `_query`, which psycopg 3.3 sets only when it
        sends the statement's text; tests/operations/test_hot_path_queries.py reads it),
        and which reads times with psycopg's own loader."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.adapters.register_loader(timestamptz, loader)

        def _send_query_prepared(self, name, pgq, *, binary=None):
            self._query = pgq
            return super()._send_query_prepared(name, pgq, binary=binary)

    return PreparedCursor


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _dt(value):
    return connection.ops.adapt_datetimefield_value(value)


def _json(value):
    return connection.ops.adapt_json_value(value, None)


def _load_json(value):
    return json.loads(value) if isinstance(value, str | bytes) else value


def _marks(values) -> str:
    return ", ".join(["%s"] * len(values))


@contextmanager
def relaxed_commit():
    """A transaction whose commit does not wait for the disk (PostgreSQL).

    For writes whose loss in a database crash is harmless: a claim (the node goes back to
    queued and the watchdog sends it again), a heartbeat, a log flush. A later ordinary
    commit (a node's result) makes everything before it durable too, since the WAL is
    written in order.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


CLAIMED = (
    "id",
    "tenant_id",
    "run_id",
    "node_id",
    "node_name",
    "node_type",
    "attempt",
    "defer_state",
)


def claim(node_run_id: int, now, worker: str, *, pools: str | None = None) -> dict | None:
    """queued (or deferred) -> running for this worker; the node run's fields, or None.

    PostgreSQL: one statement. Its locking CTE waits while the transaction that queued the
    node commits and then reads the committed status (a plain UPDATE would skip the row as
    still pending, without waiting); the start time is read from the clock at that moment,
    and the commit does not wait for the disk (a lost claim only means the node is sent
    again by the watchdog). A deferred node keeps the start time of its first check.
    `pools` (fair share): the data sources the node runs on, recorded in the same statement.
    """
    claimable = sorted(CLAIMABLE)
    extra, extra_params = ("", []) if pools is None else (", pools = %s", [pools])
    with _hot_cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"WITH cur AS (SELECT id, status, set_config('synchronous_commit', 'off', true)"
                f" FROM {_q(NR)} WHERE id = %s FOR UPDATE)"
                f" UPDATE {_q(NR)} n SET status = %s,"
                " started_at = COALESCE(n.started_at, clock_timestamp()),"
                " heartbeat_at = clock_timestamp(), worker = %s, next_attempt_at = NULL"
                + extra
                + f" FROM cur WHERE n.id = cur.id AND cur.status IN ({_marks(claimable)})"
                " RETURNING " + ", ".join(f"n.{c}" for c in CLAIMED) + ", LENGTH(n.log)",
                [node_run_id, RUNNING, worker, *extra_params, *claimable],
            )
        else:
            cursor.execute(
                f"UPDATE {_q(NR)} SET status = %s, started_at = COALESCE(started_at, %s),"
                " heartbeat_at = %s, worker = %s, next_attempt_at = NULL"
                + extra
                + f" WHERE id = %s AND status IN ({_marks(claimable)}) RETURNING "
                + ", ".join(CLAIMED)
                + ", LENGTH(log)",
                [RUNNING, _dt(now), _dt(now), worker, *extra_params, node_run_id, *claimable],
            )
        row = cursor.fetchone()
    if row is None:
        return None
    out = dict(zip(CLAIMED[:7], row[:7], strict=True))
    out["defer_state"] = _load_json(row[7]) or {}
    out["log_length"] = row[8] or 0
    return out


def slots_in_use(tenant_id: int, pools: list[int]) -> tuple[int, dict]:
    """Nodes running now: the tenant's, and on each of these pools (one statement).

    Read after the slot locks (locking.lock_slots) in its own statement, so it sees every
    claim committed before them.
    """
    parts = [f"(SELECT count(*) FROM {_q(NR)} WHERE tenant_id = %s AND status = %s)"]
    params: list = [tenant_id, RUNNING]
    for pool in pools:
        parts.append(f"(SELECT count(*) FROM {_q(NR)} WHERE status = %s AND pools LIKE %s)")
        params += [RUNNING, f"%,{int(pool)},%"]
    with _hot_cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts), params)
        row = cursor.fetchone()
    return row[0], dict(zip(pools, row[1:], strict=True))


def slots_and_limits(tenant_id: int, pools) -> tuple[int, dict, int | None, dict]:
    """What a claim under fair share decides on, read now in one statement: the tenant's
    running nodes, those on each pool, the tenant's own limit and the pools' caps.

    (running, {pool: running}, own limit or None, {pool: cap} for the capped ones.)
    """
    from accounts.models import Tenant
    from flows.models import DataSource

    pools = [int(p) for p in pools]
    parts = [
        f"(SELECT count(*) FROM {_q(NR)} WHERE tenant_id = %s AND status = %s)",
        f"(SELECT max_running_nodes FROM {_q(Tenant._meta.db_table)} WHERE id = %s)",
    ]
    params: list = [tenant_id, RUNNING, tenant_id]
    for pool in pools:
        parts.append(f"(SELECT count(*) FROM {_q(NR)} WHERE status = %s AND pools LIKE %s)")
        parts.append(f"(SELECT max_concurrency FROM {_q(DataSource._meta.db_table)} WHERE id = %s)")
        params += [RUNNING, f"%,{pool},%", pool]
    with _hot_cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts), params)
        row = cursor.fetchone()
    running, own, rest = row[0], row[1], row[2:]
    on_pools = {pool: rest[2 * i] for i, pool in enumerate(pools)}
    caps = {pool: rest[2 * i + 1] for i, pool in enumerate(pools) if rest[2 * i + 1] is not None}
    return running, on_pools, own, caps


def park(node_run_id: int, *, reason: str, detail: str, pools: str) -> bool:
    """queued -> waiting, held back by fair share; False when it was no longer queued."""
    with _hot_cursor() as cursor:
        cursor.execute(
            f"UPDATE {_q(NR)} SET status = %s, waiting_reason = %s, waiting_detail = %s,"
            " pools = %s, queued_at = NULL WHERE id = %s AND status = %s",
            [WAITING, reason, detail[:200], pools, node_run_id, QUEUED],
        )
        return cursor.rowcount == 1


def unclaim_park(node_run_id: int, *, reason: str, detail: str, pools: str) -> bool:
    """running -> waiting for a node this worker has just claimed without seeing a limit or
    cap set a moment ago (slots.claim_fair): as if it had been parked instead."""
    with _hot_cursor() as cursor:
        cursor.execute(
            f"UPDATE {_q(NR)} SET status = %s, started_at = NULL, heartbeat_at = NULL,"
            " worker = '', waiting_reason = %s, waiting_detail = %s, pools = %s,"
            " queued_at = NULL WHERE id = %s AND status = %s",
            [WAITING, reason, detail[:200], pools, node_run_id, RUNNING],
        )
        return cursor.rowcount == 1


def record_pools(node_run_id: int, pools: str) -> None:
    """The data sources a running node runs on (fair share counts them)."""
    with _hot_cursor() as cursor:
        cursor.execute(f"UPDATE {_q(NR)} SET pools = %s WHERE id = %s", [pools, node_run_id])


def run_info(run_id: int) -> dict:
    """The run's columns as a node's claim reads them; cached per process on PostgreSQL.

    Only the columns fixed once the run is active (tenant, flow, version, mode, policies,
    previous run, times) may be read from the cache; the status is refreshed by whoever
    changes it in this process. Not cached on SQLite, whose ids come back after a table
    is emptied (test databases).
    """
    cacheable = connection.vendor != "sqlite"
    if cacheable:
        with _lock:
            info = _cache.get(run_id)
            if info is not None:
                _cache.move_to_end(run_id)
                return info
    # The run's parameter values too: its nodes render them (not a column the engine reads).
    info = FlowRun.objects.filter(pk=run_id).values(*RUN_FIELDS, "parameters").first()
    if info is None:
        return {}
    info["stamp"] = info["version__created_at"] if info["version_id"] else info["created_at"]
    if cacheable:
        with _lock:
            _cache[run_id] = info
            while len(_cache) > RUN_CACHE_SIZE:
                _cache.popitem(last=False)
    return info


def lock_run_closing_one(run_id: int, *, relaxed: bool = False) -> dict | None:
    """Lock the run row by closing one node; its columns, or None when no node is open.

    `relaxed` makes the transaction's commit not wait for the disk (in the same round trip).
    """
    extra = ""
    if relaxed and connection.vendor == "postgresql":
        extra = ", set_config('synchronous_commit', 'off', true)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_q(FR)} SET nodes_open = nodes_open - 1 WHERE id = %s AND nodes_open > 0"
            " RETURNING " + ", ".join(RUN_COLUMNS) + extra,
            [run_id],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    fields = dict(zip(RUN_COLUMNS, row[: len(RUN_COLUMNS)], strict=True))
    # SQLite hands back raw column values: let the model read them as the ORM would.
    for name in ("batch", "created_at", "started_at", "business_time", "finished_at"):
        fields[name] = _from_db(name, fields[name])
    return fields


def _from_db(name: str, value):
    field = FlowRun._meta.get_field(name)
    for converter in connection.ops.get_db_converters(field.get_col(FR)):
        value = converter(value, field.get_col(FR), connection)
    return value


def record_success(node_run_id: int, *, now, output: dict, branch, rendered, log_text: str) -> bool:
    """running -> succeeded with its result; False when the node was no longer running."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_q(NR)} SET status = %s, finished_at = %s, output = %s, branch = %s,"
            " rendered_config = %s, log = log || %s WHERE id = %s AND status = %s",
            [
                SUCCEEDED,
                _dt(now),
                _json(output),
                branch,
                _json(rendered) if rendered is not None else None,
                log_text,
                node_run_id,
                RUNNING,
            ],
        )
        return cursor.rowcount == 1


def queue_pending(run_id: int, node_ids: list[int], now) -> list[tuple[int, int]]:
    """Not queued -> queued for these nodes of a run; (node_run_id, node_id) queued."""
    if not node_ids:
        return []
    not_queued = sorted(NOT_QUEUED)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_q(NR)} SET status = %s, queued_at = %s, next_attempt_at = NULL,"
            " waiting_reason = %s"
            f" WHERE run_id = %s AND is_latest = %s AND node_id IN ({_marks(node_ids)})"
            f" AND status IN ({_marks(not_queued)}) RETURNING id, node_id",
            [QUEUED, _dt(now), WaitingReason.NONE, run_id, True, *node_ids, *not_queued],
        )
        return list(cursor.fetchall())


OPEN_SAMPLE = 64


def open_nodes_sample(run_id: int) -> list[int]:
    """Up to OPEN_SAMPLE node ids of the run that are not finished (any of them)."""
    open_states = sorted(OPEN)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT node_id FROM {_q(NR)} WHERE run_id = %s AND is_latest = %s"
            f" AND status IN ({_marks(open_states)}) LIMIT %s",
            [run_id, True, *open_states, OPEN_SAMPLE],
        )
        return [row[0] for row in cursor.fetchall()]


def complete_in_one(
    run_id: int,
    node_run_id: int,
    *,
    now,
    output: dict,
    branch,
    rendered,
    log_text: str,
    queue: list[int],
    relaxed: bool = False,
    claim_for: tuple[int, str] | None = None,
) -> tuple[dict | None, bool, list[tuple[int, int]], dict | None]:
    """PostgreSQL: lock the run, record the success and queue `queue`, in one statement.

    The three steps of lock_run_closing_one, record_success and queue_pending chained by
    data-modifying CTEs (executed in that order, each conditional on the previous). `queue`
    is what the engine's core.queue_directly decided assuming the run is not paused; the
    statement queues it only if, under the run's lock, that still holds and the nodes are
    still not queued. `claim_for` = (node id, worker): that one of them goes straight to
    running for this worker (the hand-off to self), so its claim costs no statement of its
    own. Returns (run columns, recorded, queued rows, claimed row as `claim` returns it, or
    None).
    """
    relax = ", set_config('synchronous_commit', 'off', true) AS relaxed" if relaxed else ""
    params: list = [run_id]
    sql = (
        f"WITH r AS (UPDATE {_q(FR)} SET nodes_open = nodes_open - 1"
        " WHERE id = %s AND nodes_open > 0 RETURNING " + ", ".join(RUN_COLUMNS) + relax + "),"
        f" done AS (UPDATE {_q(NR)} SET status = %s, finished_at = %s, output = %s,"
        " branch = %s, rendered_config = %s, log = log || %s"
        " WHERE id = %s AND status = %s AND EXISTS (SELECT 1 FROM r) RETURNING id)"
    )
    params += [
        SUCCEEDED,
        _dt(now),
        _json(output),
        branch,
        _json(rendered) if rendered is not None else None,
        log_text,
        node_run_id,
        RUNNING,
    ]
    tail = " FROM (SELECT 1) AS one LEFT JOIN r ON TRUE"
    columns = ", ".join(f"r.{c}" for c in RUN_COLUMNS)
    if queue:
        not_queued = sorted(NOT_QUEUED)
        keep, worker = claim_for or (None, "")
        sql += (
            f", q AS (UPDATE {_q(NR)} SET"
            " status = CASE WHEN node_id = %s THEN %s ELSE %s END,"
            " queued_at = %s, next_attempt_at = NULL, waiting_reason = %s,"
            " started_at = CASE WHEN node_id = %s THEN clock_timestamp() ELSE started_at END,"
            " heartbeat_at = CASE WHEN node_id = %s THEN clock_timestamp() ELSE heartbeat_at END,"
            " worker = CASE WHEN node_id = %s THEN %s ELSE worker END"
            f" WHERE run_id = %s AND is_latest AND node_id IN ({_marks(queue)})"
            f" AND status IN ({_marks(not_queued)}) AND EXISTS (SELECT 1 FROM done)"
            f" AND EXISTS (SELECT 1 FROM r WHERE r.status NOT IN ({_marks(PAUSED)}))"
            " RETURNING status, " + ", ".join(CLAIMED) + ", LENGTH(log) AS log_length)"
            f" SELECT {columns}, (SELECT count(*) FROM done),"
            " (SELECT json_agg(row_to_json(q)) FROM q)" + tail
        )
        params += [keep, RUNNING, QUEUED, _dt(now), WaitingReason.NONE, keep, keep, keep, worker]
        params += [run_id]
        params += [*queue, *not_queued, *PAUSED]
    else:
        sql += f" SELECT {columns}, (SELECT count(*) FROM done), NULL" + tail
    with _hot_cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    n = len(RUN_COLUMNS)
    fields = dict(zip(RUN_COLUMNS, row[:n], strict=True)) if row[0] is not None else None
    done, rows = row[n], row[n + 1]
    queued, claimed = [], None
    for item in _load_json(rows) or []:
        if item["status"] == RUNNING:
            claimed = {c: item[c] for c in CLAIMED}
            claimed["defer_state"] = _load_json(claimed["defer_state"]) or {}
            claimed["log_length"] = item["log_length"] or 0
        else:
            queued.append((item["id"], item["node_id"]))
    return fields, bool(done), queued, claimed
