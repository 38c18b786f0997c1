"""PRODUCT.md's permission table as a matrix over every API route, over HTTP.

Routes are enumerated from the URLconf. Flow-scoped ones (everything under
/api/v1/flows/{id}/…, /runs/{id}/… and /node-runs/{id}/…) are classified into one action of
the flow table by ROUTE_ACTIONS; the tenant-wide ones (members, service accounts, the audit
trail, data sources, lists, one's own account) into one rule of the tenant table by
TENANT_ROUTE_RULES. A route that is not classified fails the test, so a new route has to
be placed in a table before it ships. (tests/flows/test_permissions.py checks the flow
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

ROLES = ["owner", "stakeholder", "admin", "dba", "member_public", "member_private", "auditor"]
OK, FORBIDDEN, HIDDEN = "ok", "forbidden", "hidden"
F = FORBIDDEN
EXPECTED = {
    # action: outcome per role, in ROLES order (PRODUCT.md "Who may do what with a flow").
    # The auditor sees every flow of the tenant, public or not, and acts on none.
    "view": [OK, OK, OK, OK, OK, HIDDEN, OK],
    "edit": [OK, F, F, F, F, HIDDEN, F],
    "operate": [OK, OK, OK, OK, F, HIDDEN, F],
    "publish": [OK, F, F, F, F, HIDDEN, F],
    "manage_stakeholders": [OK, F, OK, OK, F, HIDDEN, F],
    "change_owner": [OK, F, OK, OK, F, HIDDEN, F],
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
    ("flow-stats", "get"): Rule("view", query={"last": 5}),
    ("flow-lineage", "get"): V,
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
        ("auditor", Role.AUDITOR),
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
SECRET_ROLES = ["admin", "dba", "member", "auditor"]
SECRET_EXPECTED = {
    # read: names and scopes (never values); manage: create, change, delete.
    "read": [OK, OK, OK, OK],
    "manage": [OK, OK, FORBIDDEN, FORBIDDEN],
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


# --------------------------------------------------------------------------- tenant-wide routes

TENANT_ROLES = ["admin", "dba", "member", "auditor"]
TENANT_EXPECTED = {
    # rule: outcome per role, in TENANT_ROLES order.
    "read": [OK, OK, OK, OK],  # every member reads (lists, members, data sources …)
    "create": [OK, OK, OK, F],  # every member creates flows; auditors change nothing
    "manage_datasources": [OK, OK, F, F],
    "admin_read": [OK, F, F, OK],  # the audit trail, service accounts: admins and auditors
    "admin_write": [OK, F, F, F],  # members, service accounts and their tokens
    "platform": [F, F, F, F],  # tenants: the platform superuser only
    "self": [OK, OK, OK, OK],  # one's own password and tokens
}
_IMPORT = {"kind": "tributary/flow", "version": 1, "name": "imported", "nodes": [], "edges": []}
TENANT_ROUTE_RULES: dict[tuple[str, str], Rule] = {
    ("me", "get"): Rule("self"),
    ("me-password", "post"): Rule("self", lambda w: {}, state_dependent=True),
    ("me-token-list", "get"): Rule("self"),
    ("me-token-list", "post"): Rule("self", lambda w: {"name": "m", "scopes": ["flows:read"]}),
    ("me-token-detail", "get"): Rule("self"),
    ("me-token-detail", "delete"): Rule("self"),
    ("tenant-list", "get"): Rule("platform"),
    ("tenant-list", "post"): Rule("platform", lambda w: {"name": "New", "slug": "new-one"}),
    # A tenant's admins and auditors read its limits and use; only the superuser sets them.
    ("tenant-detail", "get"): Rule("admin_read"),
    ("tenant-detail", "patch"): Rule("platform", lambda w: {"limits": {"running_nodes": 3}}),
    ("member-list", "get"): Rule("read"),
    ("member-list", "post"): Rule(
        "admin_write", lambda w: {"username": "fresh", "password": "a-Strong-passw0rd"}
    ),
    ("member-detail", "get"): Rule("read"),
    ("member-detail", "patch"): Rule("admin_write", lambda w: {"role": "member"}),
    ("service-account-list", "get"): Rule("admin_read"),
    ("service-account-list", "post"): Rule("admin_write", lambda w: {"name": "bot2"}),
    ("service-account-detail", "get"): Rule("admin_read"),
    ("service-account-detail", "patch"): Rule("admin_write", lambda w: {"role": "dba"}),
    ("service-account-token-list", "get"): Rule("admin_read"),
    ("service-account-token-list", "post"): Rule(
        "admin_write", lambda w: {"name": "t", "scopes": ["runs:read"]}
    ),
    ("service-account-token-detail", "get"): Rule("admin_read"),
    ("service-account-token-detail", "delete"): Rule("admin_write"),
    ("audit", "get"): Rule("admin_read"),
    ("webhook-list", "get"): Rule("admin_read"),
    ("webhook-list", "post"): Rule(
        "admin_write", lambda w: {"url": "https://hooks.example.com/", "events": ["run.failed"]}
    ),
    ("webhook-detail", "get"): Rule("admin_read"),
    ("webhook-detail", "patch"): Rule("admin_write", lambda w: {"description": "changed"}),
    ("webhook-detail", "delete"): Rule("admin_write"),
    ("webhook-deliveries", "get"): Rule("admin_read"),
    ("webhook-redeliver", "post"): Rule("admin_write"),
    ("flow-list", "get"): Rule("read"),
    ("flow-list", "post"): Rule("create", lambda w: {"name": "new flow"}),
    ("flow-import-", "post"): Rule("create", lambda w: _IMPORT, state_dependent=True),
    ("datasource-list", "get"): Rule("read"),
    ("datasource-list", "post"): Rule(
        "manage_datasources",
        lambda w: {"name": "ds2", "engine": "sqlite", "database": w["sqlite"]},
        state_dependent=True,
    ),
    ("datasource-detail", "get"): Rule("read"),
    ("datasource-detail", "patch"): Rule("manage_datasources", lambda w: {"name": "renamed"}),
    ("datasource-detail", "delete"): Rule("manage_datasources", state_dependent=True),
    ("datasource-history", "get"): Rule("read"),
    ("datasource-test", "post"): Rule("read"),
    ("run-list", "get"): Rule("read"),
    # Every member may send a bulk request (auditors not): each run then answers what its
    # single action would (tests/operations/test_bulk.py), so a run outside one's rights is
    # refused inside a 200.
    ("run-bulk", "post"): Rule(
        "create", lambda w: {"action": "pause", "runs": [w["ids"]["run"]], "reason": "matrix"}
    ),
    ("dashboard", "get"): Rule("read"),
    ("capacity", "get"): Rule("read"),
    ("run-grid", "get"): Rule("read"),
    ("lineage", "get"): Rule("read", query={"table": "orders"}),
    ("schedule-distribution", "get"): Rule("read"),
}


def tenant_routes() -> list[routes.Route]:
    """API routes that are not flow-scoped and need a signed-in user."""
    # Flow-scoped and secret routes have matrices of their own above.
    own_matrix = {r.template for r in flow_scoped_routes()} | {r.template for r in secret_routes()}
    return [
        r
        for r in routes.api_routes()
        if r.template not in own_matrix and r.callback.cls.authentication_classes != []
    ]


def test_every_tenant_route_is_classified():
    missing = [
        f"{method.upper()} {r.template} (name {r.name!r})"
        for r in tenant_routes()
        for method in r.methods
        if (r.name, method) not in TENANT_ROUTE_RULES
    ]
    assert not missing, (
        "classify these routes in TENANT_ROUTE_RULES (tests/hardening/test_permission_matrix.py):\n"
        + "\n".join(missing)
    )


def build_tenant_world(tmp_path) -> dict:
    from accounts import services as account_services
    from accounts.models import Membership
    from flows.models import DataSource

    world = build_world(is_public=False)
    tenant, users = world["tenant"], world["user_objs"]
    from tests.conftest import tenant_sqlite_folder

    sqlite = tenant_sqlite_folder(tenant) / "matrix.sqlite3"
    sqlite.touch()
    ds = DataSource(tenant=tenant, name="ds", engine="sqlite", database=str(sqlite))
    ds.save()
    bot = account_services.service_account_create(
        tenant=tenant, actor=users["admin"], name="bot", role="member"
    )
    bot_token, _ = account_services.token_issue(
        user=bot.user, actor=users["admin"], name="t", scopes=["flows:read"]
    )
    from tests.hardening.world import _webhook

    webhook, delivery = _webhook(tenant, users["admin"], "https://hooks.example.com/matrix")
    world["sqlite"] = str(sqlite)
    world["own_tokens"] = {
        key: account_services.token_issue(user=u, actor=u, name="own", scopes=["flows:read"])[0].pk
        for key, u in users.items()
    }
    world["ids"].update(
        {
            "tenant": tenant.pk,
            "datasource": ds.pk,
            "membership": Membership.objects.get(user=users["member"], tenant=tenant).pk,
            "service_account": bot.pk,
            "service_token": bot_token.pk,
            "webhook": webhook,
            "delivery": delivery,
        }
    )
    return world


@pytest.mark.parametrize("role", TENANT_ROLES)
def test_tenant_permission_matrix(role, tmp_path):
    world = build_tenant_world(tmp_path)
    client = APIClient()
    client.force_authenticate(world["user_objs"][role])
    client.credentials(HTTP_X_TENANT=world["tenant"].slug)
    column = TENANT_ROLES.index(role)
    ids = {**world["ids"]}
    mismatches, checked = [], 0
    for route in tenant_routes():
        # Token routes: one's own under me/, the service account's under service-accounts/.
        own = world["own_tokens"][role]
        token = own if route.template.startswith("/api/v1/me/") else ids["service_token"]
        url = routes.fill(route, {**ids, "token": token})
        for method in route.methods:
            rule = TENANT_ROUTE_RULES.get((route.name, method))
            if rule is None:
                mismatches.append(f"{method.upper()} {route.template}: not classified")
                continue
            expected = TENANT_EXPECTED[rule.action][column]
            body = rule.body(world) if rule.body else {}
            with transaction.atomic():
                if method == "get":
                    res = client.get(url, rule.query or {}, HTTP_ACCEPT="application/json")
                else:
                    res = getattr(client, method)(url, body, format="json")
                transaction.set_rollback(True)
            checked += 1
            got = _outcome(res.status_code, rule)
            if got != expected:
                mismatches.append(
                    f"{method.upper()} {url} [{rule.action}] as {role}: expected {expected}, "
                    f"got {res.status_code} {res.content.decode()[:200]}"
                )
    assert checked >= 30
    assert not mismatches, "\n".join(mismatches)


# --------------------------------------------------------------------------- the audit page

AUDIT_PAGES = ["/audit/", "/audit/export.csv"]


@pytest.mark.parametrize("role", TENANT_ROLES)
def test_audit_page_and_api_answer_alike(role, tmp_path):
    """The console's audit page and its CSV follow the API's rule (admin_read): admins and
    auditors read it, other members get 403 from the page, the export and the API alike."""
    from django.test import Client

    world = build_tenant_world(tmp_path)
    user = world["user_objs"][role]
    expected = TENANT_EXPECTED["admin_read"][TENANT_ROLES.index(role)]
    pages = Client()
    pages.force_login(user)
    api = APIClient()
    api.force_authenticate(user)
    api.credentials(HTTP_X_TENANT=world["tenant"].slug)
    answers = {url: pages.get(url).status_code for url in AUDIT_PAGES}
    answers["/api/v1/audit/"] = api.get("/api/v1/audit/").status_code
    want = 200 if expected == OK else 403
    assert answers == dict.fromkeys(answers, want), answers
    if expected == OK:
        # Read-only for everyone who reads it: the page and the API refuse writes.
        assert pages.post("/audit/").status_code == 405
        assert api.post("/api/v1/audit/", {}, format="json").status_code in (403, 405)
