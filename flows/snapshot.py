"""A flow's editing version as one JSON document, and the difference between two of them.

The snapshot is what a FlowVersion stores and what a run executes: configuration, nodes
(with ids), edges, variables, parameters, schedule and owner. Keys are stable; the engine reads them.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.serializers.json import DjangoJSONEncoder

SNAPSHOT_FORMAT = 1

# Flow fields that make up "configuration" in a snapshot and in diffs.
CONFIG_FIELDS = (
    "name",
    "business_scenario",
    "description",
    "error_policy",
    "concurrency_policy",
    "is_public",
    "notifications",
    "deadline",
)
NODE_FIELDS = (
    "name",
    "type",
    "config",
    "position",
    "retries",
    "retry_interval",
    "timeout",
    "priority",
    "variables",
    "trigger_rule",
    "enabled",
)
# What a node field was before snapshots recorded it: a version published then is not
# "changed" by the field appearing later.
NODE_FIELD_DEFAULTS = {"variables": [], "trigger_rule": "all_success", "enabled": True}
# Schedule fields that change on their own (bookkeeping), not by a user's edit.
_SCHEDULE_SKIP = {"id", "tenant", "flow", "created_at", "updated_at", "created_by"}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def node_data(node) -> dict:
    """One node as the snapshot stores it."""
    return {
        "id": node.pk,
        "name": node.name,
        "type": node.type,
        "config": node.config,
        "position": {"x": node.position_x, "y": node.position_y},
        "retries": node.retries,
        "retry_interval": node.retry_interval,
        "timeout": node.timeout,
        "priority": node.priority,
        "variables": node.variables or [],
        "trigger_rule": node.trigger_rule,
        "enabled": node.enabled,
    }


def edge_data(edge) -> dict:
    return {
        "id": edge.pk,
        "upstream": edge.upstream_id,
        "downstream": edge.downstream_id,
        "branch": edge.branch,
    }


def flow_schedule(flow):
    """The flow's scheduling.Schedule, or None (also when the scheduling app has none)."""
    try:
        return getattr(flow, "schedule", None)
    except (ObjectDoesNotExist, LookupError, AttributeError):
        return None


def schedule_data(flow) -> dict | None:
    """The schedule as plain JSON: the model's own `as_snapshot()` if it has one, else its fields."""
    schedule = flow_schedule(flow)
    if schedule is None:
        return None
    own = getattr(schedule, "as_snapshot", None)
    if callable(own):
        return _jsonable(own())
    data = {}
    for field in schedule._meta.concrete_fields:
        if field.primary_key or field.name in _SCHEDULE_SKIP:
            continue
        if field.name.startswith(("last_", "next_")):
            continue
        if field.is_relation:
            # Links to django-celery-beat rows are bookkeeping, not configuration.
            continue
        data[field.name] = field.value_from_object(schedule)
    return _jsonable(data)


def flow_snapshot(flow, *, nodes=None, edges=None) -> dict:
    """The editing version of `flow` as a snapshot dict (reads nodes and edges unless given)."""
    if nodes is None:
        nodes = list(flow.nodes.all().order_by("id"))
    if edges is None:
        edges = list(flow.edges.all().order_by("id"))
    return _jsonable(
        {
            "format": SNAPSHOT_FORMAT,
            "flow": {"id": flow.pk, **{f: getattr(flow, f) for f in CONFIG_FIELDS}},
            "owner": flow.owner_id,
            "variables": flow.variables or [],
            "parameters": flow.parameters or [],
            "nodes": [node_data(n) for n in sorted(nodes, key=lambda n: n.pk)],
            "edges": [
                edge_data(e) for e in sorted(edges, key=lambda e: (e.upstream_id, e.downstream_id))
            ],
            "schedule": schedule_data(flow),
        }
    )


# --------------------------------------------------------------------------- diff


def _change(field: str, old: Any, new: Any) -> dict:
    return {"field": field, "old": old, "new": new}


def _dict_changes(prefix: str, old: Any, new: Any) -> list[dict]:
    """Field-level changes; dicts are compared key by key ("config.sql")."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            if old.get(key) != new.get(key):
                out.append(_change(f"{prefix}.{key}", old.get(key), new.get(key)))
        return out
    return [] if old == new else [_change(prefix, old, new)]


def _node_changes(old: dict, new: dict) -> list[dict]:
    changes: list[dict] = []
    for field in NODE_FIELDS:
        if field == "config":
            changes += _dict_changes("config", old.get("config"), new.get("config"))
        else:
            before = old.get(field, NODE_FIELD_DEFAULTS.get(field))
            after = new.get(field, NODE_FIELD_DEFAULTS.get(field))
            if before != after:
                changes.append(_change(field, before, after))
    return changes


def snapshot_diff(old: dict, new: dict) -> dict:
    """What changed from snapshot `old` to `new`: configuration, nodes and edges."""
    configuration: list[dict] = []
    old_flow, new_flow = old.get("flow", {}), new.get("flow", {})
    for field in CONFIG_FIELDS:
        if field == "notifications":
            configuration += _dict_changes(field, old_flow.get(field), new_flow.get(field))
        elif old_flow.get(field) != new_flow.get(field):
            configuration.append(_change(field, old_flow.get(field), new_flow.get(field)))
    for field in ("owner", "variables", "parameters", "schedule"):
        # A version published before snapshots recorded parameters declared none.
        before = old.get(field, [] if field == "parameters" else None)
        after = new.get(field, [] if field == "parameters" else None)
        if before != after:
            configuration.append(_change(field, before, after))

    old_nodes = {n["id"]: n for n in old.get("nodes", [])}
    new_nodes = {n["id"]: n for n in new.get("nodes", [])}
    summary = lambda n: {"id": n["id"], "name": n["name"], "type": n["type"]}  # noqa: E731
    changed = []
    for node_id in sorted(old_nodes.keys() & new_nodes.keys()):
        changes = _node_changes(old_nodes[node_id], new_nodes[node_id])
        if changes:
            changed.append({**summary(new_nodes[node_id]), "changes": changes})

    names = {n["id"]: n["name"] for n in [*old.get("nodes", []), *new.get("nodes", [])]}

    def edge_key(e):
        return (e["upstream"], e["downstream"], e.get("branch"))

    def edge_view(e):
        return {
            "upstream": e["upstream"],
            "downstream": e["downstream"],
            "upstream_name": names.get(e["upstream"]),
            "downstream_name": names.get(e["downstream"]),
            "branch": e.get("branch"),
        }

    old_edges = {edge_key(e): e for e in old.get("edges", [])}
    new_edges = {edge_key(e): e for e in new.get("edges", [])}
    order = lambda k: tuple(str(p) for p in k)  # noqa: E731
    return {
        "configuration": configuration,
        "nodes": {
            "added": [summary(new_nodes[i]) for i in sorted(new_nodes.keys() - old_nodes.keys())],
            "removed": [summary(old_nodes[i]) for i in sorted(old_nodes.keys() - new_nodes.keys())],
            "changed": changed,
        },
        "edges": {
            "added": [
                edge_view(new_edges[k])
                for k in sorted(new_edges.keys() - old_edges.keys(), key=order)
            ],
            "removed": [
                edge_view(old_edges[k])
                for k in sorted(old_edges.keys() - new_edges.keys(), key=order)
            ],
        },
    }


def diff_is_empty(diff: dict) -> bool:
    return not (diff["configuration"] or any(diff["nodes"].values()) or any(diff["edges"].values()))
