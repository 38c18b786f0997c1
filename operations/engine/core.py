"""Pure decision core of the run engine: given a DAG and its node states, say what happens next.

No Django, Celery or ORM here on purpose (import-linter checks it): the ORM layer loads a
run's node states, asks this module, and writes the transitions back under its own locks.
Every run rule lives here and is property-tested in isolation:

- `step` is the rule for one node that is not queued yet: upstream-failed, skipped,
  stopped by a halt, held back (with a reason), queued, or left as it is;
- `decide` applies it to every node in topological order (plus what a stop, a halt or
  a pause does to nodes already sent), and says the run's outcome (`run_outcome`);
- `engine.incremental.advance` applies the same `step` to the nodes downstream of a
  success only, and `queue_directly` answers the hot path's question "does this success
  make its downstream nodes ready by itself?";
- restore, rerun-from and mark-success pick the nodes they reopen here too.

A node's trigger rule (`Dag.rule`) combines its edges' verdicts (`_combine`); the rules
met by a failure (`FAILURE_RULES`: a cleanup or alert step) are neither stopped nor held
off by a halt. A disabled node (`Dag.disabled`) becomes DISABLED where it would be queued,
which its downstream nodes take as a success. Tenant limits and pools are more reasons in
`held`; a sub-flow is a node that stays DEFERRED while its child run runs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

# Node states: the same strings as the API's node_runs[].status.
PENDING, WAITING, QUEUED, RUNNING, DEFERRED = (
    "pending",
    "waiting",
    "queued",
    "running",
    "deferred",
)
SUCCEEDED, FAILED, UPSTREAM_FAILED, SKIPPED, STOPPED = (
    "succeeded",
    "failed",
    "upstream_failed",
    "skipped",
    "stopped",
)
# A disabled node never runs: it reaches this state where it would have been queued, and
# its downstream nodes take it as a success.
DISABLED = "disabled"
# Left out of a node-scoped test run: never runs, and the nodes in the run's scope take it
# as satisfied (it is not a failure).
NOT_RUN = "not_run"
# Both count as satisfied upstreams.
PASSED = frozenset({DISABLED, NOT_RUN})
TERMINAL = frozenset({SUCCEEDED, FAILED, UPSTREAM_FAILED, SKIPPED, STOPPED, DISABLED, NOT_RUN})
# Not sent to a worker yet: the states `step` moves on (WAITING: held back, with a reason).
NOT_QUEUED = frozenset({PENDING, WAITING})
# A worker claimed it: it runs, or (DEFERRED) it waits between two checks without holding
# a worker. Both are "running" to the user; a halt of complete_running lets them finish.
STARTED = frozenset({RUNNING, DEFERRED})
# Sent to the workers and not finished.
ACTIVE = frozenset({QUEUED}) | STARTED
NOT_STARTED = NOT_QUEUED | {QUEUED}
# What a worker may claim (queued -> running, or deferred -> running for its next check).
CLAIMABLE = frozenset({QUEUED, DEFERRED})
OPEN = NOT_QUEUED | ACTIVE
ALL_STATES = TERMINAL | OPEN

# Error handling policies (PRODUCT.md, "Error handling policy").
COMPLETE_RUNNING, STOP_ALL, COMPLETE_UNRELATED = (
    "complete_running",
    "stop_all",
    "complete_unrelated",
)
POLICIES = frozenset({COMPLETE_RUNNING, STOP_ALL, COMPLETE_UNRELATED})

# Why a node that could start is held back (a node run's waiting_reason).
HELD_BY_CONCURRENCY_POLICY = "concurrency_policy"
# Held back by fair share (operations.engine.fair): the tenant's running-node limit, or a
# data source's pool. A worker's claim decides these, not `step`.
HELD_BY_TENANT_LIMIT = "tenant_limit"
HELD_BY_POOL = "pool"

BRANCHES = frozenset({None, "true", "false"})

# Trigger rules: how a node combines its upstreams (Airflow's names and meanings).
ALL_SUCCESS, ALL_DONE, ONE_SUCCESS, ONE_FAILED, ALL_FAILED, NONE_FAILED = (
    "all_success",
    "all_done",
    "one_success",
    "one_failed",
    "all_failed",
    "none_failed",
)
TRIGGER_RULES = (ALL_SUCCESS, ALL_DONE, ONE_SUCCESS, ONE_FAILED, ALL_FAILED, NONE_FAILED)
DEFAULT_RULE = ALL_SUCCESS
# Rules a failure can meet: such a node runs under every error policy (a halt neither
# stops it nor keeps it from starting); the others need successes and follow the policy.
FAILURE_RULES = frozenset({ALL_DONE, ONE_FAILED, ALL_FAILED})

# Run outcomes reported in Decision.run_status.
RUN_SUCCEEDED, RUN_FAILED, RUN_STOPPED = "succeeded", "failed", "stopped"

# Verdict of one incoming edge, and of all of them together (`_combine`).
SATISFIED, DEAD, BAD, UNRESOLVED = "satisfied", "dead", "bad", "unresolved"


@dataclass(frozen=True)
class Dag:
    """An immutable DAG of node keys; edges are ``(upstream, downstream, branch)`` triples.

    `rules` holds the ``(node, trigger rule)`` pairs of the nodes whose rule is not the
    default, `disabled` the nodes switched off.
    """

    nodes: frozenset
    edges: frozenset
    rules: frozenset = frozenset()
    disabled: frozenset = frozenset()

    def __post_init__(self):
        nodes = frozenset(self.nodes)
        edges = frozenset(self.edges)
        rules = frozenset((n, r) for n, r in self.rules if r != DEFAULT_RULE)
        disabled = frozenset(self.disabled)
        for n, rule in rules:
            if n not in nodes:
                raise ValueError(f"trigger rule for unknown node {n!r}")
            if rule not in TRIGGER_RULES:
                raise ValueError(f"node {n!r}: unknown trigger rule {rule!r}")
        if disabled - nodes:
            raise ValueError(f"unknown disabled nodes {sorted(map(repr, disabled - nodes))}")
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
        object.__setattr__(self, "rules", rules)
        object.__setattr__(self, "disabled", disabled)
        object.__setattr__(self, "_rule", dict(rules))
        object.__setattr__(self, "_up", {n: tuple(es) for n, es in up.items()})
        object.__setattr__(self, "_down", {n: tuple(dict.fromkeys(vs)) for n, vs in down.items()})
        object.__setattr__(self, "_topo", self._toposort())
        object.__setattr__(self, "_desc", {})

    @classmethod
    def build(
        cls,
        nodes: Iterable[Hashable],
        edges: Iterable[tuple],
        *,
        rules: Mapping | None = None,
        disabled: Iterable = (),
    ) -> Dag:
        """Build a Dag from node keys and 2-tuple ``(u, v)`` or 3-tuple ``(u, v, branch)`` edges,
        with the trigger rules of some nodes (``{node: rule}``) and the disabled nodes."""
        normalised = []
        for edge in edges:
            edge = tuple(edge)
            if len(edge) == 2:
                edge = (*edge, None)
            normalised.append(edge)
        return cls(
            frozenset(nodes),
            frozenset(normalised),
            frozenset((rules or {}).items()),
            frozenset(disabled),
        )

    def rule(self, node) -> str:
        """The node's trigger rule."""
        return self._rule.get(node, DEFAULT_RULE)

    def tolerates_failure(self, node) -> bool:
        """Whether a failure can meet the node's rule (it runs under every error policy)."""
        return self._rule.get(node) in FAILURE_RULES

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
    """The transitions a decision asks for; each set holds only nodes whose state changes.

    Each transition applies only to a node still in one of the states it was decided from
    (`guards()`), so the ORM layer writes it as a status-guarded update: a node a worker
    claimed meanwhile is not stopped by complete_running, for instance.
    """

    ready: set = field(default_factory=set)
    waiting: set = field(default_factory=set)
    # Why each node of `waiting` is held back (HELD_BY_...).
    reasons: dict = field(default_factory=dict)
    skipped: set = field(default_factory=set)
    upstream_failed: set = field(default_factory=set)
    # Disabled nodes reached (they never run; their downstream takes them as succeeded).
    disabled: set = field(default_factory=set)
    stop: set = field(default_factory=set)
    # Queued nodes a pause sends back to pending (their messages are revoked); a held one
    # goes to `waiting` instead.
    unqueue: set = field(default_factory=set)
    # The states a node of `stop` may be stopped from: every open state on a stop or under
    # stop_all, the not-started ones under complete_running (a started node finishes).
    stop_from: frozenset = OPEN
    run_status: str | None = None

    def transitions(self) -> dict:
        """Map each changing node to its new state."""
        out = {}
        for nodes, state in (
            (self.ready, QUEUED),
            (self.waiting, WAITING),
            (self.skipped, SKIPPED),
            (self.upstream_failed, UPSTREAM_FAILED),
            (self.disabled, DISABLED),
            (self.stop, STOPPED),
            (self.unqueue, PENDING),
        ):
            out.update(dict.fromkeys(nodes, state))
        return out

    def moving_to(self, state: str) -> set:
        """The set of nodes this decision moves to `state`."""
        return {
            QUEUED: self.ready,
            WAITING: self.waiting,
            SKIPPED: self.skipped,
            UPSTREAM_FAILED: self.upstream_failed,
            DISABLED: self.disabled,
            STOPPED: self.stop,
            PENDING: self.unqueue,
        }[state]

    def guards(self) -> dict:
        """For each new state, the states a node may move to it from."""
        return {
            QUEUED: NOT_QUEUED,
            # From queued only in a paused run: a held node no worker has claimed goes back.
            WAITING: frozenset({PENDING, QUEUED}),
            SKIPPED: NOT_QUEUED,
            UPSTREAM_FAILED: NOT_QUEUED,
            DISABLED: NOT_QUEUED,
            STOPPED: self.stop_from,
            PENDING: frozenset({QUEUED}),
        }

    @property
    def is_noop(self) -> bool:
        """True when no node changes state."""
        return not self.transitions()


def edge_verdict(upstream_state, stopped_before: bool, branch, taken) -> str:
    """What one incoming edge says about its downstream node."""
    if upstream_state in (FAILED, UPSTREAM_FAILED) or stopped_before:
        return BAD
    if upstream_state == SKIPPED:
        return DEAD
    if upstream_state in PASSED:
        return SATISFIED
    if upstream_state == SUCCEEDED:
        # A succeeded upstream without a recorded branch (e.g. a condition node marked
        # succeeded by hand) lets every labelled edge through, as Airflow does.
        if branch is None or taken is None or branch == taken:
            return SATISFIED
        return DEAD
    return UNRESOLVED


def _combine(verdicts: set) -> str:
    """The node's verdict from its edges' under all_success: every edge satisfied or dead
    and one satisfied (a node with only dead edges is skipped)."""
    if BAD in verdicts:
        return BAD
    if verdicts == {DEAD}:
        return DEAD
    if UNRESOLVED in verdicts:
        return UNRESOLVED
    return SATISFIED


def _combine_success_rule(rule: str, verdicts: set) -> str:
    """The verdict of a rule that needs successes (all_success, one_success, none_failed)."""
    if rule == ONE_SUCCESS:
        # As soon as one edge is satisfied; with none left open, failed or skipped.
        if SATISFIED in verdicts:
            return SATISFIED
        if UNRESOLVED in verdicts:
            return UNRESOLVED
        return DEAD if verdicts == {DEAD} else BAD
    if rule == NONE_FAILED:
        # Every upstream done and none failed; skipped upstreams count as fine.
        if BAD in verdicts:
            return BAD
        if UNRESOLVED in verdicts:
            return UNRESOLVED
        return SATISFIED
    return _combine(verdicts)


# What one upstream of a node with a failure rule is: the rule counts these.
_OK, _SKIP, _FAIL, _HALTED, _OPEN = "ok", "skip", "fail", "halted", "open"


def _upstream_kind(state, branch, taken) -> str:
    if state in (FAILED, UPSTREAM_FAILED):
        return _FAIL
    if state == STOPPED:
        # Finished without success or failure, whenever it was stopped.
        return _HALTED
    if state == SKIPPED:
        return _SKIP
    if state in PASSED:
        return _OK
    if state == SUCCEEDED:
        return _OK if branch is None or taken is None or branch == taken else _SKIP
    return _OPEN


def _combine_failure_rule(rule: str, kinds: set) -> str:
    """The verdict of a rule a failure can meet (all_done, one_failed, all_failed)."""
    if rule == ALL_DONE:
        return UNRESOLVED if _OPEN in kinds else SATISFIED
    if rule == ONE_FAILED:
        # At the first failure; once everything finished without one, skipped.
        if _FAIL in kinds:
            return SATISFIED
        return UNRESOLVED if _OPEN in kinds else DEAD
    # all_failed: skipped as soon as one upstream finished otherwise.
    if kinds - {_FAIL, _OPEN}:
        return DEAD
    return UNRESOLVED if _OPEN in kinds else SATISFIED


def node_verdict(dag: Dag, node, now: Mapping, before: Mapping, branches: Mapping) -> str:
    """SATISFIED, DEAD, BAD or UNRESOLVED: what the node's trigger rule says of its upstreams."""
    rule = dag.rule(node)
    if rule in FAILURE_RULES:
        if not dag.upstream_edges(node):
            return SATISFIED
        return _combine_failure_rule(
            rule,
            {
                _upstream_kind(now[u], branch, branches.get(u))
                for u, branch in dag.upstream_edges(node)
            },
        )
    verdicts = {
        edge_verdict(now[u], before[u] == STOPPED, branch, branches.get(u))
        for u, branch in dag.upstream_edges(node)
    }
    if not verdicts:
        return SATISFIED
    return _combine_success_rule(rule, verdicts)


def step(
    dag: Dag,
    node,
    now: Mapping,
    before: Mapping,
    branches: Mapping,
    *,
    halt: bool = False,
    held: Mapping = {},
    paused: bool = False,
) -> str | None:
    """The state a node that is not queued yet moves to, or None when it stays as it is.

    `now` holds the states of the node and its upstreams as this step has made them,
    `before` the upstreams' states when the step began: a node stopped before this step
    (its worker was cancelled) fails its downstream, one that a halt stops in this step
    takes its downstream with it as stopped, so a halt never labels unrelated nodes
    upstream-failed. `halt`: a failure under a policy where no further node may start (it
    does not touch a node whose trigger rule a failure can meet); `held`: nodes held back,
    with why; `paused`: the run starts nothing new. A disabled node whose rule is met
    becomes DISABLED instead of being queued.
    """
    verdict = node_verdict(dag, node, now, before, branches)
    if verdict == BAD:
        return UPSTREAM_FAILED
    if verdict == DEAD:
        return SKIPPED
    if halt and not dag.tolerates_failure(node):
        return STOPPED
    if verdict == UNRESOLVED:
        return None
    if node in dag.disabled:
        return DISABLED
    if node in held:
        # Held even while paused: the node is held by it, and says so.
        return WAITING if now[node] == PENDING else None
    if paused:
        return None
    return QUEUED


def halts(states: Iterable, policy: str) -> bool:
    """Whether a failure stops the run from starting any further node."""
    return policy in (COMPLETE_RUNNING, STOP_ALL) and any(s == FAILED for s in states)


def decide(
    dag: Dag,
    states: Mapping,
    *,
    policy: str,
    branches: Mapping = {},
    held: Mapping = {},
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
        decision.run_status = run_outcome(new.values(), stopping=True)
        return decision

    halt = halts(new.values(), policy)
    if halt:
        # stop_all stops everything sent, running nodes included; complete_running the
        # nodes no worker has claimed yet (a started node finishes, deferred ones too).
        sent = ACTIVE if policy == STOP_ALL else frozenset({QUEUED})
        decision.stop_from = OPEN if policy == STOP_ALL else NOT_STARTED
        for n in dag.nodes:
            if new[n] in sent and not dag.tolerates_failure(n):
                move(n, decision.stop, STOPPED)
    # Paused: the queued nodes no worker has claimed go back to wait for the resume.
    unqueue = paused and not halt

    # Topological order makes this single pass a fixpoint: every upstream already holds its
    # final state for this step when its downstream is examined.
    for n in dag.topological_order:
        if unqueue and new[n] == QUEUED:
            # As a pending node it would wait (held: waiting, else pending); one whose
            # upstream no longer lets it start stays as an active run would leave it.
            new[n] = PENDING
            state = step(dag, n, new, states, branches, held=held, paused=True)
            if state is None:
                move(n, decision.unqueue, PENDING)
            elif state == WAITING:
                move(n, decision.waiting, WAITING)
                decision.reasons[n] = held[n]
            else:
                new[n] = QUEUED
            continue
        if new[n] not in NOT_QUEUED:
            continue
        state = step(dag, n, new, states, branches, halt=halt, held=held, paused=paused)
        if state is not None:
            move(n, decision.moving_to(state), state)
            if state == WAITING:
                decision.reasons[n] = held[n]

    decision.run_status = run_outcome(new.values())
    return decision


def scope_of(dag: Dag, *, nodes: Iterable = (), from_node=None, from_nodes: Iterable = ()) -> set:
    """The nodes a node-scoped run runs: the given ones, or some nodes (`from_node`,
    `from_nodes`) and everything downstream of them; the others are NOT_RUN from the start."""
    scope = set(nodes)
    starts = [*([] if from_node is None else [from_node]), *from_nodes]
    if starts:
        scope |= descendants_closure(dag, starts)
    return scope


def run_outcome(states: Iterable, *, stopping: bool = False) -> str | None:
    """The run's status once every node is terminal (None while one is not)."""
    states = set(states)
    if states - TERMINAL:
        return None
    if stopping:
        return RUN_STOPPED
    if states & {FAILED, UPSTREAM_FAILED}:
        return RUN_FAILED
    # A node stopped without a failure (e.g. its worker was cancelled) is not a success.
    if STOPPED in states:
        return RUN_STOPPED
    return RUN_SUCCEEDED


def queue_directly(dag: Dag, node, branch, *, paused: bool = False, may_hold: bool = False):
    """The downstream nodes a success of `node` (taking `branch`) queues by itself, or None.

    The hot path's question: when every downstream node has `node` as its only upstream
    and `step` queues it knowing only that `node` succeeded, the recording statement can
    queue them in the same round trip. None when one of them needs more (another upstream,
    a branch not taken), or when the run is paused or may hold nodes back (a gate): the
    caller then decides incrementally. The caller's statement must still find them not
    queued, and the run still not paused and not gated, under the run's lock.
    """
    if paused or may_hold:
        return None
    now = {node: SUCCEEDED}
    taken = {node: branch} if branch is not None else {}
    out = []
    for v in dag.downstream(node):
        if len(dag.upstream_edges(v)) != 1:
            return None
        if step(dag, v, {**now, v: PENDING}, now, taken) != QUEUED:
            return None
        out.append(v)
    return out


def attempt_state(*, paused: bool) -> str:
    """The state of a node's next attempt after a failure it may retry: queued (sent once
    its retry interval has passed), or pending in a paused run (queued on resume)."""
    return PENDING if paused else QUEUED


def sends(state: str, *, paused: bool) -> bool:
    """Whether a node in `state` may be sent to a worker now: a deferred node has started
    and finishes its wait even in a paused run; a queued one waits for the resume."""
    return state == DEFERRED or (state == QUEUED and not paused)


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
        n for n, s in states.items() if s in (FAILED, UPSTREAM_FAILED, STOPPED) or s in NOT_QUEUED
    }


def reopened_by_mark_success(dag: Dag, states: Mapping, node, *, stopped_by_user: bool) -> set:
    """The nodes that run again when a failed `node` is marked succeeded.

    Its upstream-failed descendants that no other failed node still blocks, and, unless
    someone stopped the run after the failure, the nodes the error policy stopped.
    """
    failed = {n for n, s in states.items() if s == FAILED and n != node}
    blocked = set().union(*(dag.descendants(n) for n in failed)) if failed else set()
    again = {
        n for n in dag.descendants(node) if states.get(n) == UPSTREAM_FAILED and n not in blocked
    }
    if not stopped_by_user:
        again |= {n for n, s in states.items() if s == STOPPED}
    return again


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


def predicted_remaining(dag: Dag, remaining: Mapping) -> tuple[float, list]:
    """How long a run still needs, and the nodes that drive it: the critical path (the
    same rule as `critical_path`) through the nodes still to run, each counted for the
    seconds ``remaining`` gives it (a node it does not list is done and counts nothing).
    """
    timings = {n: (0.0, max(0.0, float(s))) for n, s in remaining.items() if s is not None}
    path = critical_path(dag, timings)
    return sum(timings[n][1] for n in path), path
