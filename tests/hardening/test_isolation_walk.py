"""Tenant isolation, proven on every route: tenant B holding tenant A's ids gets nothing.

Routes are enumerated from the URLconf (tests/hardening/routes.py), each with every method its
view serves, so a route added later is walked without touching this file; a URL kwarg the
walk cannot fill makes it fail, naming the route. For each request the test checks the
status, that no identifying string of tenant A is in the body, and that a fingerprint of
every tenant-A row (history tables included) is unchanged.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.db import transaction
from django.test import Client
from django.urls import NoReverseMatch, reverse
from rest_framework.test import APIClient

from accounts.models import Membership
from flows.models import DataSource, TaskFlow, TaskFlowUserObjectPermission, TaskNode

from . import routes, world
from .world import MISSING, fingerprint, fingerprint_diff, leaks

pytestmark = pytest.mark.django_db

HIDDEN = 404
FORBIDDEN = 403
# Tenant B's people reach the platform from their own machines, not from its host (where
# the platform operator's loopback-only routes, such as /metrics, are open).
OUTSIDE = "203.0.113.50"


def hostile_body(ids: dict, users: list[int]) -> dict:
    """A body naming tenant A's objects in every field a write endpoint might read."""
    return {
        "name": "probe-from-b",
        "description": "probe",
        "owner": ids["user"],
        "users": users,
        "upstream": ids["node"],
        "downstream": ids["node2"],
        "datasource": ids["datasource"],
        "flow": ids["flow"],
        "node": ids["node"],
        "run": ids["run"],
        "mode": "dry",
        "business_time": "2024-01-15T00:00:00Z",
        "role": "admin",
        "is_active": False,
        "is_public": True,
        "enabled": False,
        "cron": "* * * * *",
        "start_date": "2024-01-01",
        "timezone": "UTC",
        "comment": "probe",
        "type": "noop",
        "config": {"datasource": ids["datasource"], "flow": ids["flow"]},
        "nodes": [{"id": ids["node"], "name": "probe", "type": "noop"}],
        "edges": [{"upstream": ids["node"], "downstream": ids["node2"]}],
    }


def id_query(ids: dict) -> dict:
    """Query filters naming tenant A's objects (lists must still show nothing of A)."""
    return {
        "flow": ids["flow"],
        "owner": ids["user"],
        "user": ids["user"],
        "run": ids["run"],
        "table": f"{world.MARKER}_orders",  # a table tenant A's published flow reads
        "datasource": ids["datasource"],
    }


class Walk:
    """Sends requests as one tenant-B actor and collects every isolation failure."""

    def __init__(self, client, victim, *, form: bool = False, login=None, echoed=()):
        self.client = client
        self.echoed = echoed
        self.victim = victim
        self.form = form
        self.login = login
        self.problems: list[str] = []
        self.baseline = fingerprint(victim)

    def send(self, method: str, url: str, data=None):
        """One request in a savepoint rolled back afterwards, so every request meets the same world."""
        if self.login is not None:
            self.login()
        with transaction.atomic():
            try:
                if method in ("get", "options"):
                    res = getattr(self.client, method)(url, data or {})
                elif self.form:
                    res = getattr(self.client, method)(url, _flat(data or {}))
                else:
                    res = getattr(self.client, method)(url, data or {}, format="json")
            except Exception as exc:  # a server error: report it with the route, go on
                self.problems.append(f"{method.upper()} {url}: raised {type(exc).__name__}: {exc}")
                transaction.set_rollback(True)
                return None
            changed = fingerprint_diff(self.baseline, fingerprint(self.victim))
            transaction.set_rollback(True)
        where = f"{method.upper()} {url} → {res.status_code}"
        if res.status_code >= 500:
            self.problems.append(f"{where}: server error")
        text = res.content.decode("utf-8", "replace")
        for sent in self.echoed:  # what the request itself said may come back in a message
            text = text.replace(sent, "")
        found = leaks(text, self.victim)
        if found:
            self.problems.append(f"{where}: tenant A data in the body: {found}")
        if changed:
            self.problems.append(f"{where}: tenant A rows changed in {changed}")
        return res

    def expect(self, res, allowed: set[int], what: str) -> None:
        if res is not None and res.status_code not in allowed:
            self.problems.append(f"{what}: expected {sorted(allowed)}, got {res.status_code}")

    def assert_clean(self) -> None:
        assert not self.problems, "isolation failures:\n  " + "\n  ".join(self.problems)


def _keep_logged_in(client, user):
    """Log in again only when a request (the logout page) ended the session."""

    def login():
        if "_auth_user_id" not in client.session:
            client.force_login(user)

    return login


def _flat(data: dict) -> dict:
    """A JSON body as form fields (pages and the admin read forms)."""
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            continue
        if isinstance(value, list):
            out[key] = [v for v in value if not isinstance(v, dict)]
        else:
            out[key] = value
    return out


def _same_answer_as_missing(walk, route, method, url_a, res_a, body, expected):
    """A's id must answer exactly like an id that exists nowhere, and be hidden or forbidden."""
    if res_a is None:
        return
    url_missing = routes.fill(route, {}, **{k: MISSING for k in _kinds(route)})
    res_missing = walk.send(method, url_missing, body)
    if res_missing is None:
        return
    what = f"{method.upper()} {url_a} (tenant A ids)"
    if res_a.status_code != res_missing.status_code:
        walk.problems.append(
            f"{what}: answers {res_a.status_code} but {res_missing.status_code} for an id that "
            "does not exist: the difference tells B that A's object exists"
        )
    walk.expect(res_a, expected, what)


def _kinds(route) -> set[str]:
    return {routes.object_of(route, k) for k in route.kwargs}


# --------------------------------------------------------------------------- enumeration


def test_every_route_kwarg_is_mapped_to_a_tenant_a_object():
    """A new route with an unknown kwarg fails here first, with the route named."""
    unmapped = []
    for route in routes.api_routes() + routes.page_routes():
        for kwarg in route.kwargs:
            try:
                routes.object_of(route, kwarg)
            except routes.UnmappedKwarg as exc:
                unmapped.append(str(exc))
    assert not unmapped, "\n".join(unmapped)


def test_walk_covers_the_api():
    templates = {r.template for r in routes.api_routes()}
    # A sample only: the walk itself covers whatever the URLconf holds.
    for expected in ("/api/v1/flows/{pk}/graph/", "/api/v1/flows/{flow_id}/nodes/{pk}/"):
        assert expected in templates
    assert sum(len(r.methods) for r in routes.api_routes()) >= 40


# --------------------------------------------------------------------------- API


@pytest.mark.parametrize("role", ["member", "admin", "auditor"])
def test_api_walk_tenant_b_with_tenant_a_ids(role, victim, prober):
    client = APIClient(REMOTE_ADDR=OUTSIDE)
    client.credentials(
        HTTP_AUTHORIZATION=f"Token {prober.tokens[role]}", HTTP_X_TENANT=prober.tenant.slug
    )
    # The lineage answer repeats the table the query named.
    walk = Walk(client, victim, echoed=[id_query(victim.ids)["table"]])
    ids = victim.ids
    body = hostile_body(ids, [u.pk for u in victim.users.values()])
    for route in routes.api_routes():
        if not route.kwargs:
            # Tenant-wide routes: lists answer (or refuse the role) with nothing of A in them.
            for method in route.methods:
                if method == "get":
                    res = walk.send("get", route.template, id_query(ids))
                    walk.expect(res, {200, 400, 403}, f"GET {route.template}")
                else:
                    walk.send(method, route.template, body)
            continue
        url = routes.fill(route, ids)
        for method in route.methods:
            res = walk.send(method, url, body)
            _same_answer_as_missing(walk, route, method, url, res, body, {HIDDEN, FORBIDDEN})
            if route.template.startswith("/api/v1/flows/{") and len(route.kwargs) > 1:
                # B's own flow with A's sub-object ids (node, edge, version …): answered as
                # for sub-ids that exist nowhere (404, or 403 when B may not edit its flow).
                own = prober.ids["flow"]
                url_mixed = routes.fill(route, ids, flow=own)
                mixed = walk.send(method, url_mixed, body)
                missing = walk.send(
                    method,
                    routes.fill(route, {}, **{**{k: MISSING for k in _kinds(route)}, "flow": own}),
                    body,
                )
                if mixed is not None and missing is not None:
                    walk.expect(
                        mixed,
                        {missing.status_code} & {HIDDEN, FORBIDDEN},
                        f"{method.upper()} {url_mixed} (B's flow, A's sub-ids)",
                    )
        walk.send("options", url)
    walk.assert_clean()


def test_api_tenant_header_naming_tenant_a_is_refused_everywhere(victim, prober):
    """A B member naming A in X-Tenant is not a member there: 403 on every tenant route."""
    client = APIClient(REMOTE_ADDR=OUTSIDE)
    client.credentials(
        HTTP_AUTHORIZATION=f"Token {prober.tokens['member']}", HTTP_X_TENANT=victim.tenant.slug
    )
    walk = Walk(client, victim, echoed=[victim.tenant.slug])
    body = hostile_body(victim.ids, [victim.ids["user"]])
    for route in routes.api_routes():
        if route.callback.cls.authentication_classes == []:
            continue  # the token endpoint: no tenant, no user yet
        url = routes.fill(route, victim.ids)
        for method in route.methods:
            res = walk.send(method, url, body if method != "get" else id_query(victim.ids))
            walk.expect(res, {FORBIDDEN}, f"{method.upper()} {url} with X-Tenant: A")
    walk.assert_clean()


# --------------------------------------------------------------------------- pages


@pytest.mark.parametrize("role", ["member", "admin", "auditor"])
def test_page_walk_tenant_b_with_tenant_a_ids(role, victim, prober):
    user = getattr(prober, role)
    client = Client(REMOTE_ADDR=OUTSIDE)
    walk = Walk(client, victim, form=True, login=_keep_logged_in(client, user))
    ids = victim.ids
    body = hostile_body(ids, [ids["user"]])
    body.update({"tenant": victim.tenant.slug, "slug": victim.tenant.slug})
    for route in routes.page_routes():
        if not route.kwargs:
            # Lists, the dashboard, tenant switch, sign-in: whatever they answer, nothing of A
            # (a tenant switch naming A's slug must not make the next pages show A).
            for method in route.methods:
                walk.send(method, route.template, id_query(ids) if method == "get" else body)
        else:
            url = routes.fill(route, ids)
            for method in route.methods:
                res = walk.send(method, url, body)
                # Pages: hidden, forbidden or a method the page does not serve (function views
                # cannot be introspected), the same as for an id that does not exist.
                _same_answer_as_missing(
                    walk, route, method, url, res, body, {HIDDEN, FORBIDDEN, 405}
                )
    walk.assert_clean()


# --------------------------------------------------------------------------- Django admin


def _admin_url(model, view: str, *args) -> str | None:
    opts = model._meta
    try:
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)
    except NoReverseMatch:
        return None


@pytest.mark.parametrize("role", ["admin", "auditor"])
def test_admin_walk_tenant_admin_or_auditor_of_b(role, victim, prober):
    """Change, delete and history pages of every A object: refused, never A's data."""
    client = Client(REMOTE_ADDR=OUTSIDE)
    walk = Walk(client, victim, form=True, login=_keep_logged_in(client, getattr(prober, role)))
    index = reverse("admin:index")
    walked = []
    for model in admin.site._registry:
        for view in ("changelist", "add"):
            url = _admin_url(model, view)
            if url:
                walk.send("get", url)  # lists and add forms (FK choices!) show nothing of A
        scope = world.tenant_rows(model, victim)
        obj = model._base_manager.filter(scope).order_by("pk").first() if scope else None
        if obj is None:
            continue
        walked.append(model.__name__)
        views = [("change", obj.pk), ("delete", obj.pk), ("history", obj.pk)]
        history = getattr(model, "history", None)
        if history is not None and hasattr(history, "model"):
            record = history.model.objects.filter(id=obj.pk).order_by("history_id").first()
            if record is not None:  # one historical version's page (simple-history's revert)
                views.append(("simple_history", obj.pk, record.history_id))
        for view, *args in views:
            url = _admin_url(model, view, *args)
            if url is None:
                continue
            for method, data in (("get", None), ("post", {"post": "yes"})):
                res = walk.send(method, url, data)
                if res is None:
                    continue
                what = f"{method.upper()} {url}"
                walk.expect(res, {302, 403, 404}, what)
                if res.status_code == 302 and res["Location"] != index:
                    walk.problems.append(f"{what}: redirects to {res['Location']}, not the index")
    assert {
        "TaskFlow",
        "Membership",
        "DataSource",
        "Secret",
        "TaskNode",
        "User",
        "Tenant",
        "ServiceAccount",
        "ApiToken",
        "OperationRecord",
        "WebhookDelivery",
    } <= set(walked)
    walk.assert_clean()


# --------------------------------------------------------------------------- writable FKs


@pytest.fixture
def b_member_api(prober):
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Token {prober.tokens['member']}", HTTP_X_TENANT=prober.tenant.slug
    )
    return client


@pytest.fixture
def b_admin_api(prober):
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Token {prober.tokens['admin']}", HTTP_X_TENANT=prober.tenant.slug
    )
    return client


def _refused(res, field: str):
    assert res.status_code == 400, (res.status_code, res.content)
    assert field in res.content.decode(), res.content


def test_node_refuses_a_data_source_of_another_tenant(victim, prober, b_member_api):
    flow = prober.ids["flow"]
    foreign = {"datasource": victim.ids["datasource"], "sql": "select 1"}
    before = fingerprint(victim)
    nodes_before = TaskNode.objects.filter(flow_id=flow).count()

    res = b_member_api.post(
        f"/api/v1/flows/{flow}/nodes/", {"name": "n", "type": "sql", "config": foreign}
    )
    _refused(res, "datasource")
    res = b_member_api.patch(
        f"/api/v1/flows/{flow}/nodes/{prober.ids['node']}/", {"config": foreign}
    )
    _refused(res, "datasource")
    res = b_member_api.put(
        f"/api/v1/flows/{flow}/graph/",
        {"nodes": [{"key": "x", "name": "x", "type": "sql", "config": foreign}], "edges": []},
    )
    assert res.status_code == 400 and "datasource" in res.content.decode(), res.content

    assert TaskNode.objects.filter(flow_id=flow).count() == nodes_before
    node = TaskNode.objects.get(pk=prober.ids["node"])
    assert node.config["datasource"] == prober.ids["datasource"]
    assert fingerprint(victim) == before


def test_dependency_check_refuses_a_flow_of_another_tenant(victim, prober, b_member_api):
    flow = prober.ids["flow"]
    res = b_member_api.post(
        f"/api/v1/flows/{flow}/nodes/",
        {"name": "dep", "type": "dependency_check", "config": {"flow": victim.ids["flow"]}},
    )
    _refused(res, "flow")
    assert not TaskNode.objects.filter(flow_id=flow, name="dep").exists()


def test_edge_refuses_nodes_of_another_tenant(victim, prober, b_member_api):
    flow = prober.ids["flow"]
    res = b_member_api.post(
        f"/api/v1/flows/{flow}/edges/",
        {"upstream": victim.ids["node"], "downstream": prober.ids["node"]},
    )
    assert res.status_code in (400, 404), res.content
    assert not TaskFlow.objects.get(pk=flow).edges.exists()


def test_stakeholders_and_owner_refuse_users_of_another_tenant(victim, prober, b_admin_api):
    flow = prober.ids["flow"]
    outsider = victim.ids["user"]
    res = b_admin_api.put(f"/api/v1/flows/{flow}/stakeholders/", {"users": [outsider]})
    _refused(res, "users")
    assert (
        not TaskFlowUserObjectPermission.objects.filter(user_id=outsider)
        .exclude(content_object__tenant=victim.tenant)
        .exists()
    )
    res = b_admin_api.post(f"/api/v1/flows/{flow}/owner/", {"owner": outsider})
    _refused(res, "owner")
    assert TaskFlow.objects.get(pk=flow).owner_id == prober.member.pk


def test_members_refuse_a_user_of_another_tenant(victim, prober, b_admin_api):
    """B's admin cannot pull A's user into B (and so read their email or hand them flows)."""
    stranger = victim.users["owner"]
    res = b_admin_api.post("/api/v1/members/", {"username": stranger.username, "role": "member"})
    _refused(res, "username")
    assert not Membership.objects.filter(user=stranger, tenant=prober.tenant).exists()
    # Nor can it take A's user over by sending a password for it.
    res = b_admin_api.post(
        "/api/v1/members/",
        {"username": stranger.username, "password": "Another-pass-123", "email": "x@b.example"},
    )
    _refused(res, "username")
    stranger.refresh_from_db()
    assert stranger.check_password("correct-horse-battery-staple")
    assert stranger.email == "zqxa.owner@victim.example"


def test_import_refuses_names_of_another_tenant(victim, prober, b_member_api):
    document = {
        "kind": "tributary/flow",
        "version": 1,
        "name": "imported",
        "nodes": [
            {
                "name": "a",
                "type": "sql",
                "config": {"datasource": {"$datasource": "zqxa-warehouse"}, "sql": "select 1"},
            },
            {
                "name": "b",
                "type": "dependency_check",
                "config": {"flow": {"$flow": "zqxa-private-flow"}},
            },
        ],
        "edges": [],
    }
    res = b_member_api.post("/api/v1/flows/import/", document)
    assert res.status_code == 400, res.content
    assert not TaskFlow.objects.filter(tenant=prober.tenant, name="imported").exists()
    assert not DataSource.objects.filter(tenant=prober.tenant, name="zqxa-warehouse").exists()


def test_admin_history_page_of_an_untracked_model_works_for_its_tenant(victim, client):
    """Runs and published versions have no simple-history table: Django's own history page."""
    from operations.models import FlowRun

    admin_user = victim.users["admin"]
    admin_user.is_staff = True
    admin_user.save()
    client.force_login(admin_user)
    run = FlowRun.objects.get(pk=victim.ids["run"])
    res = client.get(reverse("admin:operations_flowrun_history", args=[run.pk]))
    assert res.status_code == 200


# --------------------------------------------------------------------------- platform routes


def test_metrics_are_the_platform_operators_not_a_tenants(victim, prober, settings):
    """Tenant B's admin, signed in or with its API token, cannot scrape /metrics (which
    names every tenant) from outside; only loopback or the operator's METRICS_TOKEN can."""
    api = APIClient(REMOTE_ADDR=OUTSIDE)
    api.credentials(HTTP_AUTHORIZATION=f"Token {prober.tokens['admin']}")
    assert api.get("/metrics").status_code == FORBIDDEN
    page = Client(REMOTE_ADDR=OUTSIDE)
    page.force_login(prober.admin)
    assert page.get("/metrics").status_code == FORBIDDEN
    settings.METRICS_TOKEN = "the-operators-token"
    wrong = Client(REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION=f"Bearer {prober.tokens['admin']}")
    assert wrong.get("/metrics").status_code == 401
    right = Client(REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION="Bearer the-operators-token")
    assert right.get("/metrics").status_code == 200


def test_the_tenant_wide_reads_have_tenant_a_data_to_hide(victim):
    """The walk's lineage, grid and distribution queries find A's data for A's admin, so
    their empty answers to B prove isolation rather than an empty world."""
    client = APIClient()
    client.force_authenticate(victim.users["admin"])
    query = id_query(victim.ids)
    lineage = client.get("/api/v1/lineage/", query).json()
    assert [r["flow"] for r in lineage["readers"]] == [victim.ids["flow"]]
    grid = client.get("/api/v1/runs/grid/", {"flow": victim.ids["flow"]}).json()
    assert grid["results"][0]["cells"][0]["runs"] == [victim.ids["run"]]
    graph = client.get(f"/api/v1/flows/{victim.ids['flow']}/lineage/").json()
    assert {f["id"] for f in graph["flows"]} == {victim.ids["flow"], victim.ids["private_flow"]}


def test_bulk_answers_another_tenants_runs_as_missing_and_the_audit_hides_them(
    victim, prober, b_admin_api
):
    """B's admin naming A's run in a bulk request gets "not found", exactly as for an id that
    exists nowhere, A's rows stay as they were, and A's O&M actions never reach B's audit."""
    from operations.choices import BULK_ACTIONS
    from operations.models import FlowRun
    from operations.services import run_pause

    # A's owner pauses A's run, with a reason naming the marker
    run = FlowRun.objects.get(pk=victim.ids["run"])
    run_pause(run=run, user=victim.users["owner"], reason=f"{world.MARKER} paused by A")
    before = fingerprint(victim)
    for action in BULK_ACTIONS:
        res = b_admin_api.post(
            "/api/v1/runs/bulk/",
            {"action": action, "runs": [victim.ids["run"], MISSING], "reason": "probe"},
            format="json",
        )
        assert res.status_code == 200, res.content
        theirs, missing = res.json()["results"]
        assert (theirs["result"], theirs["status"]) == ("refused", 404), theirs
        assert {k: v for k, v in theirs.items() if k != "run"} == {
            k: v for k, v in missing.items() if k != "run"
        }
        assert not world.leaks(res.content, victim), res.content
    assert fingerprint(victim) == before
    audit = b_admin_api.get("/api/v1/audit/", {"page_size": 200})
    assert audit.status_code == 200
    assert not world.leaks(audit.content, victim), audit.content
    assert "probe" in audit.content.decode()  # B's own bulk requests are there
