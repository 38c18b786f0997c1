"""Tenant administration: members, roles, deactivation, with the services' rules."""

import pytest

from accounts.models import Membership
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_members_page_is_for_tenant_admins_only(page, admin_user, dba_user, member_user):
    assert page(admin_user).get("/tenant/members/").status_code == 200
    assert page(dba_user).get("/tenant/members/").status_code == 403
    assert page(member_user).get("/tenant/members/").status_code == 403


def test_admin_adds_a_new_member(page, admin_user, tenant):
    response = page(admin_user).post(
        "/tenant/members/",
        {
            "username": "newbie",
            "email": "newbie@example.com",
            "password": "a-long-enough-pass-42",
            "role": "dba",
        },
    )
    assert response.status_code == 302
    membership = Membership.objects.get(tenant=tenant, user__username="newbie")
    assert membership.role == "dba"


def test_new_user_without_password_gets_the_error_next_to_the_field(page, admin_user):
    response = page(admin_user).post("/tenant/members/", {"username": "nopass", "role": "member"})
    assert response.status_code == 400
    body = response.content.decode()
    # The message sits in the password field's wrapper, not only at the top.
    wrapper = body.split('for="id_password"')[1].split("data-field-wrap")[0]
    assert "A password is required for a new user." in wrapper


def test_invalid_username_is_refused_next_to_the_field(page, admin_user):
    response = page(admin_user).post(
        "/tenant/members/", {"username": "bad name!", "password": "x" * 12, "role": "member"}
    )
    assert response.status_code == 400
    assert "Use letters, digits and @ . + - _ only." in response.content.decode()


def test_admin_changes_a_role_and_deactivates(page, admin_user, member_user, tenant):
    membership = Membership.objects.get(user=member_user, tenant=tenant)
    prefix = f"m{membership.pk}"
    response = page(admin_user).post(f"/tenant/members/{membership.pk}/", {f"{prefix}-role": "dba"})
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role == "dba" and membership.is_active is False


def test_last_admin_cannot_demote_themself(page, admin_user, tenant):
    membership = Membership.objects.get(user=admin_user, tenant=tenant)
    prefix = f"m{membership.pk}"
    response = page(admin_user).post(
        f"/tenant/members/{membership.pk}/",
        {f"{prefix}-role": "member", f"{prefix}-is_active": "on"},
    )
    assert response.status_code == 400
    assert "last active admin" in response.content.decode()
    membership.refresh_from_db()
    assert membership.role == "admin"


def test_membership_of_another_tenant_is_404(page, admin_user, other_tenant):
    foreign = MembershipFactory(user=UserFactory(username="zed"), tenant=other_tenant)
    assert (
        page(admin_user)
        .post(f"/tenant/members/{foreign.pk}/", {f"m{foreign.pk}-role": "admin"})
        .status_code
        == 404
    )
    foreign.refresh_from_db()
    assert foreign.role == "member"


def test_non_admin_cannot_forge_a_role_change(page, member_user, other_member, tenant):
    membership = Membership.objects.get(user=other_member, tenant=tenant)
    response = page(member_user).post(
        f"/tenant/members/{membership.pk}/", {f"m{membership.pk}-role": "admin"}
    )
    assert response.status_code == 403
    membership.refresh_from_db()
    assert membership.role == "member"
