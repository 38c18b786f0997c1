"""The engine's shortcuts reach exactly the states core.decide reaches (hypothesis, random runs).

Two shortcuts serve the success of a node, the engine's hot path: `incremental.advance`
examines only the nodes downstream of it, and `core.queue_directly` tells the recording
statement which downstream nodes it may queue in the same round trip. Runs are simulated
the way the ORM layer drives the engine: failures, pauses, resumes and gate changes go
through a full `decide` (services.decisions.decide_full), successes through the
shortcuts, which must agree with a full `decide` on the same states every time, over
random DAGs, failures, branches, policies, pauses and gates, with every trigger rule and
disabled nodes.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from operations.engine import incremental
from operations.engine.core import (
    ACTIVE,
    COMPLETE_RUNNING,
    COMPLETE_UNRELATED,
    DEFERRED,
    FAILED,
    HELD_BY_CONCURRENCY_POLICY,
    NOT_QUEUED,
    PENDING,
    QUEUED,
    RUNNING,
    STOP_ALL,
    SUCCEEDED,
    TERMINAL,
    TRIGGER_RULES,
    Dag,
    apply,
    decide,
    queue_directly,
)
from operations.engine.incremental import advance


@st.composite
def scenarios(draw):
    n = draw(st.integers(min_value=1, max_value=12))
    edges = set()
    for v in range(1, n):
        for u in draw(st.sets(st.integers(min_value=0, max_value=v - 1), max_size=3)):
            edges.add((u, v))
    conditions = draw(st.sets(st.sampled_from(range(n)), max_size=3))
    labelled = []
    for u, v in sorted(edges):
        branch = draw(st.sampled_from(["true", "false"])) if u in conditions else None
        labelled.append((u, v, branch))
    rules = {}
    if draw(st.booleans()):
        rules = {v: draw(st.sampled_from(TRIGGER_RULES)) for v in range(n)}
    disabled = draw(st.sets(st.sampled_from(range(n)), max_size=2))
    return {
        "dag": Dag.build(range(n), labelled, rules=rules, disabled=disabled),
        "conditions": conditions,
        "policy": draw(st.sampled_from([COMPLETE_RUNNING, STOP_ALL, COMPLETE_UNRELATED])),
        # A run whose concurrency policy gates it behind a previous run (may hold nodes).
        "gated": draw(st.booleans()),
        "seed": draw(st.randoms(use_true_random=False)),
        "fail_rate": draw(st.sampled_from([0.0, 0.2, 0.5])),
        "pause_rate": draw(st.sampled_from([0.0, 0.2])),
    }


def transitions(decision) -> tuple:
    return (
        decision.ready,
        decision.waiting,
        decision.reasons,
        decision.skipped,
        decision.upstream_failed,
        decision.disabled,
        decision.stop,
        decision.unqueue,
    )


@settings(max_examples=400, deadline=None)
@given(scenarios(), st.booleans())
def test_after_a_success_the_shortcuts_reach_exactly_what_decide_reaches(scenario, probe_open):
    dag, policy, rnd = scenario["dag"], scenario["policy"], scenario["seed"]
    topo = {node: i for i, node in enumerate(dag.topological_order)}
    states = dict.fromkeys(dag.nodes, PENDING)
    branches: dict = {}
    held: dict = {}
    paused = False

    def full(**extra):
        return decide(
            dag, states, policy=policy, branches=branches, held=held, paused=paused, **extra
        )

    states = apply(states, full())
    for _ in range(6 * len(dag.nodes)):
        # What the ORM layer decides in full: a pause or resume, a gate that moved.
        if rnd.random() < scenario["pause_rate"]:
            paused = not paused
            states = apply(states, full())
        if scenario["gated"] and rnd.random() < 0.3:
            held = dict.fromkeys(
                rnd.sample(sorted(dag.nodes), rnd.randint(0, len(dag.nodes))),
                HELD_BY_CONCURRENCY_POLICY,
            )
            states = apply(states, full())
        active = sorted(n for n, s in states.items() if s in ACTIVE)
        if not active:
            if all(s in TERMINAL for s in states.values()):
                break
            # Only a pause or the gate holds a live run: lift them (a full decide).
            paused, held = False, {}
            states = apply(states, full())
            continue
        for n in active:
            if states[n] in (QUEUED, DEFERRED) and rnd.random() < 0.5:
                states[n] = RUNNING  # a worker claims it (a deferred node for its next check)
        node = rnd.choice(active)
        if states[node] == RUNNING and rnd.random() < 0.2:
            states[node] = DEFERRED  # between two checks, without a worker
            continue
        if rnd.random() < scenario["fail_rate"]:
            states[node] = FAILED
            states = apply(states, full())
            continue
        states[node] = SUCCEEDED
        branch = rnd.choice(["true", "false"]) if node in scenario["conditions"] else None
        if branch:
            branches[node] = branch
        expected = full()

        # advance() starts knowing only the finished node and loads what it needs.
        known = {node: states[node]}
        fast = advance(
            dag,
            topo,
            [node],
            known,
            dict(branches),
            load=lambda ns, s=states, k=known: k.update({n: s[n] for n in ns}),
            held=lambda ns, h=held: {n: h[n] for n in ns if n in h},
            any_open=lambda ns, s=states: any(s[n] not in TERMINAL for n in ns),
            paused=paused,
            # With probe_open every node counts as having "many" upstreams: probed first.
            many=0 if probe_open else incremental.MANY_UPSTREAMS,
        )
        assert transitions(fast) == transitions(expected)

        # queue_directly(): what the recording statement queues (nodes still not queued).
        direct = queue_directly(dag, node, branch, paused=paused, may_hold=scenario["gated"])
        if direct is not None:
            queued = {v for v in direct if states[v] in NOT_QUEUED}
            assert expected.transitions() == dict.fromkeys(queued, QUEUED)
        states = apply(states, expected)


def test_advance_loads_only_what_it_needs():
    dag = Dag.build(range(5), [(0, 1), (1, 2), (3, 4)])
    loaded = []
    states = {0: SUCCEEDED}

    def load(nodes):
        loaded.append(set(nodes))
        states.update(dict.fromkeys(nodes, PENDING))

    decision = advance(dag, {n: n for n in range(5)}, [0], states, {}, load=load)
    assert decision.ready == {1}
    assert loaded == [{1}]


def test_queue_directly_answers_only_for_a_success_that_suffices():
    dag = Dag.build(
        ["a", "b", "c", "cond", "yes", "no", "j1", "j2", "join"],
        [
            ("a", "b"),
            ("a", "c"),
            ("cond", "yes", "true"),
            ("cond", "no", "false"),
            ("j1", "join"),
            ("j2", "join"),
        ],
    )
    assert sorted(queue_directly(dag, "a", None)) == ["b", "c"]
    assert queue_directly(dag, "b", None) == []  # nothing downstream
    # A branch not taken is the full decision's (its node is skipped).
    assert queue_directly(dag, "cond", "true") is None
    # A join waits for its other upstream.
    assert queue_directly(dag, "j1", None) is None
    # A disabled downstream node, or one whose rule a success alone does not meet, is the
    # full decision's.
    rules = Dag.build(["a", "b", "c"], [("a", "b"), ("a", "c")], rules={"c": "one_failed"})
    assert queue_directly(rules, "a", None) is None
    off = Dag.build(["a", "b"], [("a", "b")], disabled={"b"})
    assert queue_directly(off, "a", None) is None
    done = Dag.build(["a", "b"], [("a", "b")], rules={"b": "all_done"})
    assert queue_directly(done, "a", None) == ["b"]
    # Paused, or gated by a previous run: never directly.
    assert queue_directly(dag, "a", None, paused=True) is None
    assert queue_directly(dag, "a", None, may_hold=True) is None
