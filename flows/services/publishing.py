"""Publishing: validate the whole flow, write the next immutable version; unpublish, freeze."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max

from accounts.errors import ConflictError
from accounts.models import User
from accounts.selectors import tenant_member_users

from ..choices import FlowStatus
from ..lineage.services import lineage_record
from ..models import FlowVersion, TaskFlow
from ..snapshot import flow_snapshot
from ..webhooks.services import webhook_event
from . import validation as v
from ._common import FlowProblems, TenantLookups, lock_flow, schedule_sync, set_history


def flow_problems(*, flow: TaskFlow, nodes=None, edges=None) -> dict[str, list[str]]:
    """Everything that stops `flow` from being published, keyed by node name or "flow"."""
    nodes = list(flow.nodes.all()) if nodes is None else nodes
    edges = list(flow.edges.all()) if edges is None else edges
    problems = v.graph_problems(
        tenant_id=flow.tenant_id,
        flow_id=flow.pk,
        variables=flow.variables,
        parameters=flow.parameters,
        nodes=[
            v.NodeSpec(key=n.pk, name=n.name, type=n.type, config=n.config, variables=n.variables)
            for n in nodes
        ],
        edges=[
            v.EdgeSpec(upstream=e.upstream_id, downstream=e.downstream_id, branch=e.branch)
            for e in edges
        ],
        require_nodes=True,
        lookups=TenantLookups.for_flow(flow),
    )
    if not tenant_member_users(tenant=flow.tenant).filter(pk=flow.owner_id).exists():
        problems.setdefault(v.FLOW, []).append(
            "owner: the owner is no longer an active member of this tenant; change the owner first"
        )
    else:
        for label, message in child_flow_problems(flow=flow, nodes=nodes):
            problems.setdefault(label, []).append(message)
    return problems


def _child_targets(nodes) -> list[tuple[str, int]]:
    """(node name, target flow id) of the nodes that run another flow (sub-flows, loops)."""
    from ..nodes.subflow import CHILD_FLOW_TYPES

    out = []
    for node in nodes:
        ntype, config, name = (
            (node["type"], node.get("config"), node["name"])
            if isinstance(node, dict)
            else (node.type, node.config, node.name)
        )
        if ntype in CHILD_FLOW_TYPES and isinstance(config, dict):
            target = config.get("flow")
            if isinstance(target, int) and not isinstance(target, bool):
                out.append((name, target))
    return out


def child_flow_problems(*, flow: TaskFlow, nodes) -> list[tuple[str, str]]:
    """A flow that runs others: its owner must be allowed to run each, and no cycle of flows
    may close through sub-flow nodes (the published versions of the others, this flow's draft)."""
    from accounts.selectors import tenant_context_for

    from ..permissions import flow_rights

    targets = _child_targets(nodes)
    if not targets:
        return []
    found = []
    flows = {
        f.pk: f
        for f in TaskFlow.objects.filter(tenant_id=flow.tenant_id).select_related(
            "published_version"
        )
    }
    try:
        ctx = tenant_context_for(user=flow.owner, slug=flow.tenant.slug)
    except Exception:  # noqa: BLE001 - not a member: reported above
        ctx = None
    for name, target in targets:
        other = flows.get(target)
        if other is None:
            continue  # the node's own validation names it
        if ctx is None or not flow_rights(ctx, other).operate:
            found.append(
                (name, f"flow: the flow's owner may not run flow {other.name!r} (operate right)")
            )
    graph = {
        pk: [t for _, t in _child_targets((f.published_version.snapshot or {}).get("nodes") or [])]
        for pk, f in flows.items()
        if f.published_version_id and pk != flow.pk
    }
    graph[flow.pk] = [t for _, t in targets]
    for name, target in targets:
        path = _path(graph, target, flow.pk)
        if path is not None:
            names = " → ".join(flows[pk].name for pk in [flow.pk, *path] if pk in flows)
            found.append((name, f"flow: running it would close the cycle of flows {names}"))
    return found


def _path(graph: dict, start: int, goal: int) -> list[int] | None:
    """A path of flow ids from `start` to `goal` through the graph, or None."""
    stack = [(start, [start])]
    seen = set()
    while stack:
        node, path = stack.pop()
        if node == goal:
            return path
        if node in seen:
            continue
        seen.add(node)
        for nxt in graph.get(node, ()):
            stack.append((nxt, [*path, nxt]))
    return None


def flow_publish(*, flow: TaskFlow, user: User, comment: str = "") -> FlowVersion:
    """Refuse an invalid flow with every problem, else write version n+1 (with its lineage)
    and put it in production."""
    with transaction.atomic():
        locked = lock_flow(flow)
        nodes = list(locked.nodes.all().order_by("id"))
        edges = list(locked.edges.all().order_by("id"))
        problems = flow_problems(flow=locked, nodes=nodes, edges=edges)
        if problems:
            raise FlowProblems(problems)
        last = FlowVersion.objects.filter(flow=locked).aggregate(n=Max("number"))["n"] or 0
        version = FlowVersion(
            tenant_id=locked.tenant_id,
            flow=locked,
            number=last + 1,
            snapshot=flow_snapshot(locked, nodes=nodes, edges=edges),
            owner_id=locked.owner_id,
            created_by=user,
            comment=(comment or "")[:500],
        )
        version.save()
        lineage_record(version=version)
        locked.published_version = version
        locked.status = FlowStatus.PUBLISHED
        locked.published_revision = locked.edit_revision
        set_history(locked, user, f"published version {version.number}")
        locked.save()
        schedule_sync(locked)
        webhook_event(
            tenant=locked.tenant_id,
            event_type="flow.published",
            stream=f"flow:{locked.pk}",
            data=lambda: {
                "flow": {"id": locked.pk, "name": locked.name, "status": locked.status},
                "version": {
                    "number": version.number,
                    "comment": version.comment,
                    "published_by": getattr(user, "username", None),
                    "created_at": version.created_at,
                },
            },
        )
    return version


def flow_unpublish(*, flow: TaskFlow, user: User) -> TaskFlow:
    """Take the flow out of production: its schedule fires nothing until it is published again."""
    with transaction.atomic():
        locked = lock_flow(flow)
        if locked.status != FlowStatus.PUBLISHED:
            raise ConflictError("The flow is not published.", field="status")
        locked.status = FlowStatus.UNPUBLISHED
        locked.is_frozen = False
        set_history(locked, user, "unpublished")
        locked.save()
        schedule_sync(locked)
    return locked


def _set_frozen(flow: TaskFlow, user: User, frozen: bool) -> TaskFlow:
    with transaction.atomic():
        locked = lock_flow(flow)
        if locked.status != FlowStatus.PUBLISHED:
            raise ConflictError("Only a published flow can be frozen or unfrozen.", field="status")
        if locked.is_frozen == frozen:
            return locked
        locked.is_frozen = frozen
        set_history(locked, user, "frozen" if frozen else "unfrozen")
        locked.save()
        schedule_sync(locked)
    return locked


def flow_freeze(*, flow: TaskFlow, user: User) -> TaskFlow:
    """Keep the flow published but fire nothing."""
    return _set_frozen(flow, user, True)


def flow_unfreeze(*, flow: TaskFlow, user: User) -> TaskFlow:
    """Let a frozen published flow fire again."""
    return _set_frozen(flow, user, False)
