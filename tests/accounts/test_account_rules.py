"""Issue 13 items 1, 2 and 4: a tenant admin manages memberships, never other people's accounts.

Through the API, the console and the Django admin: adding an existing account to a tenant
is the platform superuser's act; a tenant admin changes roles and the active flag in their
tenant, never a password, username, e-mail, global active flag, staff or superuser flag.
"""

import pytest
from django.test import Client

from accounts.choices import Role
from accounts.models import Membership, User
from tests.factories import MembershipFactory, UserFactory
from tests.factories.accounts import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_admin(admin_user):
    """A tenant admin as the old rules made one for the admin pages (is_staff ticked)."""
    admin_user.is_staff = True
    admin_user.save()
    return admin_user


@pytest.fixture
def shared_user(tenant, other_tenant):
    """A person in two tenants (the documented way to share one)."""
    user = UserFactory(username="shared-sue", email="sue@example.com")
    MembershipFactory(user=user, tenant=tenant, role=Role.MEMBER)
    MembershipFactory(user=user, tenant=other_tenant, role=Role.ADMIN)
    return user


def _signed_in(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


# --------------------------------------------------------------------------- item 1


@pytest.mark.parametrize("kind", ["superuser", "platform_staff", "no_membership"])
def test_tenant_admin_cannot_add_an_existing_account_through_the_api(api, admin_user, tenant, kind):
    target = UserFactory(
        username=f"existing-{kind}",
        is_superuser=kind == "superuser",
        is_staff=kind in ("superuser", "platform_staff"),
    )
    res = api(admin_user).post("/api/v1/members/", {"username": target.username, "role": "admin"})
    assert res.status_code == 400, res.content
    assert "username" in res.json()
    assert not Membership.objects.filter(user=target).exists()
    # Nor by sending a password along (which would take the account over).
    res = api(admin_user).post(
        "/api/v1/members/",
        {"username": target.username, "password": "Another-pass-123", "role": "member"},
    )
    assert res.status_code == 400
    target.refresh_from_db()
    assert target.check_password(PASSWORD)


def test_tenant_admin_cannot_add_the_superuser_on_the_members_page(admin_user, superuser):
    res = _signed_in(admin_user).post(
        "/tenant/members/", {"username": superuser.username, "role": "admin"}
    )
    assert res.status_code == 400
    assert "platform operator" in res.content.decode()
    assert not Membership.objects.filter(user=superuser).exists()


def test_tenant_admin_cannot_add_memberships_in_the_django_admin(staff_admin, superuser, tenant):
    client = _signed_in(staff_admin)
    assert client.get("/admin/accounts/membership/add/").status_code == 403
    res = client.post(
        "/admin/accounts/membership/add/",
        {"user": superuser.pk, "tenant": tenant.pk, "role": Role.ADMIN},
    )
    assert res.status_code == 403
    assert not Membership.objects.filter(user=superuser).exists()


def test_superuser_adds_an_existing_account_but_never_sets_its_password(
    api, superuser, tenant, shared_user, other_member
):
    stranger = UserFactory(username="lone-user")
    client = api(superuser, tenant=tenant)
    res = client.post("/api/v1/members/", {"username": stranger.username, "role": "dba"})
    assert res.status_code == 201, res.content
    assert Membership.objects.get(user=stranger, tenant=tenant).role == Role.DBA
    res = client.post("/api/v1/members/", {"username": "lone-two", "password": "a-Strong-passw0rd"})
    assert res.status_code == 201  # a new person: created with that password
    UserFactory(username="lone-three")
    res = client.post(
        "/api/v1/members/", {"username": "lone-three", "password": "a-Strong-passw0rd"}
    )
    assert res.status_code == 400 and "password" in res.json()


def test_superuser_adds_an_existing_account_in_the_django_admin(superuser, tenant):
    person = UserFactory(username="to-be-added")
    res = _signed_in(superuser).post(
        "/admin/accounts/membership/add/",
        {"user": person.pk, "tenant": tenant.pk, "role": Role.MEMBER},
    )
    assert res.status_code == 302, res.content[:2000]
    membership = Membership.objects.get(user=person, tenant=tenant)
    assert membership.history.first().history_user == superuser


# --------------------------------------------------------------------------- item 2


def test_tenant_admin_cannot_change_a_shared_persons_account_in_the_django_admin(
    staff_admin, shared_user
):
    client = _signed_in(staff_admin)
    url = f"/admin/accounts/user/{shared_user.pk}/change/"
    assert client.get(url).status_code == 200  # they see their member's account …
    res = client.post(
        url,
        {
            "username": "renamed",
            "email": "attacker@example.com",
            "first_name": "",
            "last_name": "",
            "is_active": "",  # deactivate the account everywhere
            "is_staff": "on",
            "date_joined_0": "2024-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert res.status_code == 403  # … and change nothing of it
    res = client.post(
        f"/admin/accounts/user/{shared_user.pk}/password/",
        {"password1": "Taken-over-123", "password2": "Taken-over-123"},
    )
    assert res.status_code == 403
    shared_user.refresh_from_db()
    assert shared_user.username == "shared-sue"
    assert shared_user.email == "sue@example.com"
    assert shared_user.is_active and not shared_user.is_staff
    assert shared_user.check_password(PASSWORD)


def test_tenant_admin_cannot_delete_an_account_in_the_django_admin(staff_admin, shared_user):
    client = _signed_in(staff_admin)
    res = client.post(f"/admin/accounts/user/{shared_user.pk}/delete/", {"post": "yes"})
    assert res.status_code == 403
    # Nor through the changelist's bulk delete.
    res = client.post(
        "/admin/accounts/user/",
        {"action": "delete_selected", "_selected_action": [shared_user.pk], "post": "yes"},
    )
    assert User.objects.filter(pk=shared_user.pk).exists()


def test_tenant_admin_still_manages_the_membership(api, staff_admin, shared_user, tenant):
    """Role and active-in-this-tenant stay the tenant admin's, in the API and the admin."""
    mine = Membership.objects.get(user=shared_user, tenant=tenant)
    res = api(staff_admin).patch(f"/api/v1/members/{mine.pk}/", {"role": "dba"})
    assert res.status_code == 200
    res = _signed_in(staff_admin).post(
        f"/admin/accounts/membership/{mine.pk}/change/", {"role": "member", "is_active": ""}
    )
    assert res.status_code == 302, res.content[:2000]
    mine.refresh_from_db()
    assert (mine.role, mine.is_active) == (Role.MEMBER, False)
    # The other tenant's membership and the account itself are untouched.
    assert Membership.objects.get(user=shared_user, tenant__slug="globex").is_active
    shared_user.refresh_from_db()
    assert shared_user.is_active


def test_superuser_changes_accounts_in_the_django_admin(superuser, shared_user):
    client = _signed_in(superuser)
    res = client.post(
        f"/admin/accounts/user/{shared_user.pk}/password/",
        {"password1": "Operator-set-123", "password2": "Operator-set-123"},
    )
    assert res.status_code == 302
    shared_user.refresh_from_db()
    assert shared_user.check_password("Operator-set-123")


# --------------------------------------------------------------------------- item 4


def test_tenant_admin_and_auditor_use_their_tenants_admin_pages_by_role(
    tenant, other_tenant, outsider
):
    """The role opens the tenant's admin pages; is_staff is not needed and opens nothing."""
    admin = UserFactory(username="role-admin")
    auditor = UserFactory(username="role-auditor")
    member = UserFactory(username="staff-member", is_staff=True)
    MembershipFactory(user=admin, tenant=tenant, role=Role.ADMIN)
    MembershipFactory(user=auditor, tenant=tenant, role=Role.AUDITOR)
    MembershipFactory(user=member, tenant=tenant, role=Role.MEMBER)
    for user in (admin, auditor):
        client = Client()
        res = client.post(
            "/admin/login/?next=/admin/",
            {"username": user.username, "password": PASSWORD, "next": "/admin/"},
        )
        assert res.status_code == 302 and res["Location"] == "/admin/", res.content[:500]
        body = client.get("/admin/accounts/membership/").content.decode()
        assert user.username in body and outsider.username not in body
    assert _signed_in(member).get("/admin/accounts/membership/").status_code == 403


def test_tenant_admin_cannot_hand_out_staff_superuser_or_permissions(staff_admin, member_user):
    """Nothing in the account form is theirs: not is_staff, is_superuser, groups, permissions."""
    client = _signed_in(staff_admin)
    body = client.get(f"/admin/accounts/user/{member_user.pk}/change/").content.decode()
    for name in ("is_superuser", "is_staff", "groups", "user_permissions", "password"):
        assert f'name="{name}"' not in body
    res = client.post(
        f"/admin/accounts/user/{member_user.pk}/change/",
        {"username": member_user.username, "is_active": "on", "is_staff": "on"},
    )
    assert res.status_code == 403
    member_user.refresh_from_db()
    assert not member_user.is_staff and not member_user.is_superuser
