"""Property-based and example tests of the pure run-engine decision core.

The simulator drives ``decide``/``apply`` the way the ORM layer will: after each decision,
workers finish a random subset of the dispatched nodes (failing the ones the scenario says
fail, and picking each condition's predetermined branch), until the run reports a status.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operations.engine.core import (
    ACTIVE,
    ALL_DONE,
    ALL_FAILED,
    ALL_SUCCESS,
    COMPLETE_RUNNING,
    COMPLETE_UNRELATED,
    DEFERRED,
    DISABLED,
    FAILED,
    FAILURE_RULES,
    HELD_BY_CONCURRENCY_POLICY,
    NONE_FAILED,
    NOT_QUEUED,
    NOT_RUN,
    NOT_STARTED,
    ONE_FAILED,
    ONE_SUCCESS,
    OPEN,
    PENDING,
    QUEUED,
    RUNNING,
    SKIPPED,
    STARTED,
    STOP_ALL,
    STOPPED,
    SUCCEEDED,
    TERMINAL,
    TRIGGER_RULES,
    UPSTREAM_FAILED,
    WAITING,
    Dag,
    Decision,
    apply,
    attempt_state,
    critical_path,
    decide,
    descendants_closure,
    nodes_to_rerun_from,
    reopened_by_mark_success,
    restorable,
    run_outcome,
    scope_of,
    sends,
)

POLICIES = [COMPLETE_RUNNING, STOP_ALL, COMPLETE_UNRELATED]
ALL = TERMINAL | OPEN
PROPERTY = settings(max_examples=200, deadline=None)
# The rule-aware properties run fewer examples each: six of them cover the same ground.
RULES = settings(max_examples=120, deadline=None)
HELD = HELD_BY_CONCURRENCY_POLICY


# --------------------------------------------------------------------------- strategies


@st.composite
def dags(draw, max_nodes=25, rules=False):
    """Random DAGs over ints; edges go from lower to higher ids, condition edges are labelled.

    With `rules`, nodes get random trigger rules (all_success half the time) and a few are
    disabled.
    """
    n = draw(st.integers(0, max_nodes))
    nodes = list(range(n))
    node_rules, disabled = {}, set()
    if rules and nodes:
        weighted = [ALL_SUCCESS] * len(TRIGGER_RULES) + list(TRIGGER_RULES)
        node_rules = {v: draw(st.sampled_from(weighted)) for v in nodes}
        disabled = draw(st.sets(st.sampled_from(nodes), max_size=max(1, n // 4)))
    if n < 2:
        return Dag.build(nodes, [], rules=node_rules, disabled=disabled)
    conditions = draw(st.sets(st.sampled_from(nodes), max_size=n // 2 + 1))
    # Dense enough that joins of taken, not-taken and failed branches are common; the label
    # is used only when the upstream is a condition (mostly labelled, sometimes plain).
    triples = draw(
        st.lists(
            st.tuples(
                st.integers(0, n - 1),
                st.integers(0, n - 1),
                st.sampled_from(["true", "false", "true", "false", None]),
            ),
            min_size=n,
            max_size=3 * n,
        )
    )
    edges = set()
    for a, b, label in triples:
        if a != b:
            u, v = min(a, b), max(a, b)
            edges.add((u, v, label if u in conditions else None))
    return Dag.build(nodes, edges, rules=node_rules, disabled=disabled)


def condition_nodes(dag: Dag) -> set:
    return {u for u, _, branch in dag.edges if branch is not None}


@dataclass
class Scenario:
    dag: Dag
    fails: frozenset  # nodes that fail whenever they run
    choice: dict  # condition node -> the branch it takes when it succeeds
    rnd: random.Random


@st.composite
def scenarios(draw, max_nodes=25, rules=False):
    dag = draw(dags(max_nodes, rules=rules))
    nodes = sorted(dag.nodes)
    fails = frozenset()
    if nodes:
        fails = draw(
            st.one_of(
                st.just(frozenset()), st.frozensets(st.sampled_from(nodes), min_size=1, max_size=4)
            )
        )
    choice = {c: draw(st.sampled_from(["true", "false"])) for c in sorted(condition_nodes(dag))}
    # A seeded Random rather than st.randoms(): the simulator makes hundreds of random
    # choices per run, and drawing each through hypothesis made the suite several times slower.
    return Scenario(dag, fails, choice, random.Random(draw(st.integers(0, 2**32 - 1))))


# --------------------------------------------------------------------------- oracles
# Written independently of core.py, straight from the brief's definitions.


def edge_satisfied(states, branches, u, branch) -> bool:
    return states[u] in (DISABLED, NOT_RUN) or (
        states[u] == SUCCEEDED and (branch is None or branches[u] == branch)
    )


def edge_dead(states, branches, u, branch) -> bool:
    return states[u] == SKIPPED or (
        states[u] == SUCCEEDED and branch is not None and branches[u] != branch
    )


def upstream_kinds(dag: Dag, n, after, before, branches) -> list:
    """Each incoming edge of `n` as the rules see it (an oracle, independent of core)."""
    kinds = []
    for u, b in dag.upstream_edges(n):
        s = after[u]
        if s in (DISABLED, NOT_RUN):
            kinds.append("ok")
        elif s == SUCCEEDED:
            took = branches.get(u)
            kinds.append("ok" if b is None or took is None or took == b else "skip")
        elif s == SKIPPED:
            kinds.append("skip")
        elif s in (FAILED, UPSTREAM_FAILED):
            kinds.append("fail")
        elif s == STOPPED:
            kinds.append("stopped_before" if before[u] == STOPPED else "stopped_now")
        else:
            kinds.append("open")
    return kinds


def rule_says(rule, kinds) -> str:
    """'run', 'skip', 'fail' (upstream failed) or 'wait': the trigger rules as documented
    (PRODUCT/README: Airflow's meanings), written without looking at core."""
    k = set(kinds)
    if not kinds:
        return "run"
    stopped = {"stopped_before", "stopped_now"}
    if rule == ALL_SUCCESS:
        if k & {"fail", "stopped_before"}:
            return "fail"
        if k == {"skip"}:
            return "skip"
        return "wait" if k & {"open", "stopped_now"} else "run"
    if rule == ONE_SUCCESS:
        if "ok" in k:
            return "run"
        if k & {"open", "stopped_now"}:
            return "wait"
        return "skip" if k == {"skip"} else "fail"
    if rule == NONE_FAILED:
        if k & {"fail", "stopped_before"}:
            return "fail"
        return "wait" if k & {"open", "stopped_now"} else "run"
    if rule == ALL_DONE:
        return "wait" if "open" in k else "run"
    if rule == ONE_FAILED:
        if "fail" in k:
            return "run"
        return "wait" if "open" in k else "skip"
    assert rule == ALL_FAILED
    if k & ({"ok", "skip"} | stopped):
        return "skip"
    return "wait" if "open" in k else "run"


def says(dag, n, after, before, branches) -> str:
    return rule_says(dag.rule(n), upstream_kinds(dag, n, after, before, branches))


def live_nodes(dag: Dag, choice) -> set:
    """Nodes with a path from a root crossing no not-taken branch (taking ``choice``)."""
    live = set()
    for n in nx.topological_sort(nx_graph(dag)):
        ups = dag.upstream_edges(n)
        if not ups or any(u in live and (b is None or choice[u] == b) for u, b in ups):
            live.add(n)
    return live


def nx_graph(dag: Dag) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(dag.nodes)
    g.add_edges_from((u, v) for u, v, _ in dag.edges)
    return g


def strict_descendants(dag: Dag, nodes) -> set:
    g = nx_graph(dag)
    return set().union(*(nx.descendants(g, n) for n in nodes)) if nodes else set()


# --------------------------------------------------------------------------- simulator


@dataclass
class Step:
    before: dict
    decision: Decision
    after: dict
    held: dict
    paused: bool
    stopping: bool


@dataclass
class Outcome:
    states: dict
    branches: dict
    run_status: str
    steps: list = field(default_factory=list)


def applied(before: dict, d: Decision) -> dict:
    """What `apply` must return, written out bucket by bucket (an oracle of `apply`)."""
    after = dict(before)
    for nodes, state in (
        (d.ready, QUEUED),
        (d.waiting, WAITING),
        (d.skipped, SKIPPED),
        (d.upstream_failed, UPSTREAM_FAILED),
        (d.disabled, DISABLED),
        (d.stop, STOPPED),
        (d.unqueue, PENDING),
    ):
        for n in nodes:
            after[n] = state
    return after


def check_step(dag, policy, branches, step: Step) -> None:
    """Invariants every single decision must satisfy, whatever led to it."""
    before, d, after = step.before, step.decision, step.after
    buckets = [d.ready, d.waiting, d.skipped, d.upstream_failed, d.disabled, d.stop, d.unqueue]
    assert sum(map(len, buckets)) == len(set().union(*buckets)), "a node got two transitions"
    assert after == applied(before, d), "apply() lost or invented a transition"

    for n in d.ready | d.skipped | d.upstream_failed | d.disabled:
        assert before[n] in NOT_QUEUED, (n, before[n])
    for n in d.waiting:
        # Queued -> waiting only when a pause sends a held node back.
        assert before[n] in NOT_QUEUED or (before[n] == QUEUED and step.paused), (n, before[n])
    for n in d.stop:
        assert before[n] not in TERMINAL, (n, before[n])
    # Each transition is allowed from the state it was decided from (the store's guard).
    guards = d.guards()
    for n, state in d.transitions().items():
        assert before[n] in guards[state], (n, before[n], state)

    def eligible(n):
        return says(dag, n, after, before, branches) == "run"

    # Nothing is made ready before its trigger rule is met (all_success: every incoming
    # edge satisfied or dead, one satisfied); a disabled node is never made ready.
    for n in d.ready:
        assert eligible(n), n
        assert n not in dag.disabled, n
    assert not (d.ready & set(step.held))
    for n in d.waiting:
        assert n in step.held and before[n] in (PENDING, QUEUED), n
        assert before[n] == QUEUED or eligible(n), n
        assert d.reasons[n] == step.held[n], "a held node must say why"
    for n in d.skipped:
        assert dag.upstream_edges(n) and says(dag, n, after, before, branches) == "skip", n
    for n in d.upstream_failed:
        assert says(dag, n, after, before, branches) == "fail", n
    for n in d.disabled:
        assert n in dag.disabled and eligible(n), n
    if dag.rules == frozenset() and not dag.disabled:
        # The default rule as the engine always had it, stated on the edges.
        for n in d.ready:
            ups = dag.upstream_edges(n)
            assert all(
                edge_satisfied(after, branches, u, b) or edge_dead(after, branches, u, b)
                for u, b in ups
            ) and (not ups or any(edge_satisfied(after, branches, u, b) for u, b in ups))
        for n in d.skipped:
            assert all(edge_dead(after, branches, u, b) for u, b in dag.upstream_edges(n))

    failed_before = any(s == FAILED for s in before.values())
    halted = failed_before and policy in (COMPLETE_RUNNING, STOP_ALL)
    if step.paused:
        assert not d.ready
        if not (halted or step.stopping):
            # A pause sends the queued nodes back; started ones (deferred too) go on.
            queued = {n for n, s in before.items() if s == QUEUED}
            back = d.unqueue | {n for n in d.waiting if before[n] == QUEUED}
            assert back <= queued
            # A held node goes back as waiting, unless its upstream no longer lets it
            # start (a queued node over an open upstream: a state no run reaches).
            assert not {n for n in d.unqueue if eligible(n)} & set(step.held)
            # Only a node whose upstream no longer lets it start stays queued (a state no
            # run reaches, which a running run would leave as it is too).
            for n in queued - back:
                assert after[n] == QUEUED, n
                assert not eligible(n) or n in dag.disabled, n
    else:
        assert not d.unqueue
    if step.stopping:
        assert d.stop == {n for n, s in before.items() if s not in TERMINAL}
        assert d.run_status == "stopped"
    elif d.stop:
        assert halted
    if halted:
        # Only a node whose trigger rule a failure can meet starts after a failure, and
        # nothing else waits to start any more: not a pending node, not a queued one.
        assert all(dag.tolerates_failure(n) for n in d.ready), "a node started after a failure"
        assert not any(s in NOT_STARTED for n, s in after.items() if not dag.tolerates_failure(n))
        assert not {n for n in d.stop if dag.tolerates_failure(n)} or step.stopping
    if halted and policy == COMPLETE_RUNNING and not step.stopping:
        assert not {n for n in d.stop if before[n] in STARTED}, "a started node was stopped"
        assert d.stop_from == NOT_STARTED
    if halted and policy == STOP_ALL and not step.stopping:
        assert not any(s in ACTIVE for n, s in after.items() if not dag.tolerates_failure(n))
        if not any(s not in TERMINAL for n, s in after.items() if dag.tolerates_failure(n)):
            assert d.run_status == "failed"

    all_terminal = all(s in TERMINAL for s in after.values())
    assert (d.run_status is not None) == all_terminal
    if all_terminal and not step.stopping:
        final = set(after.values())
        if final & {FAILED, UPSTREAM_FAILED}:
            assert d.run_status == "failed"
        elif STOPPED in final:
            assert d.run_status == "stopped"
        else:
            assert d.run_status == "succeeded"
    assert d.run_status == run_outcome(after.values(), stopping=step.stopping)

    # Idempotent: the same call on the applied states changes nothing.
    again = decide(
        dag,
        after,
        policy=policy,
        branches=branches,
        held=step.held,
        paused=step.paused,
        stopping=step.stopping,
    )
    assert again.is_noop, again
    assert again.run_status == d.run_status


def simulate(sc: Scenario, policy, *, gate=False, pause=False, stop_at=None) -> Outcome:
    """Run the scenario to completion; ``gate``/``pause`` randomly hold nodes back.

    Between two decisions, workers claim some queued nodes (running), some running nodes
    defer (a wait between two checks, without a worker) and come back, and some nodes
    finish.
    """
    dag, rnd = sc.dag, sc.rnd
    nodes = sorted(dag.nodes)
    states = dict.fromkeys(nodes, PENDING)
    branches: dict = {}
    held: dict = {}
    paused = False
    steps = []
    # Each step finishes a node, or lifts the gate/pause so the next one does.
    for index in range(4 * len(nodes) + 5):
        stopping = stop_at is not None and index >= stop_at
        d = decide(
            dag,
            states,
            policy=policy,
            branches=branches,
            held=held,
            paused=paused,
            stopping=stopping,
        )
        step = Step(dict(states), d, apply(states, d), held, paused, stopping)
        check_step(dag, policy, branches, step)
        steps.append(step)
        states = dict(step.after)
        if d.run_status is not None:
            return Outcome(states, branches, d.run_status, steps)

        active = [n for n in nodes if states[n] in ACTIVE]
        if not active:
            # No deadlock: only the gate or a pause may leave a live run with nothing to do.
            assert held or paused, states
            held, paused = {}, False
            continue
        for n in active:
            if states[n] in (QUEUED, DEFERRED) and rnd.random() < 0.5:
                states[n] = RUNNING  # claimed (a deferred node for its next check)
            elif states[n] == RUNNING and rnd.random() < 0.2:
                states[n] = DEFERRED
        for n in rnd.sample(active, rnd.randint(1, len(active))):
            states[n] = FAILED if n in sc.fails else SUCCEEDED
            if n in sc.choice and n not in sc.fails:
                branches[n] = sc.choice[n]
        if gate:
            held = dict.fromkeys(rnd.sample(nodes, rnd.randint(0, len(nodes))), HELD)
        if pause:
            paused = rnd.random() < 0.3
    raise AssertionError("the simulation did not terminate")


def check_outcome(sc: Scenario, policy, out: Outcome) -> None:
    """Invariants of a finished run that was not stopped by the user."""
    dag, final = sc.dag, out.states
    assert all(s in TERMINAL for s in final.values())
    failed = {n for n, s in final.items() if s == FAILED}
    by_state = {s: {n for n, t in final.items() if t == s} for s in TERMINAL}
    assert failed <= sc.fails
    assert (out.run_status == "failed") == bool(failed)
    assert out.run_status in ("failed", "succeeded")

    live = live_nodes(dag, sc.choice)
    downstream_of_failure = strict_descendants(dag, failed)
    # A skip needs every incoming edge dead, hence every root path crosses a not-taken branch.
    assert by_state[SKIPPED] <= set(dag.nodes) - live
    # upstream_failed always means "downstream of a node that failed".
    assert by_state[UPSTREAM_FAILED] <= downstream_of_failure
    assert not (downstream_of_failure & (failed | by_state[SUCCEEDED]))

    if not failed:
        # Without failures the skipped nodes are exactly the ones cut off by branches.
        assert by_state[SKIPPED] == set(dag.nodes) - live
        assert by_state[SUCCEEDED] == live
    if policy == COMPLETE_UNRELATED:
        assert by_state[UPSTREAM_FAILED] == downstream_of_failure
        assert not by_state[STOPPED]
        # Every node not downstream of a failure behaves as in a run without failures.
        assert by_state[SKIPPED] == set(dag.nodes) - live - downstream_of_failure
        assert by_state[SUCCEEDED] | failed == live - downstream_of_failure
    if policy == COMPLETE_RUNNING:
        first = next((i for i, s in enumerate(out.steps) if FAILED in s.before.values()), None)
        if first is not None:
            assert not any(s.decision.ready for s in out.steps[first:])
            # What had started when the failure came finishes (a deferred wait too).
            started = {n for n, s in out.steps[first].before.items() if s in STARTED}
            assert not {n for n in started if final[n] == STOPPED}, started
    if policy == STOP_ALL:
        first = next((i for i, s in enumerate(out.steps) if FAILED in s.before.values()), None)
        if first is not None:
            assert first == len(out.steps) - 1, "stop_all let the run go on after a failure"


def check_outcome_with_rules(sc: Scenario, policy, out: Outcome) -> None:
    """Invariants of a finished run over nodes with any trigger rule and disabled nodes."""
    dag, final = sc.dag, out.states
    assert all(s in TERMINAL for s in final.values())
    failed = {n for n, s in final.items() if s == FAILED}
    assert failed <= sc.fails
    # The run fails when any node failed, whatever a cleanup node did afterwards.
    assert (out.run_status == "failed") == bool(failed or UPSTREAM_FAILED in final.values())
    if not failed:
        assert out.run_status == "succeeded"
    for n, s in final.items():
        verdict = says(dag, n, final, final, out.branches)
        if s in (SUCCEEDED, FAILED):
            assert n not in dag.disabled, n
            assert verdict == "run", (n, s, dag.rule(n))
        elif s == DISABLED:
            assert n in dag.disabled and verdict == "run", n
        elif s == SKIPPED:
            assert verdict == "skip", (n, dag.rule(n))
        elif s == UPSTREAM_FAILED:
            assert verdict == "fail", (n, dag.rule(n))
        else:
            assert s == STOPPED
            # Only the error policy stops nodes, and never one a failure can trigger.
            assert policy != COMPLETE_UNRELATED and failed, n
            assert not dag.tolerates_failure(n), n
    if policy == COMPLETE_UNRELATED or not failed:
        # No halt: every node ends as its rule says of its upstreams' final states.
        for n, s in final.items():
            verdict = says(dag, n, final, final, out.branches)
            expected = {
                "run": {DISABLED} if n in dag.disabled else {SUCCEEDED, FAILED},
                "skip": {SKIPPED},
                "fail": {UPSTREAM_FAILED},
            }[verdict]
            assert s in expected, (n, s, verdict)
    # A node that a failure can trigger runs whenever its rule is met, under every policy.
    for n in dag.nodes:
        if dag.tolerates_failure(n) and says(dag, n, final, final, out.branches) == "run":
            assert final[n] in ({DISABLED} if n in dag.disabled else {SUCCEEDED, FAILED}), n


# --------------------------------------------------------------------------- properties


@RULES
@given(sc=scenarios(rules=True), policy=st.sampled_from(POLICIES))
def test_every_trigger_rule_and_disabled_node_in_simulated_runs(sc, policy):
    check_outcome_with_rules(sc, policy, simulate(sc, policy))


@RULES
@given(sc=scenarios(rules=True), policy=st.sampled_from(POLICIES))
def test_trigger_rules_under_gates_and_pauses(sc, policy):
    out = simulate(sc, policy, gate=True, pause=True)
    check_outcome_with_rules(sc, policy, out)


@RULES
@given(sc=scenarios(rules=True), policy=st.sampled_from(POLICIES), stop_at=st.integers(0, 30))
def test_stopping_a_run_with_trigger_rules_ends_every_node(sc, policy, stop_at):
    out = simulate(sc, policy, gate=True, stop_at=stop_at)
    assert all(s in TERMINAL for s in out.states.values())
    if out.steps[-1].stopping:
        assert out.run_status == "stopped"


@PROPERTY
@given(sc=scenarios(), policy=st.sampled_from(POLICIES))
def test_simulated_runs_keep_every_invariant(sc, policy):
    check_outcome(sc, policy, simulate(sc, policy))


@PROPERTY
@given(sc=scenarios(), policy=st.sampled_from(POLICIES))
def test_concurrency_gate_and_pause_only_delay_nodes(sc, policy):
    out = simulate(sc, policy, gate=True, pause=True)
    check_outcome(sc, policy, out)
    for step in out.steps:
        if step.paused:
            assert not step.decision.ready


@PROPERTY
@given(sc=scenarios(), policy=st.sampled_from(POLICIES), stop_at=st.integers(0, 30))
def test_stopping_ends_with_every_node_terminal(sc, policy, stop_at):
    out = simulate(sc, policy, gate=True, stop_at=stop_at)
    assert all(s in TERMINAL for s in out.states.values())
    if out.steps[-1].stopping:
        assert out.run_status == "stopped"


@st.composite
def arbitrary_situations(draw, rules=False):
    """Any state map at all, including ones the simulator never reaches (O&M edits)."""
    dag = draw(dags(max_nodes=12, rules=rules))
    nodes = sorted(dag.nodes)
    # Weighted towards the states whose combinations at a join are the interesting ones.
    weighted = [PENDING, SUCCEEDED, SKIPPED, FAILED] * 3 + sorted(TERMINAL | OPEN)
    states = {n: draw(st.sampled_from(weighted)) for n in nodes}
    branches = {
        c: draw(st.sampled_from(["true", "false"]))
        for c in sorted(condition_nodes(dag))
        if states[c] == SUCCEEDED
    }
    held = dict.fromkeys(draw(st.sets(st.sampled_from(nodes))) if nodes else (), HELD)
    return dag, states, branches, held


@PROPERTY
@given(
    situation=arbitrary_situations(),
    policy=st.sampled_from(POLICIES),
    paused=st.booleans(),
    stopping=st.booleans(),
)
def test_any_state_map_gives_a_consistent_idempotent_decision(situation, policy, paused, stopping):
    check_any_state_map(situation, policy, paused, stopping)


@RULES
@given(
    situation=arbitrary_situations(rules=True),
    policy=st.sampled_from(POLICIES),
    paused=st.booleans(),
    stopping=st.booleans(),
)
def test_any_state_map_with_trigger_rules_gives_a_consistent_idempotent_decision(
    situation, policy, paused, stopping
):
    check_any_state_map(situation, policy, paused, stopping)


def check_any_state_map(situation, policy, paused, stopping):
    dag, states, branches, held = situation
    d = decide(
        dag,
        states,
        policy=policy,
        branches=branches,
        held=held,
        paused=paused,
        stopping=stopping,
    )
    check_step(dag, policy, branches, Step(states, d, apply(states, d), held, paused, stopping))


@PROPERTY
@given(
    upstreams=st.lists(
        st.tuples(
            st.sampled_from(sorted(ALL)),
            st.sampled_from([None, "true", "false"]),  # edge label
            st.sampled_from(["true", "false"]),  # branch the upstream took, if it succeeded
        ),
        max_size=5,
    ),
    own_state=st.sampled_from([PENDING, WAITING]),
)
def test_join_rule_for_every_combination_of_upstream_states(upstreams, own_state):
    # One node "n" fed by independent upstreams 0..k-1: the single-node rule in isolation.
    dag = Dag.build(
        [*range(len(upstreams)), "n"], [(i, "n", e) for i, (_, e, _) in enumerate(upstreams)]
    )
    states = {i: state for i, (state, _, _) in enumerate(upstreams)} | {"n": own_state}
    branches = {i: took for i, (state, _, took) in enumerate(upstreams) if state == SUCCEEDED}
    d = decide(dag, states, policy=COMPLETE_UNRELATED, branches=branches)
    check_step(
        dag, COMPLETE_UNRELATED, branches, Step(states, d, apply(states, d), {}, False, False)
    )
    got = apply(states, d)["n"]

    ups = [(s, e, took) for s, e, took in upstreams]
    if any(s in (FAILED, UPSTREAM_FAILED, STOPPED) for s, _, _ in ups):
        assert got == UPSTREAM_FAILED
    elif any(s not in TERMINAL for s, _, _ in ups):
        assert got == own_state
    elif ups and all(
        s == SKIPPED or (s == SUCCEEDED and e is not None and e != took) for s, e, took in ups
    ):
        assert got == SKIPPED
    else:
        assert got == QUEUED


@PROPERTY
@given(
    upstreams=st.lists(
        st.tuples(
            st.sampled_from(sorted(ALL)),
            st.sampled_from([None, "true", "false"]),
            st.sampled_from(["true", "false"]),
        ),
        max_size=5,
    ),
    rule=st.sampled_from(TRIGGER_RULES),
    disabled=st.booleans(),
    policy=st.sampled_from(POLICIES),
)
def test_each_trigger_rule_for_every_combination_of_upstream_states(
    upstreams, rule, disabled, policy
):
    dag = Dag.build(
        [*range(len(upstreams)), "n"],
        [(i, "n", e) for i, (_, e, _) in enumerate(upstreams)],
        rules={"n": rule},
        disabled={"n"} if disabled else (),
    )
    states = {i: state for i, (state, _, _) in enumerate(upstreams)} | {"n": PENDING}
    branches = {i: took for i, (state, _, took) in enumerate(upstreams) if state == SUCCEEDED}
    d = decide(dag, states, policy=policy, branches=branches)
    after = apply(states, d)
    check_step(dag, policy, branches, Step(states, d, after, {}, False, False))
    verdict = says(dag, "n", after, states, branches)
    halted = policy != COMPLETE_UNRELATED and FAILED in states.values()
    got = after["n"]
    if verdict == "fail":
        assert got == UPSTREAM_FAILED
    elif verdict == "skip":
        assert got == SKIPPED
    elif halted and rule not in FAILURE_RULES:
        assert got == STOPPED
    elif verdict == "wait":
        assert got == PENDING
    else:
        assert got == (DISABLED if disabled else QUEUED)


def test_cleanup_node_runs_after_a_failure_under_every_policy():
    for policy in POLICIES:
        dag = Dag.build(
            ["load", "next", "cleanup"],
            [("load", "next"), ("load", "cleanup")],
            rules={"cleanup": ONE_FAILED},
        )
        out = run_all(dag, policy=policy, fails={"load"})
        assert out.states == {"load": FAILED, "next": UPSTREAM_FAILED, "cleanup": SUCCEEDED}
        assert out.run_status == "failed"
        # Without the failure the cleanup is skipped and the run succeeds.
        out = run_all(dag, policy=policy)
        assert out.states["cleanup"] == SKIPPED and out.run_status == "succeeded"


def test_all_done_cleanup_waits_for_a_running_node_under_complete_running():
    dag = Dag.build(["a", "b", "c"], [("a", "c"), ("b", "c")], rules={"c": ALL_DONE})
    states = {"a": FAILED, "b": RUNNING, "c": PENDING}
    d = decide(dag, states, policy=COMPLETE_RUNNING)
    assert d == Decision(stop_from=NOT_STARTED)
    d = decide(dag, states | {"b": SUCCEEDED}, policy=COMPLETE_RUNNING)
    assert d.ready == {"c"} and d.run_status is None
    # A queued cleanup node is not stopped by a later halt decision.
    assert decide(dag, {"a": FAILED, "b": FAILED, "c": QUEUED}, policy=STOP_ALL).is_noop


def test_disabled_node_passes_through_and_its_downstream_runs():
    dag = Dag.build("abc", [("a", "b"), ("b", "c")], disabled={"b"})
    out = run_all(dag)
    assert out.states == {"a": SUCCEEDED, "b": DISABLED, "c": SUCCEEDED}
    assert out.run_status == "succeeded"
    # A disabled node after a failure is upstream-failed like any other.
    out = run_all(dag, policy=COMPLETE_UNRELATED, fails={"a"})
    assert out.states == {"a": FAILED, "b": UPSTREAM_FAILED, "c": UPSTREAM_FAILED}


def test_one_success_starts_at_the_first_success_and_all_failed_skips_at_once():
    dag = Dag.build(
        ["a", "b", "any", "allf"],
        [("a", "any"), ("b", "any"), ("a", "allf"), ("b", "allf")],
        rules={"any": ONE_SUCCESS, "allf": ALL_FAILED},
    )
    d = decide(
        dag, {"a": SUCCEEDED, "b": RUNNING, "any": PENDING, "allf": PENDING}, policy=STOP_ALL
    )
    assert d.ready == {"any"} and d.skipped == {"allf"}


def test_node_scoped_run_runs_its_scope_and_never_fails_for_the_rest():
    dag = Dag.build("abcd", [("a", "b"), ("b", "c"), ("a", "d")])
    assert scope_of(dag, from_node="b") == {"b", "c"}
    assert scope_of(dag, nodes=["d"]) == {"d"}
    # Given everything outside the scope is not_run from the start
    states = {n: (PENDING if n in {"b", "c"} else NOT_RUN) for n in dag.nodes}
    d = decide(dag, states, policy=STOP_ALL)
    # Then the scope's first node starts at once, as if its upstream had succeeded
    assert d.ready == {"b"}
    states = apply(states, d) | {"b": SUCCEEDED}
    states = apply(states, decide(dag, states, policy=STOP_ALL)) | {"c": SUCCEEDED}
    assert decide(dag, states, policy=STOP_ALL).run_status == "succeeded"
    assert run_outcome([NOT_RUN, SUCCEEDED]) == "succeeded"
    assert run_outcome([NOT_RUN, FAILED]) == "failed"


def test_build_rejects_unknown_rules():
    with pytest.raises(ValueError, match="trigger rule"):
        Dag.build("a", [], rules={"a": "sometimes"})
    with pytest.raises(ValueError, match="unknown node"):
        Dag.build("a", [], rules={"z": ONE_FAILED})
    assert Dag.build("a", [], rules={"a": ALL_SUCCESS}) == Dag.build("a", [])


@PROPERTY
@given(dag=dags(), data=st.data())
def test_descendants_closure_matches_networkx(dag, data):
    nodes = sorted(dag.nodes)
    picked = data.draw(st.sets(st.sampled_from(nodes))) if nodes else set()
    expected = set(picked) | strict_descendants(dag, picked)
    assert descendants_closure(dag, picked) == expected
    for n in picked:
        assert nodes_to_rerun_from(dag, n) == {n} | strict_descendants(dag, {n})
        assert dag.descendants(n) == strict_descendants(dag, {n})


@PROPERTY
@given(dag=dags(max_nodes=10), data=st.data())
def test_critical_path_is_the_longest_chain_of_nodes_that_ran(dag, data):
    nodes = sorted(dag.nodes)
    ran = data.draw(st.sets(st.sampled_from(nodes))) if nodes else set()
    timings = {}
    for n in sorted(ran):
        start = data.draw(st.integers(0, 100))
        timings[n] = (start, start + data.draw(st.integers(0, 50)))

    def length(path):
        return sum(timings[n][1] - timings[n][0] for n in path)

    g = nx_graph(dag).subgraph(ran)
    best = max(
        (length(p) for a, b in itertools.product(ran, ran) for p in nx.all_simple_paths(g, a, b)),
        default=0,
    )
    best = max([best] + [length([n]) for n in ran])
    path = critical_path(dag, timings)
    assert bool(path) == bool(ran)
    assert all(g.has_edge(a, b) for a, b in itertools.pairwise(path))
    assert length(path) == best


# --------------------------------------------------------------------------- examples


def run_all(dag, *, policy=COMPLETE_RUNNING, fails=(), choice=None) -> Outcome:
    """Deterministic run: every dispatched node finishes at each step."""
    states = dict.fromkeys(dag.nodes, PENDING)
    branches = {}
    while True:
        d = decide(dag, states, policy=policy, branches=branches)
        states = apply(states, d)
        if d.run_status:
            return Outcome(states, branches, d.run_status)
        for n in [n for n, s in states.items() if s in ACTIVE]:
            states[n] = FAILED if n in fails else SUCCEEDED
            if choice and n in choice:
                branches[n] = choice[n]


def test_diamond_runs_in_order():
    dag = Dag.build("abcd", [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")])
    states = dict.fromkeys("abcd", PENDING)

    d = decide(dag, states, policy=COMPLETE_RUNNING)
    assert d.ready == {"a"} and d.run_status is None
    states = apply(states, d) | {"a": SUCCEEDED}
    d = decide(dag, states, policy=COMPLETE_RUNNING)
    assert d.ready == {"b", "c"}
    states = apply(states, d) | {"b": SUCCEEDED}
    # The join waits for both of its upstreams.
    assert decide(dag, states, policy=COMPLETE_RUNNING).is_noop
    states |= {"c": SUCCEEDED}
    d = decide(dag, states, policy=COMPLETE_RUNNING)
    assert d.ready == {"d"}
    states = apply(states, d) | {"d": SUCCEEDED}
    assert decide(dag, states, policy=COMPLETE_RUNNING).run_status == "succeeded"


@pytest.mark.parametrize("taken, ran, skipped", [("true", "t1", "f1"), ("false", "f1", "t1")])
def test_condition_runs_one_branch_and_skips_the_other_transitively(taken, ran, skipped):
    dag = Dag.build(
        ["cond", "t1", "t2", "f1", "f2"],
        [("cond", "t1", "true"), ("t1", "t2"), ("cond", "f1", "false"), ("f1", "f2")],
    )
    out = run_all(dag, choice={"cond": taken})
    assert out.run_status == "succeeded"
    assert out.states[ran] == SUCCEEDED
    assert out.states[skipped] == SKIPPED
    assert {out.states["t2"], out.states["f2"]} == {SUCCEEDED, SKIPPED}


def test_skipping_propagates_in_one_call():
    dag = Dag.build(["cond", "x", "y", "z"], [("cond", "x", "false"), ("x", "y"), ("y", "z")])
    states = {"cond": SUCCEEDED, "x": PENDING, "y": PENDING, "z": WAITING}
    d = decide(dag, states, policy=COMPLETE_RUNNING, branches={"cond": "true"})
    assert d.skipped == {"x", "y", "z"}
    assert d.run_status == "succeeded"


def test_join_after_a_condition_runs_when_one_branch_was_taken():
    dag = Dag.build(
        ["cond", "yes", "no", "join"],
        [("cond", "yes", "true"), ("cond", "no", "false"), ("yes", "join"), ("no", "join")],
    )
    out = run_all(dag, choice={"cond": "true"})
    assert out.states == {"cond": SUCCEEDED, "yes": SUCCEEDED, "no": SKIPPED, "join": SUCCEEDED}
    assert out.run_status == "succeeded"


def test_join_of_only_not_taken_branches_is_skipped():
    dag = Dag.build(["cond", "join"], [("cond", "join", "false"), ("cond", "join", "false")])
    assert run_all(dag, choice={"cond": "true"}).states["join"] == SKIPPED


def test_condition_marked_succeeded_without_a_branch_lets_both_branches_run():
    dag = Dag.build(["cond", "yes", "no"], [("cond", "yes", "true"), ("cond", "no", "false")])
    states = {"cond": SUCCEEDED, "yes": PENDING, "no": PENDING}
    assert decide(dag, states, policy=COMPLETE_RUNNING).ready == {"yes", "no"}


def test_complete_running_lets_started_nodes_finish_and_starts_nothing():
    dag = Dag.build(["a", "b", "c", "d", "w", "q"], [("a", "b")])
    states = {"a": FAILED, "b": PENDING, "c": RUNNING, "d": PENDING, "w": DEFERRED, "q": QUEUED}
    d = decide(dag, states, policy=COMPLETE_RUNNING)
    # The running node and the deferred one (between two checks) finish; the queued one
    # had not started: it is stopped, if no worker claims it first.
    assert d == Decision(upstream_failed={"b"}, stop={"d", "q"}, stop_from=NOT_STARTED)
    states = apply(states, d) | {"c": SUCCEEDED, "w": SUCCEEDED}
    assert decide(dag, states, policy=COMPLETE_RUNNING).run_status == "failed"


def test_nodes_stopped_by_a_halt_take_their_downstream_as_stopped_not_upstream_failed():
    dag = Dag.build(["f", "p", "q"], [("p", "q")])
    states = {"f": FAILED, "p": PENDING, "q": PENDING}
    assert decide(dag, states, policy=COMPLETE_RUNNING) == Decision(
        stop={"p", "q"}, stop_from=NOT_STARTED, run_status="failed"
    )


def test_a_failed_upstream_wins_over_a_not_taken_branch():
    dag = Dag.build(["cond", "f", "join"], [("cond", "join", "false"), ("f", "join")])
    states = {"cond": SUCCEEDED, "f": FAILED, "join": PENDING}
    d = decide(dag, states, policy=COMPLETE_UNRELATED, branches={"cond": "true"})
    assert d == Decision(upstream_failed={"join"}, run_status="failed")


def test_a_node_cancelled_outside_a_stop_fails_its_downstream():
    dag = Dag.build("ab", [("a", "b")])
    d = decide(dag, {"a": STOPPED, "b": PENDING}, policy=COMPLETE_UNRELATED)
    assert d == Decision(upstream_failed={"b"}, run_status="failed")
    assert decide(Dag.build("a", []), {"a": STOPPED}, policy=STOP_ALL).run_status == "stopped"


def test_stop_all_stops_running_and_deferred_nodes_at_once():
    dag = Dag.build(["a", "b", "c", "d", "w"], [("a", "b")])
    states = {"a": FAILED, "b": PENDING, "c": RUNNING, "d": PENDING, "w": DEFERRED}
    d = decide(dag, states, policy=STOP_ALL)
    assert d == Decision(upstream_failed={"b"}, stop={"c", "d", "w"}, run_status="failed")
    assert d.stop_from == OPEN


def test_complete_unrelated_continues_everything_not_downstream():
    dag = Dag.build(["a", "b", "b2", "c", "d"], [("a", "b"), ("b", "b2"), ("c", "d")])
    states = {"a": FAILED, "b": PENDING, "b2": PENDING, "c": RUNNING, "d": PENDING}
    d = decide(dag, states, policy=COMPLETE_UNRELATED)
    assert d == Decision(upstream_failed={"b", "b2"})
    states = apply(states, d) | {"c": SUCCEEDED}
    d = decide(dag, states, policy=COMPLETE_UNRELATED)
    assert d.ready == {"d"} and d.run_status is None
    states = apply(states, d) | {"d": SUCCEEDED}
    assert decide(dag, states, policy=COMPLETE_UNRELATED).run_status == "failed"


def test_pause_starts_nothing_and_resume_continues():
    dag = Dag.build("ab", [("a", "b")])
    states = {"a": SUCCEEDED, "b": PENDING}
    assert decide(dag, states, policy=COMPLETE_RUNNING, paused=True) == Decision()
    assert decide(dag, states, policy=COMPLETE_RUNNING).ready == {"b"}


def test_pause_sends_queued_nodes_back_and_lets_started_ones_finish_their_wait():
    dag = Dag.build("qrw", [])
    states = {"q": QUEUED, "r": RUNNING, "w": DEFERRED}
    d = decide(dag, states, policy=COMPLETE_RUNNING, paused=True)
    assert d == Decision(unqueue={"q"})
    assert apply(states, d) == {"q": PENDING, "r": RUNNING, "w": DEFERRED}
    # The deferred node's next check is still sent in a paused run; a queued node is not.
    assert sends(DEFERRED, paused=True) and not sends(QUEUED, paused=True)
    assert sends(QUEUED, paused=False)
    assert attempt_state(paused=True) == PENDING and attempt_state(paused=False) == QUEUED


def test_stopping_stops_deferred_nodes_too():
    dag = Dag.build("wx", [("w", "x")])
    d = decide(dag, {"w": DEFERRED, "x": PENDING}, policy=COMPLETE_RUNNING, stopping=True)
    assert d == Decision(stop={"w", "x"}, run_status="stopped")


def test_gate_holds_ready_nodes_in_waiting_until_released_and_says_why():
    dag = Dag.build("ab", [("a", "b")])
    states = {"a": PENDING, "b": PENDING}
    d = decide(dag, states, policy=COMPLETE_RUNNING, held={"a": HELD, "b": HELD})
    # b is held but not yet eligible, so it stays pending.
    assert d == Decision(waiting={"a"}, reasons={"a": HELD})
    states = apply(states, d)
    assert decide(dag, states, policy=COMPLETE_RUNNING).ready == {"a"}


def test_stopping_stops_every_unfinished_node():
    dag = Dag.build("abc", [("a", "b")])
    states = {"a": RUNNING, "b": PENDING, "c": SUCCEEDED}
    d = decide(dag, states, policy=COMPLETE_UNRELATED, stopping=True)
    assert d == Decision(stop={"a", "b"}, run_status="stopped")


def test_empty_dag_succeeds_at_once():
    assert decide(Dag.build([], []), {}, policy=STOP_ALL).run_status == "succeeded"


def test_mark_succeeded_then_restore_finishes_the_run():
    dag = Dag.build("abcd", [("a", "b"), ("b", "c"), ("a", "d")])
    out = run_all(dag, fails={"b"})
    assert out.states == {"a": SUCCEEDED, "b": FAILED, "c": UPSTREAM_FAILED, "d": SUCCEEDED}
    # Given the user marks b succeeded, when the run is restored, then c and d run.
    states = out.states | {"b": SUCCEEDED}
    states |= dict.fromkeys(restorable(states), PENDING)
    out2_status = None
    while out2_status is None:
        d = decide(dag, states, policy=COMPLETE_RUNNING)
        states = apply(states, d)
        states |= {n: SUCCEEDED for n, s in states.items() if s in ACTIVE}
        out2_status = d.run_status
    assert out2_status == "succeeded" and set(states.values()) == {SUCCEEDED}


def test_rerun_from_a_node_resets_it_and_its_downstream():
    dag = Dag.build("abcd", [("a", "b"), ("b", "c"), ("a", "d")])
    assert nodes_to_rerun_from(dag, "b") == {"b", "c"}
    assert restorable(
        {"a": SUCCEEDED, "b": FAILED, "c": UPSTREAM_FAILED, "d": STOPPED, "e": PENDING}
    ) == {
        "b",
        "c",
        "d",
        "e",
    }


def test_build_rejects_cycles_unknown_nodes_and_bad_branches():
    with pytest.raises(ValueError, match="cycle"):
        Dag.build("ab", [("a", "b"), ("b", "a")])
    with pytest.raises(ValueError, match="unknown node"):
        Dag.build("a", [("a", "z")])
    with pytest.raises(ValueError, match="branch"):
        Dag.build("ab", [("a", "b", "maybe")])
    assert Dag.build("ab", [("a", "b")]) == Dag.build("ab", [("a", "b", None)])


def test_decide_rejects_missing_states_and_unknown_policy():
    dag = Dag.build("ab", [("a", "b")])
    with pytest.raises(ValueError, match="no state"):
        decide(dag, {"a": PENDING}, policy=STOP_ALL)
    with pytest.raises(ValueError, match="policy"):
        decide(dag, {"a": PENDING, "b": PENDING}, policy="retry_forever")


def test_critical_path_with_datetimes():
    t0 = datetime(2024, 1, 15)
    dag = Dag.build("abcd", [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")])
    minutes = {"a": (0, 1), "b": (1, 10), "c": (1, 3), "d": (10, 11)}
    timings = {
        n: (t0 + timedelta(minutes=s), t0 + timedelta(minutes=e)) for n, (s, e) in minutes.items()
    }
    assert critical_path(dag, timings) == ["a", "b", "d"]
    assert critical_path(dag, {}) == []


def test_a_thousand_node_run_runs_to_success():
    """(How fast decide() is on it is a figure of `manage.py benchmark`: decide_1000_ms.)"""
    rnd = random.Random(7)
    n = 1000
    edges = {(i, j) for j in range(1, n) for i in rnd.sample(range(j), min(j, 3))}
    dag = Dag.build(range(n), edges)
    states = dict.fromkeys(dag.nodes, PENDING)
    while True:
        d = decide(dag, states, policy=COMPLETE_UNRELATED)
        states = apply(states, d)
        if d.run_status:
            break
        states |= {n: SUCCEEDED for n, s in states.items() if s in ACTIVE}
    assert d.run_status == "succeeded"


def test_run_outcome():
    assert run_outcome([SUCCEEDED, DEFERRED]) is None
    assert run_outcome([SUCCEEDED, SKIPPED]) == "succeeded"
    assert run_outcome([SUCCEEDED, UPSTREAM_FAILED]) == "failed"
    assert run_outcome([SUCCEEDED, STOPPED]) == "stopped"
    assert run_outcome([FAILED], stopping=True) == "stopped"
    assert run_outcome([]) == "succeeded"


def test_marking_a_failed_node_succeeded_reopens_what_only_it_blocked():
    dag = Dag.build("abcdeo", [("a", "b"), ("b", "c"), ("a", "d"), ("e", "d")])
    states = {
        "a": SUCCEEDED,  # marked succeeded (was failed)
        "b": UPSTREAM_FAILED,
        "c": UPSTREAM_FAILED,
        "d": UPSTREAM_FAILED,  # e failed too: d stays upstream-failed
        "e": FAILED,
        "o": STOPPED,  # stopped by the error policy
    }
    assert reopened_by_mark_success(dag, states, "a", stopped_by_user=False) == {"b", "c", "o"}
    assert reopened_by_mark_success(dag, states, "a", stopped_by_user=True) == {"b", "c"}
