"""The Django admin: a staff tenant admin sees and edits only their own tenant's rows."""

import pytest

from accounts.choices import Role
from accounts.models import Membership

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_admin(admin_user):
    admin_user.is_staff = True
    admin_user.save()
    return admin_user


def test_staff_tenant_admin_sees_only_own_memberships(client, staff_admin, outsider, member_user):
    client.force_login(staff_admin)
    res = client.get("/admin/accounts/membership/")
    assert res.status_code == 200
    body = res.content.decode()
    assert member_user.username in body
    assert outsider.username not in body
    foreign = Membership.objects.get(user=outsider)
    assert client.get(f"/admin/accounts/membership/{foreign.id}/change/").status_code in (
        302,
        403,
        404,
    )


def test_staff_tenant_admin_tenant_choices_are_own(client, staff_admin, other_tenant, tenant):
    client.force_login(staff_admin)
    res = client.get("/admin/flows/datasource/add/")
    assert res.status_code == 200
    choices = res.context["adminform"].form.fields["tenant"].queryset
    assert list(choices) == [tenant]
    assert other_tenant not in choices


def test_staff_tenant_admin_cannot_create_membership_in_other_tenant(
    client, staff_admin, other_tenant, member_user
):
    """Adding an existing user to a tenant is the operator's: the add form is not theirs at all."""
    client.force_login(staff_admin)
    res = client.post(
        "/admin/accounts/membership/add/",
        {"user": member_user.id, "tenant": other_tenant.id, "role": Role.ADMIN, "is_active": "on"},
    )
    assert res.status_code == 403
    assert not Membership.objects.filter(tenant=other_tenant, user=member_user).exists()


def test_staff_tenant_admin_cannot_make_a_superuser(client, staff_admin, member_user):
    client.force_login(staff_admin)
    res = client.get(f"/admin/accounts/user/{member_user.id}/change/")
    assert res.status_code == 200
    assert "is_superuser" not in res.content.decode()


def test_admin_form_refuses_demoting_last_admin(client, staff_admin, tenant):
    client.force_login(staff_admin)
    mine = Membership.objects.get(user=staff_admin, tenant=tenant)
    res = client.post(
        f"/admin/accounts/membership/{mine.id}/change/",
        {"user": staff_admin.id, "tenant": tenant.id, "role": Role.MEMBER, "is_active": "on"},
    )
    assert res.status_code == 200
    assert "last active admin" in res.content.decode()
    assert Membership.objects.get(pk=mine.pk).role == Role.ADMIN


def test_superuser_sees_everything(client, superuser, outsider, member_user):
    client.force_login(superuser)
    body = client.get("/admin/accounts/membership/").content.decode()
    assert outsider.username in body and member_user.username in body


def test_member_who_is_staff_but_not_admin_sees_nothing(client, member_user):
    member_user.is_staff = True
    member_user.save()
    client.force_login(member_user)
    assert client.get("/admin/accounts/membership/").status_code == 403
