"""DAG rules: cycles named node by node, topological order, levels, ancestry."""

from flows import dag


def test_find_cycle_names_the_nodes_in_order():
    cycle = dag.find_cycle(["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])
    assert cycle == ["a", "b", "c", "a"]


def test_find_cycle_none_when_acyclic():
    assert dag.find_cycle([1, 2, 3], [(1, 2), (2, 3), (1, 3)]) is None


def test_self_loop_is_a_cycle():
    assert dag.find_cycle([1], [(1, 1)]) == [1, 1]


def test_cycle_closed_by_a_new_edge():
    edges = [(1, 2), (2, 3)]
    assert dag.cycle_closed_by(edges, (3, 1)) == [3, 1, 2, 3]
    assert dag.cycle_closed_by(edges, (1, 3)) is None
    assert dag.format_cycle([3, 1, 2, 3], {1: "a", 2: "b", 3: "c"}) == "c → a → b → c"


def test_topological_order_and_levels():
    nodes = [1, 2, 3, 4, 5]
    edges = [(1, 3), (2, 3), (3, 4), (1, 4)]
    order = dag.topological_order(nodes, edges)
    assert order.index(1) < order.index(3) < order.index(4)
    assert order.index(2) < order.index(3)
    assert dag.levels(nodes, edges) == [[1, 2, 5], [3], [4]]


def test_ancestors_and_descendants():
    nodes, edges = [1, 2, 3, 4], [(1, 2), (2, 3)]
    assert dag.ancestors(nodes, edges)[3] == {1, 2}
    assert dag.ancestors(nodes, edges)[4] == set()
    assert dag.descendants(nodes, edges, 1) == {2, 3}
