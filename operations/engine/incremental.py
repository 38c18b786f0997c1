"""The incremental step after a node finished: only its downstream nodes are examined.

Equivalent to :func:`operations.engine.core.decide` for a run in which every failure and
stop has already been decided by a full ``decide`` (the engine does that on those paths),
and it touches O(downstream) nodes instead of the whole DAG. Pure like core: the caller
passes functions that load node states on demand. A test compares the two on random DAGs.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable

from .core import (
    NOT_STARTED,
    PENDING,
    QUEUED,
    SKIPPED,
    STOPPED,
    TERMINAL,
    UPSTREAM_FAILED,
    WAITING,
    Dag,
    Decision,
    _classify,
)

# Verdict codes of core._classify, by meaning.
_SATISFIED, _DEAD, _BAD, _UNRESOLVED = range(4)
# Above this many upstreams a node is first checked with `any_open`.
MANY_UPSTREAMS = 16


def advance(
    dag: Dag,
    topo_index: dict,
    changed: Iterable,
    states: dict,
    branches: dict,
    *,
    load: Callable[[set], None],
    gate: Callable[[set], set] = lambda _nodes: set(),
    any_open: Callable[[set], bool] | None = None,
    paused: bool = False,
    many: int = MANY_UPSTREAMS,
) -> Decision:
    """Transitions caused by `changed` nodes reaching a terminal state.

    `states`/`branches` hold what is known and are completed in place by `load(nodes)`;
    `gate(nodes)` returns those held by the concurrency policy. For a node with many
    upstreams, `any_open(upstreams)` first asks whether one of them is still unfinished (a
    cheap EXISTS) before every upstream state is loaded: with no failure decided yet for
    this node, an unfinished upstream leaves it unresolved, exactly as in core.decide.
    """
    decision = Decision()
    heap: list = []
    queued: set = set()

    def push_downstream(node) -> None:
        for v in dag.downstream(node):
            if v not in queued:
                queued.add(v)
                heapq.heappush(heap, (topo_index[v], v))

    for node in changed:
        push_downstream(node)

    candidates: set = set()
    while heap:
        _, v = heapq.heappop(heap)
        if v in states and states[v] not in NOT_STARTED:
            continue
        ups = dag.upstream(v)
        if any_open is not None and len(ups) > many:
            # A node waiting on many upstreams: while one is unfinished it stays unresolved.
            if any(states[u] not in TERMINAL for u in ups if u in states):
                continue
            unknown = {u for u in ups if u not in states}
            if unknown and any_open(unknown):
                continue
        missing = ({v} | ups) - states.keys()
        if missing:
            # Load the rest of the frontier's small needs in the same query.
            for _, w in heap:
                w_ups = dag.upstream(w)
                if len(w_ups) <= many:
                    missing |= ({w} | w_ups) - states.keys()
            load(missing)
        if states[v] not in NOT_STARTED:
            continue
        verdicts = {
            _classify(states[u], states[u] == STOPPED, branch, branches.get(u))
            for u, branch in dag.upstream_edges(v)
        }
        if _BAD in verdicts:
            decision.upstream_failed.add(v)
            states[v] = UPSTREAM_FAILED
            push_downstream(v)
        elif verdicts == {_DEAD}:
            decision.skipped.add(v)
            states[v] = SKIPPED
            push_downstream(v)
        elif _UNRESOLVED in verdicts:
            continue
        else:
            candidates.add(v)

    if candidates:
        blocked = gate(candidates)
        for v in candidates:
            if v in blocked:
                if states[v] == PENDING:
                    decision.waiting.add(v)
                    states[v] = WAITING
            elif not paused:
                decision.ready.add(v)
                states[v] = QUEUED
    return decision
