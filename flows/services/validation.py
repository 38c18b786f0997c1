"""Whole-flow validation shared by graph replacement, publishing and import.

Every check collects problems instead of stopping at the first one, keyed by node name
(or "flow" for flow-wide ones), so the user sees everything wrong at once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from .. import dag
from .. import parameters as params
from ..nodes import base as node_types
from ..secrets import references as secret_refs
from ..variables import BUILTIN_NAMES, UndefinedVariables, find_references, validate_definitions
from ._common import (
    MAX_CONFIG_BYTES,
    MAX_EDGES,
    MAX_NODES,
    MAX_VARIABLES,
    TenantLookups,
    json_size,
)

logger = logging.getLogger(__name__)

FLOW = "flow"
NAME_MAX = 128
BRANCHES = ("true", "false")


@dataclass
class NodeSpec:
    """A node as validation sees it; `key` is how edges refer to it (id or name)."""

    key: Any
    name: str
    type: str
    config: Any = field(default_factory=dict)
    # The node's own variable definitions (they override the flow's for this node).
    variables: Any = field(default_factory=list)


@dataclass
class EdgeSpec:
    upstream: Any
    downstream: Any
    branch: str | None = None


def run_validation_context(*, tenant_id: int, flow_id: int, owner_id) -> Any:
    """The validation lookups a running node checks again (ExecutionContext.validation): in
    the view of the run's owner (`owner_id`, or a callable resolving it when first needed)."""
    return validation_context(
        tenant_id=tenant_id, flow_id=flow_id, lookups=TenantLookups(tenant_id, owner_id=owner_id)
    )


def validation_context(*, tenant_id: int, flow_id: int | None, lookups: TenantLookups):
    return node_types.ValidationContext(
        tenant_id=tenant_id,
        flow_id=flow_id,
        datasource=lookups.datasource,
        flow=lookups.flow,
        node_names=lookups.node_names,
    )


def normalized_config(type_name, config):
    """`config` in its node type's current form (an older form upgraded), or as given."""
    node_type = node_types.REGISTRY.get(type_name) if isinstance(type_name, str) else None
    if node_type is None:
        try:
            node_type = node_types.get(type_name) if isinstance(type_name, str) else None
        except ImportError:
            return config
    if node_type is None:
        return config
    try:
        return node_type.normalize(config)
    except Exception:  # a node type's bug must not turn into a 500: validation will report
        logger.exception("node type %s failed normalizing a configuration", type_name)
        return config


def node_config_problems(
    *, type_name: str, config: Any, tenant_id: int, flow_id: int | None, lookups: TenantLookups
) -> list[tuple[str, str]]:
    """(field, message) pairs for a node's type and configuration; field is "type" or "config[.x]"."""
    try:
        node_type = node_types.get(type_name) if isinstance(type_name, str) else None
    except ImportError:
        logger.exception("node type registry failed to load")
        node_type = node_types.REGISTRY.get(type_name)
    if node_type is None:
        known = ", ".join(sorted(node_types.REGISTRY)) or "none"
        return [("type", f"unknown node type {type_name!r}; choose one of {known}")]
    if not isinstance(config, dict):
        return [("config", "must be a JSON object")]
    if json_size(config) > MAX_CONFIG_BYTES:
        return [("config", f"is too large; keep it under {MAX_CONFIG_BYTES // 1024} KB")]
    ctx = validation_context(tenant_id=tenant_id, flow_id=flow_id, lookups=lookups)
    try:
        found = [(f"config.{f}" if f else "config", m) for f, m in node_type.validate(config, ctx)]
    except Exception:  # a node type's bug must not turn into a 500 for the user
        logger.exception("node type %s failed validating a configuration", type_name)
        return [("config", "could not be validated; check the values and try again")]
    if found:
        return found
    refs = safe_references(node_type, config)
    for ds in refs.get("datasources", []):
        if lookups.datasource(ds) is None:
            found.append(("config", f"data source {ds} does not exist in this tenant"))
    for other in refs.get("flows", []):
        if lookups.flow(other) is None:
            found.append(("config", node_types.unseen_flow(other)))
    # ${secret.NAME}: known to the flow (tenant-wide or its own), named by field.
    for fld, msg in secret_refs.problems(config, lookups.secret_names(flow_id)):
        found.append((f"config.{fld}" if fld else "config", msg))
    return found


def safe_references(node_type, config) -> dict[str, list]:
    try:
        refs = node_type.references(config) or {}
    except Exception:
        logger.exception("node type %s failed listing references", node_type.type)
        return {"datasources": [], "flows": []}
    return {
        "datasources": list(refs.get("datasources") or []),
        "flows": list(refs.get("flows") or []),
    }


def safe_output_names(type_name: str, config) -> list[str]:
    node_type = node_types.REGISTRY.get(type_name)
    if node_type is None or not isinstance(config, dict):
        return []
    try:
        return list(node_type.output_names(config) or [])
    except Exception:
        logger.exception("node type %s failed listing output names", type_name)
        return []


def late_names(type_name: str, config) -> set[str]:
    """Names the node fills in itself while it runs (NodeType.late_references)."""
    node_type = node_types.get(type_name)
    if node_type is None:
        return set()
    try:
        return set(node_type.late_references(config))
    except Exception:
        logger.exception("node type %s failed listing its late references", type_name)
        return set()


def has_branches(type_name: str) -> bool:
    node_type = node_types.REGISTRY.get(type_name)
    return bool(node_type and node_type.has_branches)


def definitions_problems(definitions) -> list[str]:
    """Messages ("variables[1].format: ...") for a flow's or a node's variable definitions."""
    if isinstance(definitions, list) and len(definitions) > MAX_VARIABLES:
        return [f"variables: at most {MAX_VARIABLES} variables"]
    return validate_definitions(definitions if definitions is not None else [])


def parameters_clean(declarations) -> list:
    """A flow's parameter declarations in full form, or a ValidationError on "parameters"."""
    from django.core.exceptions import ValidationError

    if declarations is None:
        return []
    errors = params.declarations_problems(declarations)
    if errors:
        raise ValidationError({"parameters": errors})
    return params.declarations_clean(declarations)


def parameter_clashes(parameters, variables, node_variables=()) -> list[str]:
    """Messages for parameters named like a flow variable or a node's variable (the rule:
    a name is a parameter or a variable, never both). `node_variables`: (node name, defs)."""
    declared = params.names(parameters)
    if not declared:
        return []
    found = [
        f"parameter {name!r}: the flow has a variable of the same name; rename one of them"
        for name in sorted(declared & variable_names(variables))
    ]
    for node_name, definitions in node_variables:
        for name in sorted(declared & variable_names(definitions)):
            found.append(
                f"parameter {name!r}: node {node_name} has a variable of the same name; "
                "rename one of them"
            )
    return found


def variable_names(definitions) -> set[str]:
    if not isinstance(definitions, list):
        return set()
    return {
        d["name"] for d in definitions if isinstance(d, dict) and isinstance(d.get("name"), str)
    }


def undefined_message(config, defined: set[str]) -> str | None:
    # Secret references are checked on their own (node_config_problems), field by field.
    missing = {n for n in find_references(config) - defined if not secret_refs.is_reference(n)}
    if not missing:
        return None
    return UndefinedVariables(missing).message


def graph_problems(
    *,
    tenant_id: int,
    flow_id: int | None,
    variables,
    nodes: list[NodeSpec],
    edges: list[EdgeSpec],
    lookups: TenantLookups,
    require_nodes: bool = False,
    parameters=None,
) -> dict[str, list[str]]:
    """Every problem of a flow's graph: names, types, configs, edges, cycles, variables,
    parameters (declared, and not named like a variable). `lookups` resolve in the view of
    the flow's owner (TenantLookups.for_flow)."""
    problems: dict[str, list[str]] = defaultdict(list)
    # Load the registry up front so REGISTRY lookups below see every type.
    try:
        node_types.all_types()
    except ImportError:
        logger.exception("node type registry failed to load")

    for message in definitions_problems(variables):
        problems[FLOW].append(message)
    for message in params.declarations_problems(parameters):
        problems[FLOW].append(message)
    for message in parameter_clashes(
        parameters, variables, [(spec.name, spec.variables) for spec in nodes]
    ):
        problems[FLOW].append(message)
    if require_nodes and not nodes:
        problems[FLOW].append("the flow has no nodes; add at least one")
    for messages in size_problems(nodes=nodes, edges=edges).values():
        problems[FLOW].extend(messages)

    by_key: dict[Any, NodeSpec] = {}
    seen_names: set[str] = set()
    for index, spec in enumerate(nodes):
        label = spec.name if isinstance(spec.name, str) and spec.name.strip() else f"nodes[{index}]"
        if label != spec.name:
            problems[label].append("name: a node needs a name")
        elif len(spec.name) > NAME_MAX:
            problems[label].append(f"name: at most {NAME_MAX} characters")
        elif spec.name in seen_names:
            problems[label].append(
                f"name: two nodes are named {spec.name!r}; node names are unique in a flow"
            )
        seen_names.add(spec.name)
        by_key[spec.key] = spec
        problems[label].extend(definitions_problems(spec.variables))
        for fld, msg in node_config_problems(
            type_name=spec.type,
            config=spec.config,
            tenant_id=tenant_id,
            flow_id=flow_id,
            lookups=lookups,
        ):
            problems[label].append(f"{fld}: {msg}")

    names = {key: spec.name for key, spec in by_key.items()}
    pairs: list[tuple[Any, Any]] = []
    seen_pairs: set[tuple[Any, Any]] = set()
    for edge in edges:
        up, down = by_key.get(edge.upstream), by_key.get(edge.downstream)
        where = up.name if up is not None else FLOW
        if up is None or down is None:
            missing = edge.upstream if up is None else edge.downstream
            problems[where].append(
                f"edge {edge.upstream} → {edge.downstream}: no node {missing!r} in this flow"
            )
            continue
        arrow = f"edge {up.name} → {down.name}"
        if edge.upstream == edge.downstream:
            problems[where].append(f"{arrow}: a node cannot depend on itself")
            continue
        if (edge.upstream, edge.downstream) in seen_pairs:
            problems[where].append(f"{arrow}: duplicate edge")
            continue
        seen_pairs.add((edge.upstream, edge.downstream))
        pairs.append((edge.upstream, edge.downstream))
        if has_branches(up.type):
            if edge.branch not in BRANCHES:
                problems[where].append(
                    f"{arrow}: branch must be 'true' or 'false' on edges leaving a {up.type} node"
                )
        elif edge.branch not in (None, ""):
            problems[where].append(
                f"{arrow}: branch is only allowed on edges leaving a branching node"
            )

    cycle = dag.find_cycle(by_key.keys(), pairs)
    if cycle:
        problems[FLOW].append(f"cycle: {dag.format_cycle(cycle, names)}; remove one of these edges")
    else:
        base = set(BUILTIN_NAMES) | variable_names(variables) | params.names(parameters)
        for key, message in _undefined_by_node(by_key, pairs, base):
            problems[by_key[key].name or FLOW].append(f"config: {message}")
    return {key: msgs for key, msgs in problems.items() if msgs}


def _undefined_by_node(by_key: dict, pairs: list, base: set[str]):
    """(node key, message) for each node referencing a name that neither `base`, its own
    variables nor any node upstream of it defines.

    Linear in nodes + edges: each node's outputs are listed once, and what is defined
    upstream travels down the graph in topological order as a bit set over the names that
    some node leaves unresolved (not a set of names per node, nor a walk per node).
    """
    wanted: dict[Any, set[str]] = {}
    for key, spec in by_key.items():
        refs = {n for n in find_references(spec.config) if not secret_refs.is_reference(n)}
        missing = refs - base - variable_names(spec.variables) - late_names(spec.type, spec.config)
        if missing:
            wanted[key] = missing
    if not wanted:
        return []
    bit = {name: 1 << i for i, name in enumerate(sorted(set().union(*wanted.values())))}
    produces: dict[Any, int] = {}
    for key, spec in by_key.items():
        mask = 0
        for name in safe_output_names(spec.type, spec.config):
            mask |= bit.get(name, 0)
        produces[key] = mask
    parents: dict[Any, list] = defaultdict(list)
    children: dict[Any, list] = defaultdict(list)
    for up, down in pairs:
        parents[down].append(up)
        children[up].append(down)
    upstream: dict[Any, int] = {}
    indegree = {key: len(parents[key]) for key in by_key}
    ready = [key for key, count in indegree.items() if count == 0]
    while ready:  # Kahn's order: every parent is done before its child (the graph is acyclic)
        key = ready.pop()
        mask = 0
        for parent in parents[key]:
            mask |= upstream[parent] | produces[parent]
        upstream[key] = mask
        for child in children[key]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    found = []
    for key, missing in wanted.items():
        defined = upstream.get(key, 0)
        still = {name for name in missing if not defined & bit[name]}
        if still:
            found.append((key, UndefinedVariables(still).message))
    return found


def size_problems(*, nodes: Any, edges: Any) -> dict[str, list[str]]:
    """{"nodes"/"edges": [message]} for a graph over the limits: asked before any other work
    on a graph PUT or import, so an oversized graph costs nothing but its count."""
    found: dict[str, list[str]] = {}
    if isinstance(nodes, list | tuple) and len(nodes) > MAX_NODES:
        found["nodes"] = [f"a flow has at most {MAX_NODES} nodes; this graph has {len(nodes)}"]
    if isinstance(edges, list | tuple) and len(edges) > MAX_EDGES:
        found["edges"] = [f"a flow has at most {MAX_EDGES} edges; this graph has {len(edges)}"]
    return found
