"""A node's lifecycle on a worker: claim it, execute it, record what happened, then what follows.

- claim.py: queued -> running with one status-guarded statement (a duplicate, late or
  stopped delivery finds nothing to claim);
- execute.py: render the node's configuration and run its node type, outside any
  transaction;
- record.py: record a success and queue what it made ready, in one short transaction
  under the run's lock (the hot path), or any other outcome;
- retry.py: a failure that is retried, a deferral (wait, dependency_check) that comes
  back later without holding a worker, a node whose worker was lost.

PostgreSQL is the source of truth: every transition to a terminal state, every new
attempt and every decision happens in a transaction holding the run's row lock.
"""

from __future__ import annotations

import time

from operations.reconnect import reconnecting

from .. import slots
from .claim import Claim, node_claim, worker_name
from .execute import Deferred, Failure, Success, node_run_claimed
from .record import node_finish
from .retry import LOST_PREFIX, node_lost

__all__ = [
    "LOST_PREFIX",
    "Claim",
    "Deferred",
    "Failure",
    "Success",
    "node_claim",
    "node_execute",
    "node_finish",
    "node_lost",
    "node_run_claimed",
    "worker_name",
]


def node_execute(node_run_id: int, *, budget: float | None = None) -> None:
    """Claim a queued node run, execute it and record what follows (the node task's body).

    With a `budget` (seconds left before the task's soft time limit), the worker goes on
    with one of the nodes its success made ready, without a trip through the broker, as
    long as that node's whole timeout still fits in the budget ("hand-off to self"; the
    other ready nodes are sent to the broker as usual).
    """
    until = time.monotonic() + budget if budget else None
    claim = reconnecting(node_claim, node_run_id)
    if claim is None:
        return
    while claim is not None:
        # A success may hand over the next node already claimed for this worker.
        claim = node_finish(claim, node_run_claimed(claim), continue_until=until)
    # The slot this task held is free: a parked node may take it (fair share).
    if slots.admission_due():
        slots.admit_quietly()
