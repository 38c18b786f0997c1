"""Engine timings and switches: settings, else the environment, else these defaults."""

import os

from django.conf import settings

DEFAULTS = {
    # A running node's worker refreshes heartbeat_at this often ...
    "TRIBUTARY_HEARTBEAT_SECONDS": 10.0,
    # ... and the watchdog declares its worker lost when it is older than this.
    "TRIBUTARY_HEARTBEAT_TIMEOUT": 60.0,
    # How often a worker checks whether its running nodes were stopped (and flushes logs).
    "TRIBUTARY_CANCEL_POLL_SECONDS": 0.5,
    # A node queued this long without starting is sent again (a message lost by the broker,
    # e.g. a Redis restarted without persistence). A re-send of a message that was merely
    # slow is harmless (the claim is status-guarded: the later copy finds nothing to claim),
    # so this only bounds how long a lost node waits: one heartbeat timeout, like a lost
    # worker, plus up to one watchdog period (15 s).
    "TRIBUTARY_QUEUED_RESEND_AFTER": 60.0,
    # A worker whose database connection breaks (PostgreSQL restarted) retries the claim or
    # the recording of a result on a new connection for this long. Keep it below the
    # heartbeat timeout: a result recorded later than that may find its node declared lost.
    "TRIBUTARY_DB_RECONNECT_SECONDS": 30.0,
    # Retries and deferrals up to this many seconds wait in the broker (countdown); longer
    # ones are parked in the database and sent by the watchdog's sweep.
    "TRIBUTARY_MAX_COUNTDOWN": 30.0,
    # 1: a node's result is committed durably (fsync) before its downstream may start.
    # 0: the commit does not wait for the disk; faster chains, but a PostgreSQL crash can
    # lose the last fraction of a second of results, whose nodes then run again.
    "TRIBUTARY_DURABLE_RESULTS": 1.0,
    # 1: a worker whose node just succeeded executes one of the nodes that became ready
    # itself when its task's time limit still covers that node's timeout (a chain then
    # skips the broker); the others go through the broker. 0: every node goes through it.
    "TRIBUTARY_HAND_OFF_TO_SELF": 1.0,
    # 1: the statements on every node's path are prepared on PostgreSQL (planned once per
    # connection). 0 behind a pooler that cannot keep prepared statements (PgBouncer in
    # transaction mode before 1.21).
    "TRIBUTARY_PREPARED_STATEMENTS": 1.0,
    # Fair share (operations.engine.fair): workers report their pool size at start and this
    # often; a worker not heard from for TRIBUTARY_WORKER_STALE_SECONDS no longer counts.
    "TRIBUTARY_WORKER_REPORT_SECONDS": 15.0,
    "TRIBUTARY_WORKER_STALE_SECONDS": 60.0,
    # The share of the worker slots no tenant's default limit may take while other tenants
    # have flows (at least one slot).
    "TRIBUTARY_FAIR_HEADROOM_SHARE": 0.25,
    # A worker re-reads limits, pools and the slots up at most this often.
    "TRIBUTARY_FAIR_REFRESH_SECONDS": 1.0,
}


def get(name: str) -> float:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, DEFAULTS[name])
    return float(value)
