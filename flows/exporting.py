"""Flows as code: a flow as a portable YAML/JSON document, and that document read back.

Data sources and other flows are referenced BY NAME (`{"$datasource": "warehouse"}`,
`{"$flow": "nightly load"}`), never by id, and no secret is ever part of a document, so a
document moves between tenants that have same-named data sources.

`origin` says which product wrote the document: `tributary` (ours) or `dms`. A DMS-style
document's time variables count from the bizdate, as DMS counts every custom variable
("all custom variables are based on the bizdate time point"), unless they name a `base`.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml

from accounts.api.parsers import input_problems

from .choices import TriggerRule
from .nodes import base as node_types
from .services.flows import EDITABLE_FIELDS
from .services.validation import safe_references
from .snapshot import NODE_FIELDS, schedule_data
from .variables import BASE_BIZDATE

KIND = "tributary/flow"
VERSION = 1
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
REF_KEYS = {"datasources": "$datasource", "flows": "$flow"}
# The document carries the flow's editable configuration and the snapshot's node keys.
FLOW_FIELDS = EDITABLE_FIELDS
TOP_LEVEL = {"kind", "version", "origin", *FLOW_FIELDS, "nodes", "edges", "schedule"}
ORIGIN = "tributary"
ORIGIN_DMS = "dms"
ORIGINS = (ORIGIN, ORIGIN_DMS)
# Distinct from any real id, so a probe shows which config leaves are references.
_PROBE = 987_654_321_987


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader without anchors/aliases: a few aliases can expand into gigabytes."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "aliases are not allowed", self.peek_event().start_mark
            )
        return super().compose_node(parent, index)


class DocumentError(ValueError):
    """The document cannot be read; `errors` are "path: message" strings."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


# --------------------------------------------------------------------------- references


def _leaves(obj: Any, path: tuple = ()):
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            yield from _leaves(value, (*path, index))
    elif (isinstance(obj, int) and not isinstance(obj, bool)) or isinstance(obj, str):
        yield path, obj


def _set_path(obj: Any, path: tuple, value: Any) -> None:
    for step in path[:-1]:
        obj = obj[step]
    obj[path[-1]] = value


def reference_paths(node_type, config: dict) -> dict[str, list[tuple]]:
    """Paths inside `config` holding data source / flow ids, found by probing `references()`."""
    refs = safe_references(node_type, config)
    wanted = {kind: {str(x) for x in ids} for kind, ids in refs.items() if ids}
    found: dict[str, list[tuple]] = {kind: [] for kind in REF_KEYS}
    if not wanted:
        return found
    for path, value in _leaves(config):
        if not path or not any(str(value) in ids for ids in wanted.values()):
            continue
        probe = copy.deepcopy(config)
        _set_path(probe, path, _PROBE if isinstance(value, int) else str(_PROBE))
        after = safe_references(node_type, probe)
        for kind in wanted:
            if str(_PROBE) in {str(x) for x in after.get(kind, [])}:
                found[kind].append(path)
    return found


def _sorted(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _sorted(obj[k]) for k in sorted(obj, key=str)}
    if isinstance(obj, list):
        return [_sorted(x) for x in obj]
    return obj


# --------------------------------------------------------------------------- export


def flow_document(flow, *, nodes=None, edges=None, names_of=None) -> dict:
    """The flow's editing version as a document (no ids, no secrets, references by name).

    `names_of(kind, ids)` returns {id: name} for "datasources" / "flows" of the flow's tenant.
    """
    nodes = sorted(nodes if nodes is not None else flow.nodes.all(), key=lambda n: n.name)
    edges = edges if edges is not None else list(flow.edges.all())
    node_names = {n.pk: n.name for n in nodes}
    node_types.all_types()

    exported_nodes, pending = [], []
    for node in nodes:
        config = copy.deepcopy(node.config) if isinstance(node.config, dict) else node.config
        node_type = node_types.REGISTRY.get(node.type)
        if node_type is not None and isinstance(config, dict):
            for kind, paths in reference_paths(node_type, config).items():
                for path in paths:
                    pending.append((config, path, kind, _get_path(config, path)))
        exported_nodes.append((node, config))

    wanted: dict[str, set] = {kind: set() for kind in REF_KEYS}
    for _config, _path, kind, value in pending:
        wanted[kind].add(value)
    names = {
        kind: (names_of(kind, ids) if names_of and ids else {}) for kind, ids in wanted.items()
    }
    for config, path, kind, value in pending:
        name = names[kind].get(_as_int(value))
        _set_path(config, path, {REF_KEYS[kind]: name})

    return {
        "kind": KIND,
        "version": VERSION,
        "origin": ORIGIN,
        **{f: copy.deepcopy(getattr(flow, f)) for f in FLOW_FIELDS if f != "parameters"},
        # Only when declared, so documents of flows without parameters stay as they were.
        **({"parameters": copy.deepcopy(flow.parameters)} if flow.parameters else {}),
        "nodes": [
            {
                "name": node.name,
                "type": node.type,
                "config": _sorted(config),
                "position": {"x": node.position_x, "y": node.position_y},
                "retries": node.retries,
                "retry_interval": node.retry_interval,
                "timeout": node.timeout,
                "priority": node.priority,
                # Only when set, so documents of flows without node variables stay as they were.
                **({"variables": copy.deepcopy(node.variables)} if node.variables else {}),
                # Likewise the control fields, only when they differ from the defaults.
                **(
                    {"trigger_rule": node.trigger_rule}
                    if node.trigger_rule != TriggerRule.ALL_SUCCESS
                    else {}
                ),
                **({"enabled": False} if not node.enabled else {}),
            }
            for node, config in exported_nodes
        ],
        "edges": sorted(
            (
                {
                    "upstream": node_names.get(e.upstream_id),
                    "downstream": node_names.get(e.downstream_id),
                    "branch": e.branch,
                }
                for e in edges
            ),
            key=lambda e: (str(e["upstream"]), str(e["downstream"])),
        ),
        "schedule": schedule_data(flow),
    }


def _get_path(obj: Any, path: tuple) -> Any:
    for step in path:
        obj = obj[step]
    return obj


def _as_int(value: Any):
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def dump(document: dict, fmt: str) -> str:
    """The document as YAML or JSON text (stable key order)."""
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False)


# --------------------------------------------------------------------------- import


def parse(text: str | bytes) -> dict:
    """Read YAML or JSON text (JSON is YAML); refuse anything but a mapping."""
    if isinstance(text, bytes):
        if len(text) > MAX_DOCUMENT_BYTES:
            raise DocumentError([f"document: larger than {MAX_DOCUMENT_BYTES // 1024 // 1024} MB"])
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise DocumentError(["document: not UTF-8 text"]) from None
    if len(text) > MAX_DOCUMENT_BYTES:
        raise DocumentError([f"document: larger than {MAX_DOCUMENT_BYTES // 1024 // 1024} MB"])
    try:
        data = yaml.load(text, Loader=_NoAliasLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise DocumentError([f"document: not valid YAML or JSON{where}"]) from None
    except RecursionError:
        raise DocumentError(["document: nested too deeply"]) from None
    if not isinstance(data, dict):
        raise DocumentError(["document: must be a mapping with name, nodes and edges"])
    # The same text and depth rules as every request body (NUL, lone surrogates, nesting).
    problems = input_problems(data)
    if problems:
        raise DocumentError([m for messages in problems.values() for m in messages])
    return data


def check_structure(doc: dict) -> list[str]:
    """Shape errors ("nodes[1].name: ...") of a parsed document; semantics are checked on import."""
    errors: list[str] = []
    if doc.get("kind", KIND) != KIND:
        errors.append(f"kind: expected {KIND!r}")
    if doc.get("version", VERSION) != VERSION:
        errors.append(f"version: only version {VERSION} is supported")
    if doc.get("origin", ORIGIN) not in ORIGINS:
        errors.append(f"origin: one of {', '.join(ORIGINS)}")
    unknown = sorted(set(doc) - TOP_LEVEL, key=str)
    if unknown:
        errors.append(f"document: unknown keys {', '.join(map(str, unknown))}")
    if not isinstance(doc.get("name"), str) or not doc.get("name", "").strip():
        errors.append("name: required text")
    for field in ("business_scenario", "description", "error_policy", "concurrency_policy"):
        if field in doc and not isinstance(doc[field], str):
            errors.append(f"{field}: must be text")
    if "is_public" in doc and not isinstance(doc["is_public"], bool):
        errors.append("is_public: must be true or false")
    nodes = doc.get("nodes", [])
    if not isinstance(nodes, list):
        errors.append("nodes: must be a list")
        nodes = []
    for i, node in enumerate(nodes):
        if not isinstance(node, dict):
            errors.append(f"nodes[{i}]: must be a mapping")
            continue
        extra = sorted(set(node) - set(NODE_FIELDS), key=str)
        if extra:
            errors.append(f"nodes[{i}]: unknown keys {', '.join(map(str, extra))}")
        for field in ("name", "type"):
            if not isinstance(node.get(field), str):
                errors.append(f"nodes[{i}].{field}: required text")
        if "config" in node and not isinstance(node["config"], dict):
            errors.append(f"nodes[{i}].config: must be a mapping")
        position = node.get("position", {"x": 0, "y": 0})
        if not isinstance(position, dict) or not all(
            isinstance(position.get(axis, 0), int | float)
            and not isinstance(position.get(axis, 0), bool)
            for axis in ("x", "y")
        ):
            errors.append(f"nodes[{i}].position: must be {{x: number, y: number}}")
        for field in ("retries", "retry_interval", "timeout", "priority"):
            if field in node and (
                isinstance(node[field], bool) or not isinstance(node[field], int)
            ):
                errors.append(f"nodes[{i}].{field}: must be a whole number")
    edges = doc.get("edges", [])
    if not isinstance(edges, list):
        errors.append("edges: must be a list")
        edges = []
    for i, edge in enumerate(edges):
        if not isinstance(edge, dict):
            errors.append(f"edges[{i}]: must be a mapping")
            continue
        for field in ("upstream", "downstream"):
            if not isinstance(edge.get(field), str):
                errors.append(f"edges[{i}].{field}: required node name")
        if edge.get("branch") not in (None, "true", "false"):
            errors.append(f"edges[{i}].branch: 'true', 'false' or empty")
    if doc.get("schedule") is not None and not isinstance(doc["schedule"], dict):
        errors.append("schedule: must be a mapping or null")
    return errors


def imported_variables(definitions: Any, origin: Any) -> Any:
    """Variable definitions as this platform reads them from a document of `origin`: a
    DMS-style document's time variables without a `base` count from the bizdate."""
    if origin != ORIGIN_DMS or not isinstance(definitions, list):
        return definitions
    return [
        {**d, "base": d.get("base", BASE_BIZDATE)}
        if isinstance(d, dict) and d.get("type") == "time"
        else d
        for d in definitions
    ]


def named_references(config: Any) -> list[tuple[tuple, str, Any]]:
    """(path, kind, name) for every `{"$datasource": name}` / `{"$flow": name}` marker in config."""
    found = []
    markers = {marker: kind for kind, marker in REF_KEYS.items()}

    def walk(obj, path):
        if isinstance(obj, dict):
            if len(obj) == 1 and next(iter(obj)) in markers:
                marker = next(iter(obj))
                found.append((path, markers[marker], obj[marker]))
                return
            for key, value in obj.items():
                walk(value, (*path, key))
        elif isinstance(obj, list):
            for index, value in enumerate(obj):
                walk(value, (*path, index))

    walk(config, ())
    return found


def replace_path(config: Any, path: tuple, value: Any) -> None:
    _set_path(config, path, value)
