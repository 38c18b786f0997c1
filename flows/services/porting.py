"""Import a flow document (see flows.exporting) into a tenant, validated like publishing."""

from __future__ import annotations

import copy

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Tenant, User

from .. import exporting, hooks
from ..models import DataSource, Edge, TaskFlow, TaskNode
from . import validation as v
from ._common import FlowProblems, TenantLookups, set_history
from .flows import _check_name, deadline_clean, flow_create, notifications_clean
from .graph import _limit_problems

NODE_DEFAULTS = {
    "retries": 0,
    "retry_interval": 60,
    "timeout": 3600,
    "priority": 0,
    "trigger_rule": "all_success",
    "enabled": True,
}


def _resolve_names(tenant: Tenant, doc: dict, problems: dict, lookups: TenantLookups) -> list[dict]:
    """Nodes of the document with `{"$datasource": name}` markers turned into this tenant's ids;
    a `{"$flow": name}` only names a flow the importing owner can see (else as if none)."""
    nodes = [copy.deepcopy(n) for n in doc.get("nodes", [])]
    wanted: dict[str, set] = {"datasources": set(), "flows": set()}
    for node in nodes:
        for _path, kind, name in exporting.named_references(node.get("config", {})):
            wanted[kind].add(name)
    ids = {
        "datasources": dict(
            DataSource.objects.filter(
                tenant=tenant, name__in=[n for n in wanted["datasources"] if isinstance(n, str)]
            ).values_list("name", "pk")
        ),
        "flows": dict(
            TaskFlow.objects.filter(
                tenant=tenant, name__in=[n for n in wanted["flows"] if isinstance(n, str)]
            ).values_list("name", "pk")
        ),
    }
    label = {"datasources": "data source", "flows": "flow"}
    for node in nodes:
        config = node.setdefault("config", {})
        for path, kind, name in exporting.named_references(config):
            pk = ids[kind].get(name) if isinstance(name, str) else None
            if kind == "flows" and pk is not None and lookups.flow(pk) is None:
                pk = None
            if pk is None:
                where = ".".join(str(p) for p in path)
                problems.setdefault(node["name"], []).append(
                    f"config.{where}: {label[kind]} {name!r} does not exist in this tenant"
                )
                # Keep validating the rest of the node against an id that matches nothing.
                pk = 0
            exporting.replace_path(config, path, pk)
    return nodes


def flow_import(*, tenant: Tenant, user: User, document: dict, name: str | None = None) -> TaskFlow:
    """Create a new draft flow from a document; refuses with every problem, writes nothing then."""
    too_big = v.size_problems(nodes=document.get("nodes"), edges=document.get("edges"))
    if too_big:
        raise ValidationError(too_big)
    errors = exporting.check_structure(document)
    if errors:
        raise ValidationError({"document": errors})
    flow_name = (name or document["name"]).strip()
    _check_name(tenant_id=tenant.pk, name=flow_name)

    problems: dict[str, list[str]] = {}
    try:
        notifications = notifications_clean(document.get("notifications") or {})
    except ValidationError as exc:
        problems.setdefault(v.FLOW, []).extend(exc.message_dict["notifications"])
        notifications = {}
    try:
        deadline = deadline_clean(document.get("deadline"))
    except ValidationError as exc:
        problems.setdefault(v.FLOW, []).extend(exc.message_dict["deadline"])
        deadline = None
    lookups = TenantLookups(tenant.pk, owner_id=user.pk)
    nodes = _resolve_names(tenant, document, problems, lookups)
    origin = document.get("origin")
    variables = exporting.imported_variables(document.get("variables") or [], origin)
    for node in nodes:
        node["config"] = v.normalized_config(node.get("type"), node["config"])
        node["variables"] = exporting.imported_variables(node.get("variables") or [], origin)
    for node in nodes:
        for field, message in _limit_problems({f: node.get(f) for f in NODE_DEFAULTS}):
            problems.setdefault(node["name"], []).append(f"{field}: {message}")
    parameters = document.get("parameters") or []
    found = v.graph_problems(
        tenant_id=tenant.pk,
        flow_id=None,
        variables=variables,
        parameters=parameters,
        nodes=[
            v.NodeSpec(
                key=n["name"],
                name=n["name"],
                type=n["type"],
                config=n["config"],
                variables=n["variables"],
            )
            for n in nodes
        ],
        edges=[
            v.EdgeSpec(upstream=e["upstream"], downstream=e["downstream"], branch=e.get("branch"))
            for e in document.get("edges", [])
        ],
        lookups=lookups,
    )
    for key, messages in found.items():
        problems.setdefault(key, []).extend(messages)
    if problems:
        raise FlowProblems(problems)

    fields = {
        f: document[f]
        for f in (
            "business_scenario",
            "description",
            "error_policy",
            "concurrency_policy",
            "is_public",
        )
        if document.get(f) is not None
    }
    fields["variables"] = variables
    fields["parameters"] = parameters
    fields["deadline"] = deadline
    with transaction.atomic():
        flow = flow_create(
            tenant=tenant, user=user, name=flow_name, notifications=notifications, **fields
        )
        created = {}
        for node in nodes:
            position = node.get("position") or {}
            row = TaskNode(
                tenant=tenant,
                flow=flow,
                name=node["name"],
                type=node["type"],
                config=node["config"],
                variables=node["variables"],
                position_x=float(position.get("x", 0)),
                position_y=float(position.get("y", 0)),
                **{f: node.get(f, d) for f, d in NODE_DEFAULTS.items()},
            )
            row.full_clean(
                exclude=["tenant", "flow"], validate_unique=False, validate_constraints=False
            )
            set_history(row, user, "flow imported")
            row.save()
            created[row.name] = row
        for edge in document.get("edges", []):
            row = Edge(
                tenant=tenant,
                flow=flow,
                upstream=created[edge["upstream"]],
                downstream=created[edge["downstream"]],
                branch=edge.get("branch") or None,
            )
            set_history(row, user, "flow imported")
            row.save()
        if document.get("schedule"):
            hooks.schedule_import(flow=flow, data=document["schedule"], user=user)
    return flow
