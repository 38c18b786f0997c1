"""The service accounts page: the API's rights (tenant admins manage, others refused); an
account of another tenant stays out of reach (404 through the API the page uses)."""

import pytest

from accounts.services.service_accounts import service_account_create

pytestmark = pytest.mark.django_db


def test_admin_gets_the_page_with_the_manage_buttons(page, admin_user):
    response = page(admin_user).get("/tenant/service-accounts/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-testid="sa-new"' in body and 'data-testid="nav-service-accounts"' in body


@pytest.mark.parametrize("who", ["dba_user", "member_user"])
def test_other_roles_are_refused_like_the_api(page, request, who):
    client = page(request.getfixturevalue(who))
    assert client.get("/tenant/service-accounts/").status_code == 403
    assert client.get("/api/v1/service-accounts/").status_code == 403
    assert 'data-testid="nav-service-accounts"' not in client.get("/secrets/").content.decode()


def test_account_of_another_tenant_is_404(page, outsider, tenant, admin_user):
    account = service_account_create(tenant=tenant, actor=admin_user, name="etl-bot")
    client = page(outsider)
    assert client.get("/tenant/service-accounts/").status_code == 200
    assert client.get("/api/v1/service-accounts/").json()["results"] == []
    assert client.get(f"/api/v1/service-accounts/{account.pk}/tokens/").status_code == 404
