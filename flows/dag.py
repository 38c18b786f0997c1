"""DAG rules with networkx: cycles (named node by node), topological order, levels, ancestry.

Pure functions over node keys and (upstream, downstream) pairs; keys may be ids or names,
so the same rules serve stored graphs, graph PUT payloads, snapshots and imports.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import networkx as nx

Key = Hashable
Pair = tuple[Key, Key]


def build(nodes: Iterable[Key], edges: Iterable[Pair]) -> nx.DiGraph:
    """A directed graph over `nodes` with `edges`; edge ends outside `nodes` are added too."""
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(edges)
    return graph


def _sort_key(key: Key):
    # Mixed ids/names sort deterministically: by type name, then value.
    return (type(key).__name__, key)


def find_cycle(nodes: Iterable[Key], edges: Iterable[Pair]) -> list[Key] | None:
    """The nodes of one cycle in order, first node repeated at the end; None when acyclic."""
    graph = build(nodes, edges)
    loops = list(nx.selfloop_edges(graph))
    if loops:
        return [loops[0][0], loops[0][0]]
    try:
        cycle_edges = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return None
    path = [u for u, _v, *_ in cycle_edges]
    # Start the cycle at its smallest key so the message is stable for the same graph.
    start = path.index(min(path, key=_sort_key))
    path = path[start:] + path[:start]
    return [*path, path[0]]


def cycle_closed_by(edges: Iterable[Pair], new_edge: Pair) -> list[Key] | None:
    """The cycle that adding `new_edge` would close (u, v, ..., u), or None."""
    upstream, downstream = new_edge
    if upstream == downstream:
        return [upstream, upstream]
    graph = build([], edges)
    if downstream not in graph or upstream not in graph:
        return None
    try:
        path = nx.shortest_path(graph, downstream, upstream)
    except nx.NetworkXNoPath:
        return None
    return [upstream, *path]


def topological_order(nodes: Iterable[Key], edges: Iterable[Pair]) -> list[Key]:
    """Nodes so that every upstream precedes its downstreams; ties broken by key."""
    graph = build(nodes, edges)
    return list(nx.lexicographical_topological_sort(graph, key=_sort_key))


def levels(nodes: Iterable[Key], edges: Iterable[Pair]) -> list[list[Key]]:
    """Nodes grouped by depth: level 0 has no upstream, level n the longest path n from a root."""
    graph = build(nodes, edges)
    depth: dict[Key, int] = {}
    for node in nx.lexicographical_topological_sort(graph, key=_sort_key):
        depth[node] = max((depth[p] + 1 for p in graph.predecessors(node)), default=0)
    grouped: list[list[Key]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for node, level in depth.items():
        grouped[level].append(node)
    return [sorted(group, key=_sort_key) for group in grouped]


def ancestors(nodes: Iterable[Key], edges: Iterable[Pair]) -> dict[Key, set[Key]]:
    """For every node, the set of nodes upstream of it (transitively)."""
    graph = build(nodes, edges)
    return {node: nx.ancestors(graph, node) for node in graph.nodes}


def descendants(nodes: Iterable[Key], edges: Iterable[Pair], node: Key) -> set[Key]:
    """Nodes downstream of `node` (transitively), not including it."""
    graph = build(nodes, edges)
    return nx.descendants(graph, node) if node in graph else set()


def format_cycle(cycle: list[Key], names: dict[Key, str] | None = None) -> str:
    """ "a → b → c → a" using names where known."""
    names = names or {}
    return " → ".join(str(names.get(key, key)) for key in cycle)
