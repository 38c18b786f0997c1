"""Service accounts and their scoped, expiring tokens (issue 16 section 4).

A tenant admin creates a service account (name, role), which cannot sign in, and issues
it tokens (name, scopes, expires_at) shown once; a request succeeds only when both the
token's scopes and the account's role allow it; changes it makes are audited under its name.
"""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.choices import Role
from accounts.models import ApiToken, Membership, ServiceAccount
from flows.models import TaskFlow

pytestmark = pytest.mark.django_db


def with_token(key: str, tenant) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}", HTTP_X_TENANT=tenant.slug)
    return client


def create_account(api, admin_user, name="deployer", role="member") -> dict:
    res = api(admin_user).post("/api/v1/service-accounts/", {"name": name, "role": role})
    assert res.status_code == 201, res.content
    return res.json()


def issue(api, admin_user, account_id, scopes, **extra) -> dict:
    res = api(admin_user).post(
        f"/api/v1/service-accounts/{account_id}/tokens/",
        {"name": "ci", "scopes": scopes, **extra},
    )
    assert res.status_code == 201, res.content
    return res.json()


def test_tenant_admin_creates_a_service_account_with_a_role(
    api, admin_user, dba_user, member_user, tenant
):
    body = create_account(api, admin_user, role="dba")
    assert body["role"] == "dba" and body["is_active"] and body["username"] == "deployer@acme.svc"
    account = ServiceAccount.objects.get(pk=body["id"])
    assert Membership.objects.get(user=account.user, tenant=tenant).role == Role.DBA
    assert not account.user.has_usable_password()
    for user in (dba_user, member_user):
        res = api(user).post("/api/v1/service-accounts/", {"name": "sneaky", "role": "admin"})
        assert res.status_code == 403
        assert api(user).get("/api/v1/service-accounts/").status_code == 403
    res = api(admin_user).post("/api/v1/service-accounts/", {"name": "deployer"})
    assert res.status_code == 400 and "name" in res.json()
    res = api(admin_user).post("/api/v1/service-accounts/", {"name": "Bad Name!"})
    assert res.status_code == 400 and "name" in res.json()


def test_a_service_account_cannot_sign_in(api, admin_user):
    account = ServiceAccount.objects.get(pk=create_account(api, admin_user)["id"])
    # Even with a password set behind the platform's back.
    account.user.set_password("Known-password-123")
    account.user.save()
    res = APIClient().post(
        "/api/v1/auth/token/",
        {"username": account.user.username, "password": "Known-password-123"},
    )
    assert res.status_code == 400
    page = Client()
    res = page.post(
        "/accounts/login/",
        {"username": account.user.username, "password": "Known-password-123"},
    )
    assert res.status_code == 200 and "_auth_user_id" not in page.session
    res = page.post(
        "/admin/login/", {"username": account.user.username, "password": "Known-password-123"}
    )
    assert "_auth_user_id" not in page.session


def test_token_is_shown_once_listed_with_last_use_and_revoked(api, admin_user, tenant):
    account = create_account(api, admin_user)
    expires = timezone.now() + timedelta(days=7)
    created = issue(api, admin_user, account["id"], ["flows:read"], expires_at=expires.isoformat())
    key = created["token"]
    assert created["expires_at"].startswith(expires.strftime("%Y-%m-%dT%H:%M"))
    listed = api(admin_user).get(f"/api/v1/service-accounts/{account['id']}/tokens/").json()
    assert key not in str(listed) and listed["results"][0]["last_used_at"] is None
    assert with_token(key, tenant).get("/api/v1/flows/").status_code == 200
    detail = api(admin_user).get(
        f"/api/v1/service-accounts/{account['id']}/tokens/{created['id']}/"
    )
    assert detail.json()["last_used_at"] is not None and key not in detail.content.decode()
    res = api(admin_user).delete(
        f"/api/v1/service-accounts/{account['id']}/tokens/{created['id']}/"
    )
    assert res.status_code == 204
    assert with_token(key, tenant).get("/api/v1/flows/").status_code == 401


def test_scope_and_role_must_both_allow_the_request(api, admin_user, tenant):
    member_bot = create_account(api, admin_user, name="member-bot", role="member")
    reader = issue(api, admin_user, member_bot["id"], ["flows:read"])["token"]
    writer = issue(api, admin_user, member_bot["id"], ["flows:read", "flows:write", "admin"])[
        "token"
    ]

    # The scope is missing: 403 naming it, nothing created.
    res = with_token(reader, tenant).post("/api/v1/flows/", {"name": "from-bot"})
    assert res.status_code == 403
    assert res.json()["required_scope"] == "flows:write"
    assert "flows:write" in res.json()["detail"]
    assert not TaskFlow.objects.filter(name="from-bot").exists()

    # Scope and role allow it.
    res = with_token(writer, tenant).post("/api/v1/flows/", {"name": "from-bot"})
    assert res.status_code == 201, res.content

    # The scope is there but the role (member) is not an admin's.
    res = with_token(writer, tenant).post(
        "/api/v1/members/", {"username": "x", "password": "a-Strong-passw0rd"}
    )
    assert res.status_code == 403
    res = with_token(writer, tenant).post("/api/v1/service-accounts/", {"name": "child"})
    assert res.status_code == 403


def test_changes_made_by_a_service_account_are_audited_under_its_name(api, admin_user, tenant):
    bot = create_account(api, admin_user, name="loader", role="member")
    key = issue(api, admin_user, bot["id"], ["flows:read", "flows:write"])["token"]
    client = with_token(key, tenant)
    flow = client.post("/api/v1/flows/", {"name": "bot flow"}).json()
    res = client.patch(f"/api/v1/flows/{flow['id']}/", {"description": "changed by the bot"})
    assert res.status_code == 200
    history = client.get(f"/api/v1/flows/{flow['id']}/history/").json()["results"]
    assert history and {e["username"] for e in history} == {"loader@acme.svc"}
    audit = api(admin_user).get("/api/v1/audit/", {"user": bot["user"]}).json()["results"]
    assert audit and all(e["username"] == "loader@acme.svc" for e in audit)


def test_deactivating_a_service_account_revokes_its_tokens(api, admin_user, tenant):
    bot = create_account(api, admin_user)
    key = issue(api, admin_user, bot["id"], ["flows:read"])["token"]
    res = api(admin_user).patch(f"/api/v1/service-accounts/{bot['id']}/", {"is_active": False})
    assert res.status_code == 200 and res.json()["is_active"] is False
    assert with_token(key, tenant).get("/api/v1/flows/").status_code == 401
    assert ApiToken.objects.get(user_id=bot["user"]).revoked_reason == "service account deactivated"
    res = api(admin_user).post(
        f"/api/v1/service-accounts/{bot['id']}/tokens/", {"name": "x", "scopes": ["flows:read"]}
    )
    assert res.status_code == 403
    # Reactivated, it needs a new token: the old one stays revoked.
    api(admin_user).patch(f"/api/v1/service-accounts/{bot['id']}/", {"is_active": True})
    assert with_token(key, tenant).get("/api/v1/flows/").status_code == 401


def test_a_service_account_never_counts_as_the_last_admin(api, admin_user, tenant):
    create_account(api, admin_user, name="admin-bot", role="admin")
    mine = Membership.objects.get(user=admin_user, tenant=tenant)
    res = api(admin_user).patch(f"/api/v1/members/{mine.pk}/", {"role": "member"})
    assert res.status_code == 400 and "last active admin" in res.json()["role"][0]


def test_service_accounts_of_another_tenant_are_404(api, admin_user, outsider):
    bot = create_account(api, admin_user)
    token = issue(api, admin_user, bot["id"], ["flows:read"])
    other = api(outsider)
    assert other.get(f"/api/v1/service-accounts/{bot['id']}/").status_code == 404
    assert other.get(f"/api/v1/service-accounts/{bot['id']}/tokens/").status_code == 404
    res = other.delete(f"/api/v1/service-accounts/{bot['id']}/tokens/{token['id']}/")
    assert res.status_code == 404
    assert (
        other.post(
            f"/api/v1/service-accounts/{bot['id']}/tokens/", {"name": "x", "scopes": ["admin"]}
        ).status_code
        == 404
    )


def test_an_integration_starts_a_parameterised_run_with_its_token_once(api, admin_user, tenant):
    # Given a service account (a DBA, so it may run every flow) with a runs:write token
    bot = create_account(api, admin_user, name="trigger", role="dba")
    key = issue(api, admin_user, bot["id"], ["flows:read", "runs:read", "runs:write"])["token"]
    flow = (
        api(admin_user)
        .post(
            "/api/v1/flows/",
            {
                "name": "triggered",
                "parameters": [{"name": "day", "type": "date", "required": True}],
            },
            format="json",
        )
        .json()
    )
    api(admin_user).post(
        f"/api/v1/flows/{flow['id']}/nodes/",
        {"name": "n", "type": "noop", "config": {}},
        format="json",
    )
    client = with_token(key, tenant)
    body = {"mode": "try", "parameters": {"day": "2024-05-01"}}

    first = client.post(
        f"/api/v1/flows/{flow['id']}/runs/", body, format="json", HTTP_IDEMPOTENCY_KEY="job-1"
    )
    again = client.post(
        f"/api/v1/flows/{flow['id']}/runs/", body, format="json", HTTP_IDEMPOTENCY_KEY="job-1"
    )

    assert first.status_code == 201, first.content
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert first.json()["triggered_by_name"] == "trigger@acme.svc"
    assert first.json()["parameters"] == {"day": "2024-05-01"}


def test_a_service_account_token_past_its_expiry_is_refused(api, admin_user, tenant):
    bot = create_account(api, admin_user, name="expiring")
    key = issue(api, admin_user, bot["id"], ["flows:read"])["token"]
    assert with_token(key, tenant).get("/api/v1/flows/").status_code == 200

    ApiToken.objects.filter(user_id=bot["user"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    res = with_token(key, tenant).get("/api/v1/flows/")
    assert res.status_code == 401 and "expired" in res.json()["detail"]


def test_webhooks_need_the_admin_scope(api, admin_user, tenant):
    bot = create_account(api, admin_user, name="hooker", role="admin")
    weak = issue(api, admin_user, bot["id"], ["flows:read", "runs:read"])["token"]
    strong = issue(api, admin_user, bot["id"], ["admin"])["token"]
    body = {"url": "https://hooks.example.com/x", "events": ["run.failed"]}

    refused = with_token(weak, tenant).post("/api/v1/webhooks/", body, format="json")
    created = with_token(strong, tenant).post("/api/v1/webhooks/", body, format="json")

    assert refused.status_code == 403 and refused.json()["required_scope"] == "admin"
    assert created.status_code == 201, created.content
    audit = api(admin_user).get("/api/v1/audit/", {"user": bot["user"]}).json()["results"]
    assert audit and all(e["username"] == "hooker@acme.svc" for e in audit)
