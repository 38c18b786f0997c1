"""Every flow route, enumerated from the URLconf, answers 404 for another tenant's ids."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from flows import services

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete")
API_PREFIX = "api/v1/"


def _walk(patterns, prefix=""):
    for pattern in patterns:
        route = str(pattern.pattern).lstrip("^").rstrip("$").replace("\\Z", "")
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + route)
        elif isinstance(pattern, URLPattern):
            yield prefix + route


def flow_routes() -> list[str]:
    """API routes under flows/ that take at least one id (import takes none)."""
    routes = []
    for route in _walk(get_resolver().url_patterns):
        if route.startswith(API_PREFIX + "flows/") and ("<" in route or "(?P<" in route):
            routes.append(route)
    return sorted(set(routes))


PARAM = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>[^)]*\)")


def fill(route: str, ids: dict) -> str:
    def value(match):
        name = match.group(1) or match.group(2)
        before = route[: match.start()]
        if name in ("number",):
            return str(ids["version"])
        if name in ("pk", "id") and before.endswith("nodes/"):
            return str(ids["node"])
        if name in ("pk", "id") and before.endswith("edges/"):
            return str(ids["edge"])
        if name in ("pk", "id", "flow_id", "flow_pk"):
            return str(ids["flow"])
        if name.endswith("_id") or name == "pk":
            return str(ids["flow"])
        raise AssertionError(f"unknown route parameter {name!r} in {route}")

    return "/" + PARAM.sub(value, route)


@pytest.fixture
def foreign(other_tenant, outsider):
    """A published flow of another tenant with nodes, an edge and a version."""
    flow = services.flow_create(tenant=other_tenant, user=outsider, name="globex flow")
    a = services.node_create(flow=flow, user=outsider, name="a", type="noop")
    b = services.node_create(flow=flow, user=outsider, name="b", type="noop")
    edge = services.edge_create(flow=flow, user=outsider, upstream=a.pk, downstream=b.pk)
    version = services.flow_publish(flow=flow, user=outsider)
    return {"flow": flow.pk, "node": a.pk, "edge": edge.pk, "version": version.number}


def test_routes_are_enumerated():
    routes = flow_routes()
    for expected in (
        "graph/",
        "nodes/",
        "edges/",
        "versions/",
        "history/",
        "publish/",
        "owner/",
        "stakeholders/",
    ):
        assert any(expected in r for r in routes), expected


@pytest.mark.parametrize("route", flow_routes())
def test_other_tenants_ids_answer_404(route, foreign, api, admin_user, tenant, superuser):
    url = fill(route, foreign)
    client = api(
        admin_user, tenant
    )  # an admin of "acme" sees every acme flow; still nothing of globex
    for method in METHODS:
        res = getattr(client, method)(url, {}, format="json")
        assert res.status_code in (404, 405), (
            method,
            url,
            res.status_code,
            getattr(res, "data", None),
        )
        assert "globex" not in res.content.decode()


SUB_DETAIL = re.compile(r"(nodes|edges|versions)/(<|\(\?P)")


@pytest.mark.parametrize("route", [r for r in flow_routes() if SUB_DETAIL.search(r)])
def test_own_flow_with_foreign_sub_ids_answer_404(route, foreign, api, owner, tenant, flow):
    own = services.node_create(flow=flow, user=owner, name="mine", type="noop")
    assert own.pk
    ids = {**foreign, "flow": flow.pk}
    if "versions/" in route:
        ids["version"] = 1  # our flow has no version 1; globex's has
    client = api(owner, tenant)
    url = fill(route, ids)
    for method in METHODS:
        res = getattr(client, method)(url, {}, format="json")
        assert res.status_code in (404, 405), (method, url, res.status_code)
