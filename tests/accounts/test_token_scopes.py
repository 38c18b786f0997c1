"""Token scopes, enforced in one place (accounts/api/permissions.py) from one table
(accounts/api/scopes.py) that must cover every route of the URLconf.

Each test walks the routes enumerated from the URLconf, so a route added tomorrow is held
to the same rules: it is in the table, its view runs the check, a token without the
route's scope gets 403 naming it, and a token with only that scope gets past the check.
"""

import pytest
from django.db import transaction
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from accounts import services
from accounts.api import scopes
from accounts.api.permissions import ScopedAccess
from accounts.choices import ALL_SCOPES
from tests.hardening import routes, world

pytestmark = pytest.mark.django_db


def _route_methods():
    return [(route, method) for route in routes.api_routes() for method in route.methods]


def test_every_api_route_and_method_is_in_the_scope_table():
    missing = [
        f"{method.upper()} {route.template} (name {route.name!r})"
        for route, method in _route_methods()
        if scopes.need_for(route.name, method) is None
    ]
    assert not missing, (
        "place these routes in ROUTES (accounts/api/scopes.py) with the scope they need:\n"
        + "\n".join(missing)
    )
    names = {route.name for route in routes.api_routes()}
    stale = sorted(set(scopes.ROUTES) - names)
    assert not stale, f"routes in the scope table that no longer exist: {stale}"


def test_every_api_view_runs_the_scope_check():
    unchecked = []
    for route in routes.api_routes():
        cls = route.callback.cls
        if cls.authentication_classes == []:
            continue  # nobody is authenticated there (sign-in), so no token either
        if not any(issubclass(p, ScopedAccess) for p in cls.permission_classes):
            unchecked.append(f"{route.template}: {cls.__name__}.permission_classes")
    assert not unchecked, "add ScopedAccess (or IsTenantMember):\n" + "\n".join(unchecked)


@pytest.fixture
def victim():
    return world.build_victim()


def _client(victim, scopes_):
    _token, key = services.token_issue(
        user=victim.users["owner"], actor=victim.users["owner"], name="t", scopes=scopes_
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}", HTTP_X_TENANT=victim.tenant.slug)
    return client


def _send(client, method, url):
    with transaction.atomic():
        if method == "get":
            res = client.get(url, HTTP_ACCEPT="application/json")
        else:
            res = getattr(client, method)(url, {}, format="json")
        transaction.set_rollback(True)
    return res


def _scope_refusal(res) -> str | None:
    if res.status_code != 403:
        return None
    body = res.json() if res["Content-Type"].startswith("application/json") else {}
    return body.get("required_scope")


def test_a_token_without_the_routes_scope_gets_403_naming_it(victim):
    clients = {s: _client(victim, [o for o in ALL_SCOPES if o != s]) for s in ALL_SCOPES}
    wrong, checked = [], 0
    for route, method in _route_methods():
        need = scopes.need_for(route.name, method)
        if need is None or need.scope is None:
            continue
        res = _send(clients[need.scope], method, routes.fill(route, victim.ids))
        checked += 1
        if _scope_refusal(res) != need.scope or need.scope not in res.json()["detail"]:
            wrong.append(
                f"{method.upper()} {route.template}: {res.status_code} {res.content[:150]}"
            )
    assert checked >= 50
    assert not wrong, "\n".join(wrong)


def test_a_token_with_only_the_routes_scope_gets_past_the_scope_check(victim):
    clients = {s: _client(victim, [s]) for s in ALL_SCOPES}
    anyone = clients["runs:read"]
    wrong = []
    for route, method in _route_methods():
        need = scopes.need_for(route.name, method)
        client = clients[need.scope] if need.scope else anyone
        res = _send(client, method, routes.fill(route, victim.ids))
        if res.status_code == 401 and need is not scopes.PUBLIC or _scope_refusal(res):
            wrong.append(
                f"{method.upper()} {route.template}: {res.status_code} {res.content[:150]}"
            )
    assert not wrong, "\n".join(wrong)


class _Unlisted(APIView):
    permission_classes = [ScopedAccess]

    def get(self, request):
        return Response({"ok": True})


def test_a_route_missing_from_the_table_refuses_tokens(victim):
    """Fail closed: a view nobody placed in the table takes no token (sessions still work)."""
    token, _key = services.token_issue(
        user=victim.users["owner"], actor=victim.users["owner"], name="t", scopes=ALL_SCOPES
    )
    request = APIRequestFactory().get("/not-routed/")
    force_authenticate(request, user=victim.users["owner"], token=token)
    res = _Unlisted.as_view()(request)
    assert res.status_code == 403
    request = APIRequestFactory().get("/not-routed/")
    force_authenticate(request, user=victim.users["owner"])
    assert _Unlisted.as_view()(request).status_code == 200
