"""Tenant administration through the API: roles, isolation, last-admin guard, history."""

import pytest
from rest_framework.test import APIClient

from accounts.choices import Role
from accounts.models import Membership, User
from tests.factories import MembershipFactory
from tests.factories.accounts import PASSWORD

pytestmark = pytest.mark.django_db


def test_token_then_me_shows_tenant_and_role(admin_user, tenant):
    client = APIClient()
    res = client.post(
        "/api/v1/auth/token/",
        {"username": admin_user.username, "password": PASSWORD},
        format="json",
    )
    assert res.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {res.json()['token']}")
    me = client.get("/api/v1/me/").json()
    assert me["username"] == admin_user.username
    assert me["tenant"] == {"slug": "acme", "name": "Acme"}
    assert me["role"] == "admin"
    assert me["memberships"] == [{"tenant": "acme", "role": "admin"}]


def test_wrong_password_gets_400_not_token(admin_user):
    res = APIClient().post(
        "/api/v1/auth/token/", {"username": admin_user.username, "password": "nope"}, format="json"
    )
    assert res.status_code == 400
    assert "token" not in res.json()


def test_anonymous_gets_401(db):
    assert APIClient().get("/api/v1/members/").status_code == 401


def test_admin_adds_member_creating_user(api, admin_user, tenant):
    res = api(admin_user).post(
        "/api/v1/members/",
        {
            "username": "newbie",
            "email": "n@example.com",
            "password": "a-Strong-passw0rd",
            "role": "dba",
        },
    )
    assert res.status_code == 201, res.json()
    assert res.json()["role"] == "dba"
    user = User.objects.get(username="newbie")
    assert user.check_password("a-Strong-passw0rd")
    assert not user.is_superuser
    assert Membership.objects.get(user=user, tenant=tenant).role == Role.DBA


@pytest.mark.parametrize("fixture", ["dba_user", "member_user"])
def test_non_admin_cannot_add_or_change_members(api, request, fixture, admin_user):
    user = request.getfixturevalue(fixture)
    client = api(user)
    res = client.post("/api/v1/members/", {"username": "x", "password": "a-Strong-passw0rd"})
    assert res.status_code == 403
    membership = Membership.objects.get(user=admin_user)
    assert client.patch(f"/api/v1/members/{membership.id}/", {"role": "member"}).status_code == 403
    assert Membership.objects.get(user=admin_user).role == Role.ADMIN


def test_every_member_can_list_members(api, member_user, admin_user):
    res = api(member_user).get("/api/v1/members/")
    assert res.status_code == 200
    assert {m["username"] for m in res.json()["results"]} == {
        member_user.username,
        admin_user.username,
    }


def test_bad_input_names_the_field(api, admin_user):
    client = api(admin_user)
    res = client.post("/api/v1/members/", {"username": "weak", "password": "123"})
    assert res.status_code == 400 and "password" in res.json()
    res = client.post(
        "/api/v1/members/", {"username": "r", "password": "a-Strong-passw0rd", "role": "boss"}
    )
    assert res.status_code == 400 and "role" in res.json()
    res = client.post("/api/v1/members/", {"username": admin_user.username, "role": "member"})
    assert res.status_code == 400 and "username" in res.json()
    res = client.post("/api/v1/members/", "{not json", content_type="application/json")
    assert res.status_code == 400


def test_last_admin_cannot_be_demoted_or_deactivated(api, admin_user, tenant):
    membership = Membership.objects.get(user=admin_user, tenant=tenant)
    client = api(admin_user)
    res = client.patch(f"/api/v1/members/{membership.id}/", {"role": "member"})
    assert res.status_code == 400 and "last active admin" in res.json()["role"][0]
    res = client.patch(f"/api/v1/members/{membership.id}/", {"is_active": False})
    assert res.status_code == 400 and "is_active" in res.json()
    assert Membership.objects.get(pk=membership.pk).role == Role.ADMIN


def test_admin_can_demote_when_another_admin_exists(api, admin_user, tenant, member_user):
    other = Membership.objects.get(user=member_user, tenant=tenant)
    client = api(admin_user)
    assert client.patch(f"/api/v1/members/{other.id}/", {"role": "admin"}).status_code == 200
    mine = Membership.objects.get(user=admin_user, tenant=tenant)
    assert client.patch(f"/api/v1/members/{mine.id}/", {"role": "member"}).status_code == 200
    other.refresh_from_db()
    mine.refresh_from_db()
    assert (other.role, mine.role) == (Role.ADMIN, Role.MEMBER)


def test_role_change_writes_history_with_acting_user(api, admin_user, member_user, tenant):
    membership = Membership.objects.get(user=member_user, tenant=tenant)
    api(admin_user).patch(f"/api/v1/members/{membership.id}/", {"role": "dba"})
    latest = membership.history.first()
    assert latest.role == "dba"
    assert latest.history_user == admin_user
    assert latest.prev_record.role == "member"


def test_deactivated_member_loses_access_at_once(api, admin_user, member_user, tenant):
    membership = Membership.objects.get(user=member_user, tenant=tenant)
    client = api(member_user)
    assert client.get("/api/v1/members/").status_code == 200
    api(admin_user).patch(f"/api/v1/members/{membership.id}/", {"is_active": False})
    assert client.get("/api/v1/members/").status_code == 403


def test_deactivated_tenant_loses_access(api, member_user, tenant):
    tenant.is_active = False
    tenant.save()
    assert api(member_user).get("/api/v1/members/").status_code == 403


def test_other_tenants_members_are_invisible(api, admin_user, outsider, other_tenant):
    foreign = Membership.objects.get(user=outsider)
    client = api(admin_user)
    assert foreign.id not in [m["id"] for m in client.get("/api/v1/members/").json()["results"]]
    assert client.get(f"/api/v1/members/{foreign.id}/").status_code == 404
    assert client.patch(f"/api/v1/members/{foreign.id}/", {"role": "member"}).status_code == 404
    assert Membership.objects.get(pk=foreign.pk).role == Role.ADMIN


def test_x_tenant_of_foreign_or_unknown_tenant_is_403(api, admin_user, other_tenant):
    client = api(admin_user)
    client.credentials(HTTP_X_TENANT=other_tenant.slug)
    assert client.get("/api/v1/members/").status_code == 403
    client.credentials(HTTP_X_TENANT="no-such-tenant")
    assert client.get("/api/v1/members/").status_code == 403


def test_user_in_two_tenants_picks_with_header(api, admin_user, tenant, other_tenant):
    MembershipFactory(user=admin_user, tenant=other_tenant, role=Role.MEMBER)
    client = api(admin_user)
    assert client.get("/api/v1/members/").status_code == 403  # ambiguous without a default
    client.credentials(HTTP_X_TENANT=other_tenant.slug)
    assert client.get("/api/v1/me/").json()["role"] == "member"


def test_tenants_endpoint_is_superuser_only(api, admin_user, superuser):
    assert api(admin_user).get("/api/v1/tenants/").status_code == 403
    assert api(admin_user).post("/api/v1/tenants/", {"name": "X", "slug": "x"}).status_code == 403
    client = api(superuser)
    res = client.post("/api/v1/tenants/", {"name": "Initech", "slug": "initech"})
    assert res.status_code == 201
    dup = client.post("/api/v1/tenants/", {"name": "Again", "slug": "initech"})
    assert dup.status_code == 400 and "slug" in dup.json()


def test_superuser_adds_first_admin_of_new_tenant(api, superuser):
    client = api(superuser)
    client.post("/api/v1/tenants/", {"name": "Initech", "slug": "initech"})
    client.credentials(HTTP_X_TENANT="initech")
    res = client.post(
        "/api/v1/members/", {"username": "boss", "password": "a-Strong-passw0rd", "role": "admin"}
    )
    assert res.status_code == 201
    assert Membership.objects.get(user__username="boss").tenant.slug == "initech"


def test_deeply_nested_json_is_400_not_500(api, admin_user):
    body = "[" * 100000 + "]" * 100000
    res = api(admin_user).post("/api/v1/members/", body, content_type="application/json")
    assert res.status_code == 400
    assert "nested" in res.json()["detail"]
