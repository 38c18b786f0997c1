"""Fair share between tenants, without Django: default limits, who may start, who goes next.

The ORM layer (operations.services.slots) loads the numbers (worker slots up, nodes running
per tenant and per data source, the limits) and asks these functions; a worker's claim asks
`blocked`, the admission of waiting nodes after a slot is released asks `admit`. Every rule
of limits, pools and priorities is here and property-tested (tests/operations/test_fair.py).

- A tenant's limit is its own (`max_running_nodes`) or, while more than one tenant has
  flows, the default: the worker slots that are up minus a headroom that stays free for
  the others (at least one slot; a share of a larger pool). A tenant alone is not capped.
- A data source's pool caps the nodes running on it (`max_concurrency`).
- Who goes next when slots free up: scheduled runs, then manual runs, then backfills; within
  a class the tenant with the fewest running nodes; within a tenant the oldest node.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .core import HELD_BY_POOL, HELD_BY_TENANT_LIMIT

# Run classes, best first (`rank`).
SCHEDULED, MANUAL, BACKFILL = 0, 1, 2
# Modes of a run (the API's `mode`) and their class; any other mode is manual.
_MODE_RANK = {"scheduled": SCHEDULED, "time_range": BACKFILL}


def rank(mode: str) -> int:
    """The priority class of a run of this mode: scheduled < manual < backfill."""
    return _MODE_RANK.get(mode, MANUAL)


def headroom(slots: int, share: float) -> int:
    """Slots kept free for the other tenants: at least one, `share` of a larger pool."""
    if slots <= 1:
        return 0
    return min(slots - 1, max(1, math.floor(slots * share)))


def default_limit(*, slots: int, tenants_with_flows: int, share: float) -> int | None:
    """A tenant's running-node limit when it has none of its own; None: not capped.

    Unknown slots (no worker reported) or a tenant alone on the platform: no cap.
    """
    if slots <= 0 or tenants_with_flows <= 1:
        return None
    return max(1, slots - headroom(slots, share))


def effective_limit(own: int | None, default: int | None) -> int | None:
    """The tenant's own limit wins over the default."""
    return own if own is not None else default


@dataclass(frozen=True)
class Candidate:
    """A node held back by fair share, as admission sees it."""

    key: object
    tenant: object
    rank: int
    # Older first within a tenant (e.g. (run created, node run id)).
    age: tuple
    pools: tuple = ()


def blocked(
    *,
    tenant_running: int,
    limit: int | None,
    pools: Iterable,
    pool_running: Mapping,
    caps: Mapping,
) -> tuple[str, object] | None:
    """Why a node may not start now: (HELD_BY_TENANT_LIMIT, None), (HELD_BY_POOL, pool), or None.

    `tenant_running` and `pool_running` count the nodes already running (not this one).
    """
    if limit is not None and tenant_running >= limit:
        return HELD_BY_TENANT_LIMIT, None
    for pool in pools:
        cap = caps.get(pool)
        if cap is not None and pool_running.get(pool, 0) >= cap:
            return HELD_BY_POOL, pool
    return None


def admit(
    candidates: Iterable[Candidate],
    *,
    in_flight: Mapping,
    limits: Mapping,
    pool_in_flight: Mapping,
    caps: Mapping,
    free: int | None,
) -> list:
    """The keys of the held nodes to send now, in the order they should start.

    `in_flight` counts each tenant's nodes running or already sent, `pool_in_flight` the
    same per pool; `free` is the worker slots not taken (None: unknown, no bound). Greedy:
    each free slot goes to the best candidate that fits its tenant's limit and its pools.
    """
    used = dict(in_flight)
    pool_used = dict(pool_in_flight)
    left = list(candidates)
    chosen: list = []
    while left and (free is None or free > 0):
        best = None
        best_key = None
        for index, c in enumerate(left):
            reason = blocked(
                tenant_running=used.get(c.tenant, 0),
                limit=limits.get(c.tenant),
                pools=c.pools,
                pool_running=pool_used,
                caps=caps,
            )
            if reason is not None:
                continue
            order = (c.rank, used.get(c.tenant, 0), c.age)
            if best is None or order < best_key:
                best, best_key = index, order
        if best is None:
            break
        c = left.pop(best)
        chosen.append(c.key)
        used[c.tenant] = used.get(c.tenant, 0) + 1
        for pool in c.pools:
            pool_used[pool] = pool_used.get(pool, 0) + 1
        if free is not None:
            free -= 1
    return chosen
