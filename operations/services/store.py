"""The store: the few statements on the path of every node, in SQL (PostgreSQL and SQLite alike).

A node costs one UPDATE ... RETURNING to claim it and, when it succeeds, one transaction of
three statements: lock the run by decrementing its open-node count, record the result
(guarded by the node still running) and queue the downstream nodes that became ready
(guarded by them still pending). The ORM would issue twice as many round trips.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from contextlib import contextmanager

from django.db import connection, transaction

from operations.models import FlowRun, NodeRun

NR = NodeRun._meta.db_table
FR = FlowRun._meta.db_table

_cache: OrderedDict = OrderedDict()
_lock = threading.Lock()
RUN_CACHE_SIZE = 1024


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _dt(value):
    return connection.ops.adapt_datetimefield_value(value)


def _json(value):
    return connection.ops.adapt_json_value(value, None)


def _load_json(value):
    return json.loads(value) if isinstance(value, str | bytes) else value


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


def claim(node_run_id: int, now, worker: str) -> dict | None:
    """queued -> running for this worker; the node run's fields, or None if not queued.

    PostgreSQL: one statement. Its locking CTE waits while the transaction that queued the
    node commits and then reads the committed status (a plain UPDATE would skip the row as
    still pending, without waiting); the start time is read from the clock at that moment,
    and the commit does not wait for the disk (a lost claim only means the node is sent
    again by the watchdog).
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"WITH cur AS (SELECT id, status, set_config('synchronous_commit', 'off', true)"
                f" FROM {_q(NR)} WHERE id = %s FOR UPDATE)"
                f" UPDATE {_q(NR)} n SET status = %s,"
                " started_at = COALESCE(n.started_at, clock_timestamp()),"
                " heartbeat_at = clock_timestamp(), worker = %s, next_attempt_at = NULL"
                " FROM cur WHERE n.id = cur.id AND cur.status = %s RETURNING "
                + ", ".join(f"n.{c}" for c in CLAIMED)
                + ", LENGTH(n.log)",
                [node_run_id, "running", worker, "queued"],
            )
        else:
            cursor.execute(
                f"UPDATE {_q(NR)} SET status = %s, started_at = COALESCE(started_at, %s),"
                " heartbeat_at = %s, worker = %s, next_attempt_at = NULL"
                " WHERE id = %s AND status = %s RETURNING " + ", ".join(CLAIMED) + ", LENGTH(log)",
                ["running", _dt(now), _dt(now), worker, node_run_id, "queued"],
            )
        row = cursor.fetchone()
    if row is None:
        return None
    out = dict(zip(CLAIMED[:7], row[:7], strict=True))
    out["defer_state"] = _load_json(row[7]) or {}
    out["log_length"] = row[8] or 0
    return out


def run_info(run_id: int) -> dict:
    """The run's fixed facts (mode, flow, version, times); cached per process on PostgreSQL.

    Not cached on SQLite, whose ids come back after a table is emptied (test databases).
    """
    cacheable = connection.vendor != "sqlite"
    if cacheable:
        with _lock:
            info = _cache.get(run_id)
            if info is not None:
                _cache.move_to_end(run_id)
                return info
    info = (
        FlowRun.objects.filter(pk=run_id)
        .values(
            "tenant_id",
            "flow_id",
            "version_id",
            "mode",
            "status",
            "business_time",
            "created_at",
            "version__created_at",
        )
        .first()
    )
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
    """Lock the run row by closing one node; its fields, or None when no node is open.

    `relaxed` makes the transaction's commit not wait for the disk (in the same round trip).
    """
    fields = (
        "status",
        "nodes_open",
        "nodes_total",
        "error_policy",
        "concurrency_policy",
        "previous_run_id",
        "has_successors",
        "batch",
        "started_at",
        "error",
    )
    extra = ""
    if relaxed and connection.vendor == "postgresql":
        extra = ", set_config('synchronous_commit', 'off', true)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_q(FR)} SET nodes_open = nodes_open - 1 WHERE id = %s AND nodes_open > 0"
            " RETURNING " + ", ".join(fields) + extra,
            [run_id],
        )
        row = cursor.fetchone()
    return dict(zip(fields, row[: len(fields)], strict=True)) if row else None


def record_success(node_run_id: int, *, now, output: dict, branch, rendered, log_text: str) -> bool:
    """running -> succeeded with its result; False when the node was no longer running."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_q(NR)} SET status = %s, finished_at = %s, output = %s, branch = %s,"
            " rendered_config = %s, log = log || %s WHERE id = %s AND status = %s",
            [
                "succeeded",
                _dt(now),
                _json(output),
                branch,
                _json(rendered) if rendered is not None else None,
                log_text,
                node_run_id,
                "running",
            ],
        )
        return cursor.rowcount == 1


def queue_pending(run_id: int, node_ids: list[int], now) -> list[tuple[int, int]]:
    """pending/waiting -> queued for these nodes of a run; (node_run_id, node_id) queued."""
    if not node_ids:
        return []
    marks = ", ".join(["%s"] * len(node_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_q(NR)} SET status = %s, queued_at = %s, next_attempt_at = NULL"
            f" WHERE run_id = %s AND is_latest = %s AND node_id IN ({marks})"
            " AND status IN (%s, %s) RETURNING id, node_id",
            ["queued", _dt(now), run_id, True, *node_ids, "pending", "waiting"],
        )
        return list(cursor.fetchall())


OPEN = ("pending", "waiting", "queued", "running")
OPEN_SAMPLE = 64


def open_nodes_sample(run_id: int) -> list[int]:
    """Up to OPEN_SAMPLE node ids of the run that are not finished (any of them)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT node_id FROM {_q(NR)} WHERE run_id = %s AND is_latest = %s"
            " AND status IN (%s, %s, %s, %s) LIMIT %s",
            [run_id, True, *OPEN, OPEN_SAMPLE],
        )
        return [row[0] for row in cursor.fetchall()]


# Columns of a run that the decision paths need (never the snapshot).
RUN_FIELDS = (
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
    "version__created_at",
)

RUN_LOCK_FIELDS = (
    "status",
    "nodes_open",
    "nodes_total",
    "error_policy",
    "concurrency_policy",
    "previous_run_id",
    "has_successors",
    "batch",
    "error",
)


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
    data-modifying CTEs (executed in that order, each conditional on the previous): the
    downstream nodes are queued only if the result was recorded and the run is neither
    paused nor gated by a previous run. `claim_for` = (node id, worker): that one of them
    goes straight to running for this worker (the hand-off to self), so its claim costs
    no statement of its own. Returns (run fields, recorded, queued rows, claimed row as
    `claim` returns it, or None).
    """
    relax = ", set_config('synchronous_commit', 'off', true) AS relaxed" if relaxed else ""
    params: list = [run_id]
    sql = (
        f"WITH r AS (UPDATE {_q(FR)} SET nodes_open = nodes_open - 1"
        " WHERE id = %s AND nodes_open > 0 RETURNING " + ", ".join(RUN_LOCK_FIELDS) + relax + "),"
        f" done AS (UPDATE {_q(NR)} SET status = 'succeeded', finished_at = %s, output = %s,"
        " branch = %s, rendered_config = %s, log = log || %s"
        " WHERE id = %s AND status = 'running' AND EXISTS (SELECT 1 FROM r) RETURNING id)"
    )
    params += [
        _dt(now),
        _json(output),
        branch,
        _json(rendered) if rendered is not None else None,
        log_text,
        node_run_id,
    ]
    if queue:
        marks = ", ".join(["%s"] * len(queue))
        keep, worker = claim_for or (None, "")
        sql += (
            f", q AS (UPDATE {_q(NR)} SET"
            " status = CASE WHEN node_id = %s THEN 'running' ELSE 'queued' END,"
            " queued_at = %s, next_attempt_at = NULL,"
            " started_at = CASE WHEN node_id = %s THEN clock_timestamp() ELSE started_at END,"
            " heartbeat_at = CASE WHEN node_id = %s THEN clock_timestamp() ELSE heartbeat_at END,"
            " worker = CASE WHEN node_id = %s THEN %s ELSE worker END"
            f" WHERE run_id = %s AND is_latest AND node_id IN ({marks})"
            " AND status IN ('pending', 'waiting') AND EXISTS (SELECT 1 FROM done)"
            " AND EXISTS (SELECT 1 FROM r WHERE r.status <> 'paused' AND (r.previous_run_id IS NULL"
            " OR r.concurrency_policy NOT IN ('parallel_same_node', 'parallel_downstream')))"
            " RETURNING status, " + ", ".join(CLAIMED) + ", LENGTH(log) AS log_length)"
            " SELECT (SELECT row_to_json(r) FROM r), (SELECT count(*) FROM done),"
            " (SELECT json_agg(row_to_json(q)) FROM q)"
        )
        params += [keep, _dt(now), keep, keep, keep, worker, run_id, *queue]
    else:
        sql += " SELECT (SELECT row_to_json(r) FROM r), (SELECT count(*) FROM done), NULL"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        run_json, done, rows = cursor.fetchone()
    fields = _load_json(run_json)
    if fields is not None:
        fields = {k: fields[k] for k in RUN_LOCK_FIELDS}
    queued, claimed = [], None
    for row in _load_json(rows) or []:
        if row["status"] == "running":
            claimed = {c: row[c] for c in CLAIMED}
            claimed["defer_state"] = _load_json(claimed["defer_state"]) or {}
            claimed["log_length"] = row["log_length"] or 0
        else:
            queued.append((row["id"], row["node_id"]))
    return fields, bool(done), queued, claimed
