"""Sign-in hardening: lockout after repeated failures, throttled token endpoint, headers."""

import pytest
from rest_framework.test import APIClient

from tests.factories.accounts import PASSWORD

pytestmark = pytest.mark.django_db


def test_login_page_locks_out_after_repeated_failures(client, member_user):
    codes = [
        client.post(
            "/accounts/login/", {"username": member_user.username, "password": "wrong"}
        ).status_code
        for _ in range(5)
    ]
    assert codes == [200, 200, 200, 200, 429]  # the form is redisplayed until the limit
    res = client.post("/accounts/login/", {"username": member_user.username, "password": PASSWORD})
    assert res.status_code == 429  # locked: even the right password is refused for a while
    assert "_auth_user_id" not in client.session


def test_token_endpoint_locks_out_after_repeated_failures(member_user):
    client = APIClient()
    for _ in range(5):
        client.post(
            "/api/v1/auth/token/",
            {"username": member_user.username, "password": "x"},
            format="json",
        )
    res = client.post(
        "/api/v1/auth/token/",
        {"username": member_user.username, "password": PASSWORD},
        format="json",
    )
    assert res.status_code == 429
    assert "token" not in res.content.decode()


def test_token_endpoint_is_rate_limited(member_user, monkeypatch):
    from django.core.cache import cache
    from rest_framework.throttling import ScopedRateThrottle

    cache.clear()
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"token": "3/min"})
    client = APIClient()
    codes = [
        client.post(
            "/api/v1/auth/token/", {"username": f"nobody{i}", "password": "x"}, format="json"
        ).status_code
        for i in range(5)
    ]
    assert codes[:3] == [400, 400, 400]
    assert codes[3:] == [429, 429]


def test_pages_carry_security_headers(client):
    res = client.get("/accounts/login/")
    csp = res.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert res.headers["X-Content-Type-Options"] == "nosniff"
    assert res.headers["X-Frame-Options"] == "DENY"


def test_session_writes_need_csrf(member_user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(member_user)
    res = client.post("/tenant/switch/", {"tenant": "acme"})
    assert res.status_code == 403
    api = APIClient(enforce_csrf_checks=True)
    api.force_login(member_user)
    assert api.post("/api/v1/members/", {"username": "z"}, format="json").status_code == 403
