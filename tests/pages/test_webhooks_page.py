"""The webhooks page: tenant admins manage, auditors read, other roles are refused like the
API; another tenant's subscription stays out of reach (404 through the API the page uses)."""

import pytest

from accounts.models import User
from flows.webhooks import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def hook(tenant, admin_user):
    subscription, _ = services.webhook_create(
        tenant=tenant, user=admin_user, url="https://hooks.example.com/a", events=["run.failed"]
    )
    return subscription


def test_admin_gets_the_page_with_the_manage_button(page, admin_user):
    response = page(admin_user).get("/webhooks/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-testid="webhook-new"' in body
    assert 'data-testid="nav-webhooks"' in body
    assert "run.failed" in body  # the events offered as checkboxes


@pytest.mark.parametrize("who", ["dba_user", "member_user"])
def test_other_roles_are_refused_like_the_api(page, request, who, hook):
    user: User = request.getfixturevalue(who)
    client = page(user)
    assert client.get("/webhooks/").status_code == 403
    assert client.get("/api/v1/webhooks/").status_code == 403
    assert 'data-testid="nav-webhooks"' not in client.get("/secrets/").content.decode()


def test_anonymous_is_sent_to_sign_in(page):
    response = page().get("/webhooks/")
    assert response.status_code == 302 and "login" in response["Location"]


def test_admin_of_another_tenant_cannot_reach_the_subscription(page, outsider, hook):
    client = page(outsider)
    assert client.get("/webhooks/").status_code == 200  # their own (empty) tenant
    assert client.get("/api/v1/webhooks/").json()["results"] == []
    assert client.get(f"/api/v1/webhooks/{hook.pk}/deliveries/").status_code == 404
    assert client.delete(f"/api/v1/webhooks/{hook.pk}/").status_code == 404
