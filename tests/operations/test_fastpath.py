"""The incremental step after a success equals the full core.decide (hypothesis, random DAGs)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from operations.engine import incremental
from operations.engine.core import (
    ACTIVE,
    COMPLETE_RUNNING,
    COMPLETE_UNRELATED,
    FAILED,
    PENDING,
    STOP_ALL,
    SUCCEEDED,
    TERMINAL,
    Dag,
    apply,
    decide,
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
    return {
        "dag": Dag.build(range(n), labelled),
        "conditions": conditions,
        "policy": draw(st.sampled_from([COMPLETE_RUNNING, STOP_ALL, COMPLETE_UNRELATED])),
        "blocked": draw(st.sets(st.sampled_from(range(n)), max_size=3)),
        "seed": draw(st.randoms(use_true_random=False)),
        "fail_rate": draw(st.sampled_from([0.0, 0.2, 0.5])),
    }


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.booleans())
def test_fast_path_after_a_success_matches_the_full_decision(scenario, probe_open):
    dag, policy, blocked, rnd = (scenario[k] for k in ("dag", "policy", "blocked", "seed"))
    topo = {node: i for i, node in enumerate(dag.topological_order)}
    states = dict.fromkeys(dag.nodes, PENDING)
    branches: dict = {}
    states = apply(states, decide(dag, states, policy=policy, blocked=blocked))
    for _ in range(4 * len(dag.nodes)):
        active = sorted(n for n, s in states.items() if s in ACTIVE)
        if not active:
            break
        node = rnd.choice(active)
        if rnd.random() < scenario["fail_rate"]:
            states[node] = FAILED
            states = apply(
                states, decide(dag, states, policy=policy, branches=branches, blocked=blocked)
            )
            continue
        states[node] = SUCCEEDED
        if node in scenario["conditions"]:
            branches[node] = rnd.choice(["true", "false"])
        full = decide(dag, states, policy=policy, branches=branches, blocked=blocked)

        # The fast path starts knowing only the finished node and loads what it needs.
        known = {node: states[node]}
        fast = advance(
            dag,
            topo,
            [node],
            known,
            dict(branches),
            load=lambda ns, s=states, k=known: k.update({n: s[n] for n in ns}),
            gate=lambda ns: ns & blocked,
            any_open=lambda ns, s=states: any(s[n] not in TERMINAL for n in ns),
            # With probe_open every node counts as having "many" upstreams: probed first.
            many=0 if probe_open else incremental.MANY_UPSTREAMS,
        )
        assert (fast.ready, fast.waiting, fast.skipped, fast.upstream_failed, fast.stop) == (
            full.ready,
            full.waiting,
            full.skipped,
            full.upstream_failed,
            full.stop,
        )
        states = apply(states, full)


def test_fast_path_loads_only_what_it_needs():
    dag = Dag.build(range(5), [(0, 1), (1, 2), (3, 4)])
    loaded = []
    states = {0: SUCCEEDED}

    def load(nodes):
        loaded.append(set(nodes))
        states.update(dict.fromkeys(nodes, PENDING))

    decision = advance(dag, {n: n for n in range(5)}, [0], states, {}, load=load)
    assert decision.ready == {1}
    assert loaded == [{1}]
