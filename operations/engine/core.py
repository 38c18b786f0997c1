"""Pure decision core of the run engine: given a DAG and its node states, say what happens next.

No Django, Celery or ORM here on purpose: the ORM layer loads a run's node states, calls
:func:`decide`, and writes the transitions back under its own locks, so every scheduling
rule lives in this one module and is property-tested in isolation.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable, Mapping, Set
from dataclasses import dataclass, field
from datetime import timedelta

# Node states: the same strings as the API's node_runs[].status.
PENDING, WAITING, QUEUED, RUNNING = "pending", "waiting", "queued", "running"
SUCCEEDED, FAILED, UPSTREAM_FAILED, SKIPPED, STOPPED = (
    "succeeded",
    "failed",
    "upstream_failed",
    "skipped",
    "stopped",
)
TERMINAL = frozenset({SUCCEEDED, FAILED, UPSTREAM_FAILED, SKIPPED, STOPPED})
ACTIVE = frozenset({QUEUED, RUNNING})
NOT_STARTED = frozenset({PENDING, WAITING})
ALL_STATES = TERMINAL | ACTIVE | NOT_STARTED

# Error handling policies (PRODUCT.md, "Error handling policy").
COMPLETE_RUNNING, STOP_ALL, COMPLETE_UNRELATED = (
    "complete_running",
    "stop_all",
    "complete_unrelated",
)
POLICIES = frozenset({COMPLETE_RUNNING, STOP_ALL, COMPLETE_UNRELATED})

BRANCHES = frozenset({None, "true", "false"})

# Run outcomes reported in Decision.run_status.
RUN_SUCCEEDED, RUN_FAILED, RUN_STOPPED = "succeeded", "failed", "stopped"

# Satisfied-or-dead classification of one incoming edge.
_SATISFIED, _DEAD, _BAD, _UNRESOLVED = range(4)


@dataclass(frozen=True)
class Dag:
    """An immutable DAG of node keys; edges are ``(upstream, downstream, branch)`` triples."""

    nodes: frozenset
    edges: frozenset

    def __post_init__(self):
        nodes = frozenset(self.nodes)
        edges = frozenset(self.edges)
        up: dict = {n: [] for n in nodes}
        down: dict = {n: [] for n in nodes}
        for edge in edges:
            if len(edge) != 3:
                raise ValueError(f"edge {edge!r} must be (upstream, downstream, branch)")
            u, v, branch = edge
            if u not in up or v not in up:
                missing = u if u not in up else v
                raise ValueError(f"edge {edge!r} refers to unknown node {missing!r}")
            if branch not in BRANCHES:
                raise ValueError(f"edge {edge!r}: branch must be None, 'true' or 'false'")
            up[v].append((u, branch))
            down[u].append(v)
        # Caches are plain attributes, not dataclass fields, so equality and hashing stay
        # defined by (nodes, edges) alone.
        object.__setattr__(self, "nodes", nodes)
        object.__setattr__(self, "edges", edges)
        object.__setattr__(self, "_up", {n: tuple(es) for n, es in up.items()})
        object.__setattr__(self, "_down", {n: tuple(dict.fromkeys(vs)) for n, vs in down.items()})
        object.__setattr__(self, "_topo", self._toposort())
        object.__setattr__(self, "_desc", {})

    @classmethod
    def build(cls, nodes: Iterable[Hashable], edges: Iterable[tuple]) -> Dag:
        """Build a Dag from node keys and 2-tuple ``(u, v)`` or 3-tuple ``(u, v, branch)`` edges."""
        normalised = []
        for edge in edges:
            edge = tuple(edge)
            if len(edge) == 2:
                edge = (*edge, None)
            normalised.append(edge)
        return cls(frozenset(nodes), frozenset(normalised))

    def _toposort(self) -> tuple:
        # Kahn's algorithm over distinct upstream nodes, so parallel edges count once.
        indegree = {n: len({u for u, _ in ups}) for n, ups in self._up.items()}
        queue = deque(n for n, d in indegree.items() if d == 0)
        order = []
        while queue:
            n = queue.popleft()
            order.append(n)
            for v in self._down[n]:
                indegree[v] -= 1
                if indegree[v] == 0:
                    queue.append(v)
        if len(order) != len(self.nodes):
            stuck = sorted(repr(n) for n, d in indegree.items() if d > 0)
            raise ValueError(f"the graph has a cycle; nodes on or after it: {', '.join(stuck)}")
        return tuple(order)

    @property
    def topological_order(self) -> tuple:
        """Every node, each after all of its upstreams."""
        return self._topo

    def upstream_edges(self, node) -> tuple:
        """The ``(upstream, branch)`` pairs of the edges entering ``node``."""
        return self._up[node]

    def upstream(self, node) -> frozenset:
        """The direct upstream nodes of ``node``."""
        return frozenset(u for u, _ in self._up[node])

    def downstream(self, node) -> tuple:
        """The direct downstream nodes of ``node`` (each once, even with parallel edges)."""
        return self._down[node]

    def descendants(self, node) -> frozenset:
        """Every node reachable from ``node``, excluding ``node`` itself."""
        cached = self._desc.get(node)
        if cached is None:
            cached = frozenset(_reach(self, self._down[node]))
            self._desc[node] = cached
        return cached


def _reach(dag: Dag, start: Iterable) -> set:
    seen = set()
    stack = list(start)
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            stack.extend(dag.downstream(n))
    return seen


@dataclass
class Decision:
    """The transitions :func:`decide` asks for; each set holds only nodes whose state changes."""

    ready: set = field(default_factory=set)
    waiting: set = field(default_factory=set)
    skipped: set = field(default_factory=set)
    upstream_failed: set = field(default_factory=set)
    stop: set = field(default_factory=set)
    run_status: str | None = None

    def transitions(self) -> dict:
        """Map each changing node to its new state."""
        out = {}
        for nodes, state in (
            (self.ready, QUEUED),
            (self.waiting, WAITING),
            (self.skipped, SKIPPED),
            (self.upstream_failed, UPSTREAM_FAILED),
            (self.stop, STOPPED),
        ):
            out.update(dict.fromkeys(nodes, state))
        return out

    @property
    def is_noop(self) -> bool:
        """True when no node changes state."""
        return not (self.ready or self.waiting or self.skipped or self.upstream_failed or self.stop)


def _classify(upstream_state, stopped_before: bool, branch, taken) -> int:
    if upstream_state in (FAILED, UPSTREAM_FAILED) or stopped_before:
        return _BAD
    if upstream_state == SKIPPED:
        return _DEAD
    if upstream_state == SUCCEEDED:
        # A succeeded upstream without a recorded branch (e.g. a condition node marked
        # succeeded by hand) lets every labelled edge through, as Airflow does.
        if branch is None or taken is None or branch == taken:
            return _SATISFIED
        return _DEAD
    return _UNRESOLVED


def decide(
    dag: Dag,
    states: Mapping,
    *,
    policy: str,
    branches: Mapping = {},
    blocked: Set = frozenset(),
    paused: bool = False,
    stopping: bool = False,
) -> Decision:
    """Compute every transition that follows from ``states`` in one step (a fixpoint).

    Pure and idempotent: ``decide(dag, apply(states, d), ...)`` with the same inputs is a no-op.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown error handling policy {policy!r}")
    missing = [n for n in dag.nodes if n not in states]
    if missing:
        raise ValueError(f"no state given for nodes {missing!r}")
    unknown = {states[n] for n in dag.nodes} - ALL_STATES
    if unknown:
        raise ValueError(f"unknown node states {sorted(unknown)!r}")

    decision = Decision()
    new = {n: states[n] for n in dag.nodes}

    def move(node, bucket: set, state: str) -> None:
        bucket.add(node)
        new[node] = state

    if stopping:
        for n in dag.nodes:
            if new[n] not in TERMINAL:
                move(n, decision.stop, STOPPED)
        decision.run_status = _run_status(new, stopping=True)
        return decision

    any_failed = any(s == FAILED for s in new.values())
    # "Halt" = after a failure under a policy where no further node may start.
    halt = any_failed and policy in (COMPLETE_RUNNING, STOP_ALL)

    if halt and policy == STOP_ALL:
        for n in dag.nodes:
            if new[n] in ACTIVE:
                move(n, decision.stop, STOPPED)

    # Topological order makes this single pass a fixpoint: every upstream already holds its
    # final state for this step when its downstream is examined.
    for n in dag.topological_order:
        if new[n] not in NOT_STARTED:
            continue
        verdicts = {
            _classify(new[u], states[u] == STOPPED, branch, branches.get(u))
            for u, branch in dag.upstream_edges(n)
        }
        if _BAD in verdicts:
            # A STOPPED upstream counts only if it was stopped before this step (e.g. its
            # worker was cancelled): nodes this step stops in a halt take their downstream
            # with them as "stop", so a halt never labels unrelated nodes upstream_failed.
            move(n, decision.upstream_failed, UPSTREAM_FAILED)
        elif verdicts == {_DEAD}:
            move(n, decision.skipped, SKIPPED)
        elif halt:
            move(n, decision.stop, STOPPED)
        elif _UNRESOLVED in verdicts:
            continue
        elif n in blocked:
            # The concurrency gate is reported even while paused: the node is held by it.
            if new[n] == PENDING:
                move(n, decision.waiting, WAITING)
        elif not paused:
            move(n, decision.ready, QUEUED)

    decision.run_status = _run_status(new, stopping=False)
    return decision


def _run_status(new: Mapping, *, stopping: bool) -> str | None:
    if any(s not in TERMINAL for s in new.values()):
        return None
    if stopping:
        return RUN_STOPPED
    if any(s in (FAILED, UPSTREAM_FAILED) for s in new.values()):
        return RUN_FAILED
    # A node stopped without a failure (e.g. its worker was cancelled) is not a success.
    if any(s == STOPPED for s in new.values()):
        return RUN_STOPPED
    return RUN_SUCCEEDED


def apply(states: Mapping, decision: Decision) -> dict:
    """Return a new states map with ``decision``'s transitions applied."""
    new = dict(states)
    new.update(decision.transitions())
    return new


def descendants_closure(dag: Dag, nodes: Iterable) -> set:
    """``nodes`` together with every node reachable from any of them."""
    nodes = list(nodes)
    return set(nodes) | _reach(dag, (v for n in nodes for v in dag.downstream(n)))


def nodes_to_rerun_from(dag: Dag, node) -> set:
    """The nodes that "rerun from a node" resets: ``node`` and everything downstream of it."""
    return descendants_closure(dag, [node])


def restorable(states: Mapping) -> set:
    """The nodes that "restore" reruns: failed, upstream-failed, stopped and not-run ones."""
    return {
        n for n, s in states.items() if s in (FAILED, UPSTREAM_FAILED, STOPPED, PENDING, WAITING)
    }


def _seconds(value) -> float:
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def critical_path(dag: Dag, timings: Mapping) -> list:
    """The chain of nodes that ran whose summed durations is longest, from first to last.

    ``timings`` maps a node to ``(start, end)`` (datetimes or numbers); nodes without both
    ends are ignored, and edges count only between nodes that ran.
    """
    ran = {}
    for n, span in timings.items():
        if n in dag.nodes and span is not None:
            start, end = span
            if start is not None and end is not None:
                ran[n] = max(0.0, _seconds(end - start))
    best: dict = {}
    prev: dict = {}
    for n in dag.topological_order:
        if n not in ran:
            continue
        parent = None
        for u in dag.upstream(n):
            if u in best and (parent is None or best[u] > best[parent]):
                parent = u
        best[n] = ran[n] + (best[parent] if parent is not None else 0.0)
        prev[n] = parent
    if not best:
        return []
    node = max(best, key=best.__getitem__)
    path = []
    while node is not None:
        path.append(node)
        node = prev[node]
    path.reverse()
    return path
