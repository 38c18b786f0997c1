"""API tokens (issue 13 item 10, issue 16 section 4): hashed, expiring, listed, revoked.

`POST /api/v1/auth/token/` still answers `{"token"}`, now with `expires_at` after the
lifetime set in settings; only a digest is stored; a password change (API or console) or
a deactivation revokes the user's tokens; `/api/v1/me/tokens/` lists, issues and revokes.
"""

import hashlib
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from accounts.models import ApiToken
from tests.factories import MembershipFactory, UserFactory
from tests.factories.accounts import PASSWORD

pytestmark = pytest.mark.django_db


def sign_in(user, password=PASSWORD) -> str:
    res = APIClient().post("/api/v1/auth/token/", {"username": user.username, "password": password})
    assert res.status_code == 200, res.content
    return res.json()["token"]


def with_token(key: str, tenant=None) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    if tenant is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}", HTTP_X_TENANT=tenant.slug)
    return client


def test_sign_in_token_expires_after_the_configured_lifetime(settings, member_user):
    settings.API_TOKEN_LIFETIME = timedelta(days=2)
    before = timezone.now()
    res = APIClient().post(
        "/api/v1/auth/token/", {"username": member_user.username, "password": PASSWORD}
    )
    body = res.json()
    expires = parse_datetime(body["expires_at"])
    assert before + timedelta(days=2) <= expires <= timezone.now() + timedelta(days=2)
    assert with_token(body["token"]).get("/api/v1/me/").status_code == 200


def test_a_token_past_its_expiry_is_refused(member_user):
    key = sign_in(member_user)
    ApiToken.objects.filter(user=member_user).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    res = with_token(key).get("/api/v1/me/")
    assert res.status_code == 401
    assert "expired" in res.json()["detail"]


def test_only_a_digest_of_the_token_is_stored(member_user):
    key = sign_in(member_user)
    row = ApiToken.objects.get(user=member_user)
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    stored = " ".join(str(v) for v in ApiToken.objects.filter(pk=row.pk).values().first().values())
    assert key not in stored
    assert key.startswith(row.prefix)


def test_password_change_through_the_api_revokes_every_token(member_user):
    first, second = sign_in(member_user), sign_in(member_user)
    client = with_token(first)
    res = client.post(
        "/api/v1/me/password/", {"old_password": "wrong", "new_password": "N3w-long-password"}
    )
    assert res.status_code == 400 and "old_password" in res.json()
    res = client.post("/api/v1/me/password/", {"old_password": PASSWORD, "new_password": "123"})
    assert res.status_code == 400 and "new_password" in res.json()
    assert with_token(second).get("/api/v1/me/").status_code == 200  # nothing changed yet

    res = client.post(
        "/api/v1/me/password/", {"old_password": PASSWORD, "new_password": "N3w-long-password"}
    )
    assert res.status_code == 200, res.content
    assert res.json()["tokens_revoked"] == 2
    for key in (first, second):
        assert with_token(key).get("/api/v1/me/").status_code == 401
    member_user.refresh_from_db()
    assert member_user.check_password("N3w-long-password")
    assert sign_in(member_user, "N3w-long-password")


def test_password_change_on_the_console_page_revokes_tokens_and_keeps_the_session(
    member_user, admin_user
):
    key = sign_in(member_user)
    page = Client()
    page.force_login(member_user)
    assert page.get("/account/password/").status_code == 200
    res = page.post("/account/password/", {"old_password": "nope", "new_password": "x"})
    assert res.status_code == 400
    assert "Your current password is not correct." in res.content.decode()
    res = page.post(
        "/account/password/", {"old_password": PASSWORD, "new_password": "Console-pass-2024"}
    )
    assert res.status_code == 302
    assert with_token(key).get("/api/v1/me/").status_code == 401
    assert page.get("/account/password/").status_code == 200  # still signed in
    # The Django admin's own "change password" link leads to the same page.
    page.force_login(admin_user)
    assert page.get("/admin/password_change/")["Location"].endswith("/account/password/")


def test_operator_deactivating_an_account_revokes_its_tokens(superuser, member_user):
    key = sign_in(member_user)
    admin = Client()
    admin.force_login(superuser)
    page = admin.get(f"/admin/accounts/user/{member_user.pk}/change/")
    form = page.context["adminform"].form
    data = {
        "username": member_user.username,
        "email": member_user.email,
        "date_joined_0": form["date_joined"].value().strftime("%Y-%m-%d"),
        "date_joined_1": form["date_joined"].value().strftime("%H:%M:%S"),
    }  # is_active left unticked
    res = admin.post(f"/admin/accounts/user/{member_user.pk}/change/", data)
    assert res.status_code == 302, res.content[:3000]
    row = ApiToken.objects.get(user=member_user)
    assert row.revoked_at is not None and row.revoked_reason == "account deactivated"
    member_user.is_active = True
    member_user.save()
    assert with_token(key).get("/api/v1/me/").status_code == 401  # revoked, not just refused


def test_operator_setting_a_password_revokes_tokens(superuser, member_user):
    key = sign_in(member_user)
    admin = Client()
    admin.force_login(superuser)
    res = admin.post(
        f"/admin/accounts/user/{member_user.pk}/password/",
        {"password1": "Operator-set-456", "password2": "Operator-set-456"},
    )
    assert res.status_code == 302
    assert with_token(key).get("/api/v1/me/").status_code == 401


def test_my_tokens_list_issue_and_revoke(member_user, other_member):
    client = APIClient()
    client.force_authenticate(member_user)
    res = client.post(
        "/api/v1/me/tokens/",
        {"name": "ci", "scopes": ["flows:read", "runs:read"]},
    )
    assert res.status_code == 201, res.content
    created = res.json()
    key = created["token"]
    assert created["scopes"] == ["flows:read", "runs:read"] and created["state"] == "active"

    # Listed, never with the secret; its last use shows once it has been used.
    listed = client.get("/api/v1/me/tokens/").json()["results"]
    assert [t["name"] for t in listed] == ["ci"]
    assert key not in str(listed) and "token" not in listed[0]
    assert listed[0]["last_used_at"] is None
    assert with_token(key).get("/api/v1/me/").status_code == 200
    detail = client.get(f"/api/v1/me/tokens/{created['id']}/").json()
    assert detail["last_used_at"] is not None and "token" not in detail

    # Someone else's token is not there (404), and cannot be revoked.
    others = APIClient()
    others.force_authenticate(other_member)
    assert others.get(f"/api/v1/me/tokens/{created['id']}/").status_code == 404
    assert others.delete(f"/api/v1/me/tokens/{created['id']}/").status_code == 404

    assert client.delete(f"/api/v1/me/tokens/{created['id']}/").status_code == 204
    assert with_token(key).get("/api/v1/me/").status_code == 401
    assert client.get(f"/api/v1/me/tokens/{created['id']}/").json()["state"] == "revoked"


def test_token_requests_that_make_no_sense_are_400_naming_the_field(settings, member_user):
    client = APIClient()
    client.force_authenticate(member_user)
    past = (timezone.now() - timedelta(hours=1)).isoformat()
    too_far = (timezone.now() + settings.API_TOKEN_MAX_LIFETIME + timedelta(days=1)).isoformat()
    for body, field in (
        ({"name": "x", "scopes": ["flows:fly"]}, "scopes"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "", "scopes": ["admin"]}, "name"),
        ({"name": "x", "scopes": ["admin"], "expires_at": past}, "expires_at"),
        ({"name": "x", "scopes": ["admin"], "expires_at": too_far}, "expires_at"),
    ):
        res = client.post("/api/v1/me/tokens/", body)
        assert res.status_code == 400 and field in res.json(), (body, res.content)
    assert not ApiToken.objects.filter(user=member_user).exists()


def test_a_token_cannot_issue_a_stronger_or_longer_lived_token(member_user):
    client = APIClient()
    client.force_authenticate(member_user)
    soon = timezone.now() + timedelta(days=1)
    res = client.post(
        "/api/v1/me/tokens/",
        {"name": "narrow", "scopes": ["flows:read"], "expires_at": soon.isoformat()},
    )
    narrow = with_token(res.json()["token"])
    res = narrow.post("/api/v1/me/tokens/", {"name": "wider", "scopes": ["flows:write"]})
    assert res.status_code == 400 and "flows:write" in res.json()["scopes"][0]
    res = narrow.post("/api/v1/me/tokens/", {"name": "child", "scopes": ["flows:read"]})
    assert res.status_code == 201
    assert parse_datetime(res.json()["expires_at"]) <= soon


def test_tokens_work_in_each_tenant_of_their_user_only(member_user, tenant, other_tenant):
    key = sign_in(member_user)
    assert with_token(key, tenant).get("/api/v1/flows/").status_code == 200
    assert with_token(key, other_tenant).get("/api/v1/flows/").status_code == 403
    MembershipFactory(user=member_user, tenant=other_tenant)
    assert with_token(key, other_tenant).get("/api/v1/flows/").status_code == 200


def test_an_unknown_token_is_401(db):
    assert with_token("trb_not-a-token").get("/api/v1/me/").status_code == 401
    user = UserFactory(username="no-token-yet")
    assert not ApiToken.objects.filter(user=user).exists()
