"""Writes on a flow's editing graph: nodes, edges, and the whole graph replaced at once."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from simple_history.utils import bulk_create_with_history

from accounts.models import User

from .. import dag
from ..choices import TriggerRule
from ..models import Edge, TaskFlow, TaskNode
from ..parameters import names as names_of
from ..variables import BUILTIN_NAMES
from . import validation as v
from ._common import FlowProblems, TenantLookups, bump_revision, lock_flow, set_history

NODE_FIELDS = (
    "name",
    "type",
    "config",
    "position_x",
    "position_y",
    "retries",
    "retry_interval",
    "timeout",
    "priority",
    "variables",
    "trigger_rule",
    "enabled",
)
# (min, max) of the numeric node fields; out of range is a 400 naming the field.
NODE_LIMITS = {
    "retries": (0, 100),
    "retry_interval": (0, 86_400),
    "timeout": (1, 7 * 86_400),
    "priority": (-1000, 1000),
}


def _limit_problems(fields: dict) -> list[tuple[str, str]]:
    found = []
    for name, (low, high) in NODE_LIMITS.items():
        value = fields.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            found.append((name, f"must be a whole number from {low} to {high}"))
    for name in ("position_x", "position_y"):
        value = fields.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or abs(value) > 1e9
        ):
            found.append((name, "must be a number"))
    rule = fields.get("trigger_rule")
    if rule is not None and rule not in TriggerRule.values:
        found.append(
            ("trigger_rule", f"unknown rule {rule!r}; use one of {', '.join(TriggerRule.values)}")
        )
    enabled = fields.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        found.append(("enabled", "must be true or false"))
    return found


def _defined_anywhere(flow: TaskFlow, exclude_pk: int | None = None) -> set[str]:
    """Names a node could reference before its edges exist: built-ins, flow variables and
    parameters, any node's outputs."""
    names = set(BUILTIN_NAMES) | v.variable_names(flow.variables) | names_of(flow.parameters)
    for node in flow.nodes.exclude(pk=exclude_pk).only("type", "config"):
        names |= set(v.safe_output_names(node.type, node.config))
    return names


def node_validate(*, flow: TaskFlow, node: TaskNode, lookups: TenantLookups | None = None) -> None:
    """Raise a ValidationError naming the field (and node) for anything wrong with one node."""
    lookups = lookups or TenantLookups.for_flow(flow)
    errors: dict[str, list[str]] = {}
    name = (node.name or "").strip()
    if not name:
        errors["name"] = ["A node needs a name."]
    elif len(name) > v.NAME_MAX:
        errors["name"] = [f"At most {v.NAME_MAX} characters."]
    elif TaskNode.objects.filter(flow_id=flow.pk, name=name).exclude(pk=node.pk).exists():
        errors["name"] = [f"This flow already has a node named {name!r}."]
    node.name = name
    for field, message in _limit_problems({f: getattr(node, f) for f in NODE_FIELDS}):
        if field in ("trigger_rule", "enabled"):
            message = f"{name or 'node'}: {message}"
        errors.setdefault(field, []).append(message)
    variable_errors = v.definitions_problems(node.variables)
    variable_errors += v.parameter_clashes(flow.parameters, [], [(name or "node", node.variables)])
    if variable_errors:
        errors["variables"] = variable_errors
    label = name or "node"
    for field, message in v.node_config_problems(
        type_name=node.type,
        config=node.config,
        tenant_id=flow.tenant_id,
        flow_id=flow.pk,
        lookups=lookups,
    ):
        if field == "type":
            errors.setdefault("type", []).append(message)
        else:
            sub = field.removeprefix("config").lstrip(".")
            errors.setdefault("config", []).append(
                f"{label}.{sub}: {message}" if sub else f"{label}: {message}"
            )
    if "type" not in errors and "config" not in errors:
        defined = _defined_anywhere(flow, exclude_pk=node.pk) | v.variable_names(node.variables)
        defined |= v.late_names(node.type, node.config)
        message = v.undefined_message(node.config, defined)
        if message:
            errors["config"] = [f"{label}: {message}"]
    if errors:
        raise ValidationError(errors)


def node_create(*, flow: TaskFlow, user: User, **fields) -> TaskNode:
    """Add a typed node to the editing version after validating its configuration."""
    unknown = set(fields) - set(NODE_FIELDS)
    if unknown:
        raise ValidationError({k: ["Unknown field."] for k in sorted(unknown)})
    fields.setdefault("config", {})
    fields["config"] = v.normalized_config(fields.get("type"), fields["config"])
    with transaction.atomic():
        locked = lock_flow(flow)
        node = TaskNode(tenant_id=locked.tenant_id, flow=locked, **fields)
        node_validate(flow=locked, node=node, lookups=TenantLookups.for_flow(locked))
        set_history(node, user, "node created")
        node.save()
        bump_revision(locked, locked=locked)
    return node


def node_update(*, node: TaskNode, user: User, **fields) -> TaskNode:
    """Change a node; a type change must keep the branch labels of its outgoing edges valid."""
    unknown = set(fields) - set(NODE_FIELDS)
    if unknown:
        raise ValidationError({k: ["Unknown field."] for k in sorted(unknown)})
    with transaction.atomic():
        locked = lock_flow(node.flow)
        node = TaskNode.objects.select_for_update().get(pk=node.pk)
        changed = {k: val for k, val in fields.items() if getattr(node, k) != val}
        if not changed:
            return node
        old_type = node.type
        for key, value in changed.items():
            setattr(node, key, value)
        node.config = v.normalized_config(node.type, node.config)
        node_validate(flow=locked, node=node, lookups=TenantLookups.for_flow(locked))
        if "type" in changed and v.has_branches(old_type) != v.has_branches(node.type):
            if node.out_edges.exists():
                raise ValidationError(
                    {
                        "type": [
                            f"{node.name}: remove its outgoing edges first; their branch labels would no longer fit a {node.type} node."
                        ]
                    }
                )
        set_history(node, user, "node updated")
        node.save()
        bump_revision(locked, locked=locked)
    return node


def node_delete(*, node: TaskNode, user: User) -> None:
    """Remove a node and its edges; their history stays readable."""
    with transaction.atomic():
        locked = lock_flow(node.flow)
        for edge in Edge.objects.filter(Q(upstream=node) | Q(downstream=node), flow_id=locked.pk):
            set_history(edge, user, "node deleted")
            edge.delete()
        set_history(node, user, "node deleted")
        node.delete()
        bump_revision(locked, locked=locked)


def edge_create(
    *, flow: TaskFlow, user: User, upstream: Any, downstream: Any, branch: str | None = None
) -> Edge:
    """Connect two nodes of the flow; refuses foreign nodes, self-loops, duplicates and cycles."""
    with transaction.atomic():
        locked = lock_flow(flow)
        nodes = {n.pk: n for n in locked.nodes.all()}
        errors: dict[str, list[str]] = {}
        ends = {}
        for field, ref in (("upstream", upstream), ("downstream", downstream)):
            try:
                ends[field] = nodes[int(ref)]
            except (KeyError, TypeError, ValueError):
                errors[field] = [f"No node {ref!r} in this flow."]
        if errors:
            raise ValidationError(errors)
        up, down = ends["upstream"], ends["downstream"]
        if up.pk == down.pk:
            raise ValidationError({"downstream": [f"{up.name}: a node cannot depend on itself."]})
        pairs = list(locked.edges.values_list("upstream_id", "downstream_id"))
        if (up.pk, down.pk) in pairs:
            raise ValidationError(
                {"downstream": [f"The edge {up.name} → {down.name} already exists."]}
            )
        cycle = dag.cycle_closed_by(pairs, (up.pk, down.pk))
        if cycle:
            names = {pk: n.name for pk, n in nodes.items()}
            raise ValidationError(
                {
                    "non_field_errors": [
                        f"The edge {up.name} → {down.name} would close the cycle {dag.format_cycle(cycle, names)}."
                    ]
                }
            )
        branch = branch or None
        if v.has_branches(up.type):
            if branch not in v.BRANCHES:
                raise ValidationError(
                    {
                        "branch": [
                            f"Edges leaving {up.name} ({up.type}) need a branch: 'true' or 'false'."
                        ]
                    }
                )
        elif branch is not None:
            raise ValidationError(
                {"branch": [f"{up.name} is not a branching node; leave branch empty."]}
            )
        edge = Edge(
            tenant_id=locked.tenant_id, flow=locked, upstream=up, downstream=down, branch=branch
        )
        set_history(edge, user, "edge created")
        edge.save()
        bump_revision(locked, locked=locked)
    return edge


def edge_delete(*, edge: Edge, user: User) -> None:
    """Remove one edge."""
    with transaction.atomic():
        locked = lock_flow(edge.flow)
        set_history(edge, user, "edge deleted")
        edge.delete()
        bump_revision(locked, locked=locked)


# --------------------------------------------------------------------------- whole graph


def _resolve_ref(ref: Any, *, ids: set, keys: dict, names: dict):
    """A graph key for an edge end given as a node id, a client key or a node name."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        return ("id", ref) if ref in ids else None
    if isinstance(ref, str):
        if ref in keys:
            return keys[ref]
        if ref in names:
            return names[ref]
        if ref.isdigit() and int(ref) in ids:
            return ("id", int(ref))
    return None


def graph_replace(
    *, flow: TaskFlow, user: User, nodes: list[dict], edges: list[dict]
) -> tuple[TaskFlow, dict]:
    """Replace the editing graph in one transaction: all of it or, on any problem, none of it.

    Nodes with an `id` update that node, others are created (a client `key` lets edges
    refer to them); stored nodes absent from `nodes` are deleted. Returns {key: new id}.
    """
    too_big = v.size_problems(nodes=nodes, edges=edges)
    if too_big:
        raise ValidationError(too_big)
    with transaction.atomic():
        locked = lock_flow(flow)
        stored = {n.pk: n for n in locked.nodes.all()}
        stored_edges = {(e.upstream_id, e.downstream_id): e for e in locked.edges.all()}
        problems: dict[str, list[str]] = {}
        specs: list[v.NodeSpec] = []
        merged: dict[tuple, dict] = {}
        by_key_ref: dict[str, tuple] = {}
        by_name: dict[str, tuple] = {}
        payload_ids: set[int] = set()

        for index, item in enumerate(nodes):
            pk = item.get("id")
            label = item.get("name") or f"nodes[{index}]"
            if pk is not None:
                if pk not in stored:
                    problems.setdefault(label, []).append(
                        f"id: no node {pk} in this flow; omit id to create a node"
                    )
                    continue
                if pk in payload_ids:
                    problems.setdefault(label, []).append(f"id: node {pk} appears twice")
                    continue
                payload_ids.add(pk)
                key = ("id", pk)
                base = {f: getattr(stored[pk], f) for f in NODE_FIELDS}
            else:
                key = ("new", index)
                base = {
                    "config": {},
                    "position_x": 0.0,
                    "position_y": 0.0,
                    "retries": 0,
                    "retry_interval": 60,
                    "timeout": 3600,
                    "priority": 0,
                    "variables": [],
                    "trigger_rule": TriggerRule.ALL_SUCCESS,
                    "enabled": True,
                }
            data = {
                **base,
                **{f: item[f] for f in NODE_FIELDS if f in item and item[f] is not None},
            }
            if isinstance(data.get("name"), str):
                data["name"] = data["name"].strip()
            data["config"] = v.normalized_config(data.get("type"), data.get("config"))
            merged[key] = data
            client_key = item.get("key")
            if client_key:
                if client_key in by_key_ref:
                    problems.setdefault(label, []).append(
                        f"key: {client_key!r} is used by two nodes"
                    )
                by_key_ref[client_key] = key
            if isinstance(data.get("name"), str):
                by_name.setdefault(data["name"], key)
            for field, message in _limit_problems(data):
                problems.setdefault(label, []).append(f"{field}: {message}")
            specs.append(
                v.NodeSpec(
                    key=key,
                    name=data.get("name") or "",
                    type=data.get("type"),
                    config=data.get("config"),
                    variables=data.get("variables"),
                )
            )

        edge_specs = []
        for index, item in enumerate(edges):
            ends = []
            for field in ("upstream", "downstream"):
                ref = item.get(field)
                resolved = _resolve_ref(ref, ids=payload_ids, keys=by_key_ref, names=by_name)
                if resolved is None:
                    problems.setdefault(v.FLOW, []).append(
                        f"edges[{index}].{field}: no node {ref!r} in this graph"
                    )
                ends.append(resolved)
            if None not in ends:
                edge_specs.append(
                    v.EdgeSpec(
                        upstream=ends[0], downstream=ends[1], branch=item.get("branch") or None
                    )
                )

        found = v.graph_problems(
            tenant_id=locked.tenant_id,
            flow_id=locked.pk,
            variables=locked.variables,
            parameters=locked.parameters,
            nodes=specs,
            edges=edge_specs,
            lookups=TenantLookups.for_flow(locked),
        )
        for label, messages in found.items():
            problems.setdefault(label, []).extend(messages)
        if problems:
            raise FlowProblems(problems)

        changed = _apply_graph(locked, user, stored, stored_edges, merged, edge_specs)
        if changed:
            bump_revision(locked, locked=locked)
        created = {key: node for key, node in changed_nodes(merged)}
    keys = {ck: created[key].pk for ck, key in by_key_ref.items() if key in created}
    return locked, keys


def changed_nodes(merged: dict):
    for key, data in merged.items():
        node = data.get("_node")
        if node is not None:
            yield key, node


def _apply_graph(locked, user, stored, stored_edges, merged, edge_specs) -> bool:
    """Write the validated graph, object by object so every change has a history row."""
    changed = False
    wanted_pairs = {(e.upstream, e.downstream): e.branch for e in edge_specs}
    # Edges first: any edge touching a node that goes away is not wanted either.
    for (up, down), edge in stored_edges.items():
        if (("id", up), ("id", down)) not in wanted_pairs:
            set_history(edge, user, "graph replaced")
            edge.delete()
            changed = True
    for pk, node in stored.items():
        if ("id", pk) not in merged:
            set_history(node, user, "graph replaced")
            node.delete()
            changed = True

    updates = []
    for key, data in merged.items():
        if key[0] == "id":
            node = stored[key[1]]
            data["_node"] = node
            diff = {f: data[f] for f in NODE_FIELDS if getattr(node, f) != data[f]}
            if diff:
                updates.append((node, diff))
    # Apply renames in an order that never collides with a name still in use.
    taken = {stored[k[1]].name for k in merged if k[0] == "id"}
    pending = list(updates)
    guard = 3 * len(pending) + 3
    while pending:
        guard -= 1
        if guard < 0:  # cannot happen with unique names (validated above); never loop forever
            raise ValidationError(
                {"nodes": ["Could not apply the node renames; rename in two steps."]}
            )
        ready = next(
            (
                j
                for j, (n, d) in enumerate(pending)
                if d.get("name", n.name) in (n.name, None) or d["name"] not in taken
            ),
            None,
        )
        if ready is None:
            # A swap (a↔b): park one node under a temporary name first.
            node, _diff = pending[0]
            taken.discard(node.name)
            node.name = f"{node.name}~{node.pk}"
            taken.add(node.name)
            set_history(node, user, "graph replaced (rename)")
            node.save()
            continue
        node, diff = pending.pop(ready)
        taken.discard(node.name)
        for field, value in diff.items():
            setattr(node, field, value)
        taken.add(node.name)
        set_history(node, user, "graph replaced")
        node.save()
        changed = True

    # New nodes and edges in a few statements, each with its history row
    # (simple-history's bulk_create_with_history), rather than two INSERTs per object.
    fresh = []
    for key, data in merged.items():
        if key[0] == "new":
            node = TaskNode(
                tenant_id=locked.tenant_id, flow=locked, **{f: data[f] for f in NODE_FIELDS}
            )
            data["_node"] = node
            fresh.append(node)
    if fresh:
        _bulk_create(TaskNode, fresh, user)
        changed = True

    new_edges = []
    for (up_key, down_key), branch in wanted_pairs.items():
        up, down = merged[up_key]["_node"], merged[down_key]["_node"]
        existing = (
            stored_edges.get((up.pk, down.pk))
            if up_key[0] == "id" and down_key[0] == "id"
            else None
        )
        if existing is not None:
            if existing.branch != branch:
                existing.branch = branch
                set_history(existing, user, "graph replaced")
                existing.save()
                changed = True
            continue
        new_edges.append(
            Edge(
                tenant_id=locked.tenant_id, flow=locked, upstream=up, downstream=down, branch=branch
            )
        )
    if new_edges:
        _bulk_create(Edge, new_edges, user)
        changed = True
    return changed


def _bulk_create(model, objs: list, user) -> None:
    """Insert `objs` with their history rows ("graph replaced", by `user`); their pks set."""
    created = bulk_create_with_history(
        objs, model, batch_size=500, default_user=user, default_change_reason="graph replaced"
    )
    if any(obj.pk is None for obj in objs):
        # A database that does not return the new keys: bulk_create_with_history found them
        # again; hand them back to the objects the caller holds.
        for obj, saved in zip(objs, created, strict=True):
            obj.pk = saved.pk
