"""Flows shaped for engine tests (chains, wide fans, explicit graphs) and their runs."""

from __future__ import annotations

from flows.models import Edge, TaskFlow, TaskNode


def build_flow(*, tenant, owner, nodes, edges=(), name=None, **fields) -> tuple[TaskFlow, dict]:
    """A flow from node specs and (up, down[, branch]) name pairs; returns (flow, {name: node}).

    A node spec is a name (a noop node) or a dict with name, type, config, retries, ...
    """
    flow = TaskFlow.objects.create(
        tenant=tenant, owner=owner, name=name or f"flow-{TaskFlow.objects.count() + 1}", **fields
    )
    by_name = {}
    for spec in nodes:
        spec = {"name": spec} if isinstance(spec, str) else dict(spec)
        spec.setdefault("type", "noop")
        spec.setdefault("config", {})
        spec.setdefault("retry_interval", 0)
        node = TaskNode.objects.create(tenant=tenant, flow=flow, **spec)
        by_name[node.name] = node
    for edge in edges:
        up, down, *branch = edge
        Edge.objects.create(
            tenant=tenant,
            flow=flow,
            upstream=by_name[up],
            downstream=by_name[down],
            branch=branch[0] if branch else None,
        )
    return flow, by_name


def chain_flow(*, tenant, owner, length: int, type: str = "noop", **fields):
    """n1 -> n2 -> ... -> n<length>."""
    names = [f"n{i}" for i in range(1, length + 1)]
    return build_flow(
        tenant=tenant,
        owner=owner,
        nodes=[{"name": n, "type": type} for n in names],
        edges=list(zip(names, names[1:], strict=False)),
        **fields,
    )


def wide_flow(*, tenant, owner, width: int, **fields):
    """root -> w1..w<width> -> sink."""
    names = [f"w{i}" for i in range(1, width + 1)]
    return build_flow(
        tenant=tenant,
        owner=owner,
        nodes=["root", *names, "sink"],
        edges=[("root", n) for n in names] + [(n, "sink") for n in names],
        **fields,
    )
