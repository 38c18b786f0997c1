"""PRODUCT.md's permission table as a matrix over every flow-scoped API route, over HTTP.

Routes are enumerated from the URLconf: everything under /api/v1/flows/{id}/…, /runs/{id}/…
and /node-runs/{id}/…. Each route + method is classified into one action of the table by
ROUTE_ACTIONS below; a route that is not classified fails the test, so a new route has to
be placed in the table before it ships. (tests/flows/test_permissions.py checks the same
table through flows.selectors.flow_get.)
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from accounts.choices import Role
from accounts.selectors import TenantContext
from flows import services
from tests.factories import MembershipFactory, TenantFactory, UserFactory

from . import routes

pytestmark = pytest.mark.django_db

ROLES = ["owner", "stakeholder", "admin", "dba", "member_public", "member_private"]
OK, FORBIDDEN, HIDDEN = "ok", "forbidden", "hidden"
EXPECTED = {
    # action: outcome per role, in ROLES order (PRODUCT.md "Who may do what with a flow").
    "view": [OK, OK, OK, OK, OK, HIDDEN],
    "edit": [OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, HIDDEN],
    "operate": [OK, OK, OK, OK, FORBIDDEN, HIDDEN],
    "publish": [OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, HIDDEN],
    "manage_stakeholders": [OK, FORBIDDEN, OK, OK, FORBIDDEN, HIDDEN],
    "change_owner": [OK, FORBIDDEN, OK, OK, FORBIDDEN, HIDDEN],
}


@dataclass(frozen=True)
class Rule:
    """The action a route + method needs, a valid body, and whether a state conflict may answer."""

    action: str
    body: Callable[[dict], dict] | None = None
    query: dict | None = None
    # The request is valid but the object's state may refuse it (409/400), e.g. resume a run
    # that is not paused: still proof that the permission check let it through.
    state_dependent: bool = False


def _graph(w):
    return {
        "nodes": [{"id": n, "name": name, "type": "noop"} for name, n in w["nodes"].items()],
        "edges": [{"upstream": w["nodes"]["a"], "downstream": w["nodes"]["b"]}],
    }


V = Rule("view")
ROUTE_ACTIONS: dict[tuple[str, str], Rule] = {
    ("flow-detail", "get"): V,
    ("flow-detail", "patch"): Rule("edit", lambda w: {"description": "changed"}),
    ("flow-detail", "delete"): Rule("edit"),
    ("flow-export", "get"): V,
    ("flow-graph", "get"): V,
    ("flow-graph", "put"): Rule("edit", _graph),
    ("flow-history", "get"): V,
    ("flow-preview", "post"): Rule("view", lambda w: {"business_time": "2024-01-15T00:00:00Z"}),
    ("flow-stakeholders", "get"): V,
    ("flow-stakeholders", "put"): Rule(
        "manage_stakeholders", lambda w: {"users": [w["users"]["stakeholder"]]}
    ),
    ("flow-owner", "post"): Rule("change_owner", lambda w: {"owner": w["users"]["member"]}),
    ("flow-publish", "post"): Rule("publish", lambda w: {"comment": "matrix"}),
    ("flow-unpublish", "post"): Rule("publish"),
    ("flow-freeze", "post"): Rule("publish"),
    ("flow-unfreeze", "post"): Rule("publish"),
    ("flow-node-list", "get"): V,
    ("flow-node-list", "post"): Rule("edit", lambda w: {"name": "added", "type": "noop"}),
    ("flow-node-detail", "get"): V,
    ("flow-node-detail", "patch"): Rule("edit", lambda w: {"retries": 2}),
    ("flow-node-detail", "delete"): Rule("edit"),
    ("flow-edge-list", "get"): V,
    ("flow-edge-list", "post"): Rule(
        "edit", lambda w: {"upstream": w["nodes"]["b"], "downstream": w["nodes"]["c"]}
    ),
    ("flow-edge-detail", "get"): V,
    ("flow-edge-detail", "delete"): Rule("edit"),
    ("flow-version-list", "get"): V,
    ("flow-version-detail", "get"): V,
    ("flow-version-diff", "get"): V,
    ("flow-schedule", "get"): V,
    ("flow-schedule", "put"): Rule(
        "edit",
        lambda w: {
            "enabled": True,
            "cron": "0 4 * * *",
            "start_date": "2024-01-01",
            "timezone": "UTC",
        },
    ),
    ("flow-schedule-preview", "get"): Rule("view", query={"count": 3}),
    ("flow-schedule-missed", "get"): V,
    ("flow-run-list", "get"): V,
    ("flow-run-list", "post"): Rule("operate", lambda w: {"mode": "dry"}),
    ("run-detail", "get"): V,
    ("run-stop", "post"): Rule("operate", state_dependent=True),
    ("run-pause", "post"): Rule("operate", state_dependent=True),
    ("run-resume", "post"): Rule("operate", state_dependent=True),
    ("run-rerun", "post"): Rule("operate", state_dependent=True),
    ("run-restore", "post"): Rule("operate", state_dependent=True),
    ("node-run-detail", "get"): V,
    ("node-run-log", "get"): V,
    ("node-run-mark-success", "post"): Rule("operate", state_dependent=True),
    ("node-run-rerun-from", "post"): Rule("operate", state_dependent=True),
}


def flow_scoped_routes() -> list[routes.Route]:
    """API routes that act on one flow: flows/{id}/…, runs/{id}/…, node-runs/{id}/…."""
    prefixes = ("/api/v1/flows/{", "/api/v1/runs/{", "/api/v1/node-runs/{")
    return [r for r in routes.api_routes() if r.template.startswith(prefixes)]


def unclassified() -> list[str]:
    return [
        f"{method.upper()} {r.template} (name {r.name!r})"
        for r in flow_scoped_routes()
        for method in r.methods
        if (r.name, method) not in ROUTE_ACTIONS
    ]


def test_every_flow_scoped_route_is_classified():
    missing = unclassified()
    assert not missing, (
        "classify these routes in ROUTE_ACTIONS (tests/hardening/test_permission_matrix.py):\n"
        + "\n".join(missing)
    )
    assert len(flow_scoped_routes()) >= 25


def build_world(is_public: bool) -> dict:
    """One tenant, a user per role, and a published flow with nodes, runs and a schedule."""
    from operations.models import NodeRun
    from operations.services import run_start
    from scheduling.services import schedule_save

    tenant = TenantFactory(slug="matrix", name="Matrix")
    users = {}
    for key, role in (
        ("owner", Role.MEMBER),
        ("stakeholder", Role.MEMBER),
        ("admin", Role.ADMIN),
        ("dba", Role.DBA),
        ("member", Role.MEMBER),
    ):
        users[key] = UserFactory(username=f"matrix-{key}")
        MembershipFactory(user=users[key], tenant=tenant, role=role)
    owner = users["owner"]
    flow = services.flow_create(tenant=tenant, user=owner, name="matrix", is_public=is_public)
    services.flow_stakeholders_set(flow=flow, user=owner, users=[users["stakeholder"].pk])
    a = services.node_create(flow=flow, user=owner, name="a", type="noop")
    b = services.node_create(flow=flow, user=owner, name="b", type="noop")
    edge = services.edge_create(flow=flow, user=owner, upstream=a.pk, downstream=b.pk)
    schedule_save(flow=flow, user=owner, cron="0 3 * * *", start_date=datetime.date(2024, 1, 1))
    version = services.flow_publish(flow=flow, user=owner)
    # An unpublished change, so publishing again is a real new version.
    c = services.node_create(flow=flow, user=owner, name="c", type="noop")
    run = run_start(flow=flow, mode="dry", user=owner)
    node_run = NodeRun.objects.filter(run=run).order_by("id").first()
    return {
        "tenant": tenant,
        "users": {k: u.pk for k, u in users.items()},
        "user_objs": users,
        "nodes": {"a": a.pk, "b": b.pk, "c": c.pk},
        "ids": {
            "flow": flow.pk,
            "node": c.pk,
            "edge": edge.pk,
            "version": version.number,
            "run": run.pk,
            "node_run": node_run.pk,
        },
    }


def _outcome(status: int, rule: Rule) -> str | None:
    if 200 <= status < 300:
        return OK
    if rule.state_dependent and status in (400, 409):
        return OK
    return {403: FORBIDDEN, 404: HIDDEN}.get(status)


@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(role):
    world = build_world(is_public=role == "member_public")
    user_key = "member" if role.startswith("member_") else role
    client = APIClient()
    client.force_authenticate(world["user_objs"][user_key])
    client.credentials(HTTP_X_TENANT=world["tenant"].slug)
    column = ROLES.index(role)

    mismatches, checked = [], 0
    for route in flow_scoped_routes():
        url = routes.fill(route, world["ids"])
        for method in route.methods:
            rule = ROUTE_ACTIONS.get((route.name, method))
            if rule is None:
                mismatches.append(f"{method.upper()} {route.template}: not classified")
                continue
            expected = EXPECTED[rule.action][column]
            body = rule.body(world) if rule.body else {}
            # Each request meets the same world: a savepoint rolled back after it.
            with transaction.atomic():
                if method == "get":
                    res = client.get(url, rule.query or {})
                else:
                    res = getattr(client, method)(url, body, format="json")
                transaction.set_rollback(True)
            checked += 1
            got = _outcome(res.status_code, rule)
            if got != expected:
                detail = res.content.decode()[:200]
                mismatches.append(
                    f"{method.upper()} {url} [{rule.action}] as {role}: expected {expected}, "
                    f"got {res.status_code} {detail}"
                )
    assert checked >= 35
    assert not mismatches, "\n".join(mismatches)


# --------------------------------------------------------------------------- secrets

# Tenant-scoped routes with roles of their own: (route name, method) → (action, body).
SECRET_ROLES = ["admin", "dba", "member"]
SECRET_EXPECTED = {
    # read: names and scopes (never values); manage: create, change, delete.
    "read": [OK, OK, OK],
    "manage": [OK, OK, FORBIDDEN],
}
SECRET_ROUTE_ACTIONS: dict[tuple[str, str], Rule] = {
    ("secret-list", "get"): Rule("read"),
    ("secret-list", "post"): Rule("manage", lambda w: {"name": "NEW_ONE", "value": "v-1234"}),
    ("secret-detail", "get"): Rule("read"),
    ("secret-detail", "patch"): Rule("manage", lambda w: {"value": "v-5678"}),
    ("secret-detail", "delete"): Rule("manage"),
    ("secret-history", "get"): Rule("read"),
}


def secret_routes() -> list[routes.Route]:
    return [r for r in routes.api_routes() if r.template.startswith("/api/v1/secrets/")]


def test_every_secret_route_is_classified():
    missing = [
        f"{m.upper()} {r.template}"
        for r in secret_routes()
        for m in r.methods
        if (r.name, m) not in SECRET_ROUTE_ACTIONS
    ]
    assert not missing and len(secret_routes()) >= 3, missing


@pytest.mark.parametrize("role", SECRET_ROLES)
def test_secret_permission_matrix(role):
    """Admins and DBAs manage, members read names; a flow's secret follows the flow's view
    right (a member who cannot see the flow gets 404 on every route, as for a missing id)."""
    from flows.secrets.services import secret_create

    world = build_world(is_public=False)
    tenant, users = world["tenant"], world["user_objs"]
    admin_ctx = TenantContext(tenant=tenant, user=users["admin"], role=Role.ADMIN)
    shared = secret_create(ctx=admin_ctx, name="SHARED", value="v-shared")
    scoped = secret_create(
        ctx=admin_ctx, name="SCOPED", value="v-scoped", flow=world["ids"]["flow"]
    )
    client = APIClient()
    client.force_authenticate(users[role])
    client.credentials(HTTP_X_TENANT=tenant.slug)
    column = SECRET_ROLES.index(role)
    mismatches, checked = [], 0
    for secret, hidden in ((shared, False), (scoped, role == "member")):
        for route in secret_routes():
            url = routes.fill(route, {"secret": secret.pk})
            for method in route.methods:
                rule = SECRET_ROUTE_ACTIONS[(route.name, method)]
                expected = SECRET_EXPECTED[rule.action][column]
                if hidden and route.kwargs:
                    expected = HIDDEN
                with transaction.atomic():
                    body = rule.body(world) if rule.body else {}
                    res = (
                        client.get(url)
                        if method == "get"
                        else getattr(client, method)(url, body, format="json")
                    )
                    transaction.set_rollback(True)
                checked += 1
                got = _outcome(res.status_code, rule)
                if got != expected:
                    mismatches.append(
                        f"{method.upper()} {url} [{rule.action}] as {role}: expected {expected}, "
                        f"got {res.status_code} {res.content.decode()[:200]}"
                    )
                if res.status_code < 300 and res.content:
                    assert "v-shared" not in res.content.decode()
                    assert "v-scoped" not in res.content.decode()
    assert checked >= 10
    assert not mismatches, "\n".join(mismatches)
