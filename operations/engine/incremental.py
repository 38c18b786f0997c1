"""The incremental step after a node finished: only its downstream nodes are examined.

It applies core.step, the rule core.decide applies to every node, to the nodes downstream
of the changed ones only, so it reaches exactly the states ``decide`` reaches for a run in
which every failure, stop and pause has already been decided by a full ``decide`` (the
engine does that on those paths), touching O(downstream) nodes instead of the whole DAG.
Pure like core: the caller passes functions that load node states and holds on demand.
tests/operations/test_incremental.py compares the two on random runs.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable

from .core import (
    ALL_DONE,
    ALL_SUCCESS,
    NONE_FAILED,
    NOT_QUEUED,
    QUEUED,
    TERMINAL,
    WAITING,
    Dag,
    Decision,
    step,
)

# Above this many upstreams a node is first checked with `any_open`.
MANY_UPSTREAMS = 16
# The trigger rules under which an unfinished upstream leaves a node as it is once every
# failure was decided (one_success may start at its first success, all_failed be skipped,
# one_failed start at a failure): only these take `any_open`'s shortcut.
WAIT_FOR_ALL = frozenset({ALL_SUCCESS, ALL_DONE, NONE_FAILED})


def advance(
    dag: Dag,
    topo_index: dict,
    changed: Iterable,
    states: dict,
    branches: dict,
    *,
    load: Callable[[set], None],
    held: Callable[[set], dict] = lambda _nodes: {},
    any_open: Callable[[set], bool] | None = None,
    paused: bool = False,
    many: int = MANY_UPSTREAMS,
) -> Decision:
    """Transitions caused by `changed` nodes reaching a terminal state.

    `states`/`branches` hold what is known and are completed in place by `load(nodes)`;
    `held(nodes)` returns those of the given nodes held back, with why (one query for all
    the nodes that became ready). For a node with many upstreams, `any_open(upstreams)`
    first asks whether one of them is still unfinished (a cheap EXISTS) before every
    upstream state is loaded: with every failure already decided, an unfinished upstream
    leaves the node as it is, as `step` would say.
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

    candidates: list = []
    while heap:
        _, v = heapq.heappop(heap)
        if v in states and states[v] not in NOT_QUEUED:
            continue
        ups = dag.upstream(v)
        if any_open is not None and len(ups) > many and dag.rule(v) in WAIT_FOR_ALL:
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
        if states[v] not in NOT_QUEUED:
            continue
        # Without holds and pauses first: what it would become decides whether to ask.
        state = step(dag, v, states, states, branches)
        if state == QUEUED:
            candidates.append(v)
        elif state is not None:
            decision.moving_to(state).add(v)
            states[v] = state
            push_downstream(v)

    if candidates:
        holds = held(set(candidates))
        for v in candidates:
            state = step(dag, v, states, states, branches, held=holds, paused=paused)
            if state is not None:
                decision.moving_to(state).add(v)
                states[v] = state
                if state == WAITING:
                    decision.reasons[v] = holds[v]
    return decision
