"""Issue 13 item 3: no Django admin path sets a field its form does not offer to that viewer.

simple-history's revert saved the historical row itself: every field came back, the hidden
ones included (a user's is_superuser), on admins that change nothing (nodes), and even for
rows that had been deleted. Reverts now apply only the viewer's form fields to the current
row, through the same save as the change form, and are refused where the viewer may not
change the row; bulk actions run only on rows the viewer may change.
"""

import pytest
from django.forms import CheckboxInput, MultiWidget
from django.test import Client

from accounts.choices import Role
from accounts.models import Membership, User
from flows import services
from flows.models import TaskNode

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_admin(admin_user):
    admin_user.is_staff = True
    admin_user.save()
    return admin_user


def _signed_in(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def _resubmit(response) -> dict:
    """The admin form of a page as the browser would post it back unchanged."""
    form = response.context["adminform"].form
    data = {}
    for bound in form:
        value, widget = bound.value(), bound.field.widget
        if isinstance(widget, CheckboxInput):
            if value:
                data[bound.html_name] = "on"
        elif isinstance(widget, MultiWidget):
            for i, part in enumerate(widget.decompress(value)):
                data[f"{bound.html_name}_{i}"] = "" if part is None else str(part)
        elif isinstance(value, list | tuple):
            data[bound.html_name] = [str(v) for v in value]
        elif value is not None:
            data[bound.html_name] = str(value)
    return data


def _version(obj, *, oldest: bool = True):
    rows = obj.history.order_by("history_id")
    return rows.first() if oldest else rows.last()


def test_revert_cannot_bring_back_a_hidden_is_superuser(staff_admin, member_user):
    # Given: the operator once made the member a superuser, then took it back.
    member_user.is_superuser = True
    member_user._history_user = None
    member_user.save()
    elevated = member_user.history.order_by("-history_id").first()
    member_user.is_superuser = False
    member_user.save()
    client = _signed_in(staff_admin)
    url = f"/admin/accounts/user/{member_user.pk}/history/{elevated.history_id}/"

    # When: a tenant admin opens that version and presses Revert.
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="is_superuser"' not in page.content.decode()
    res = client.post(url, _resubmit(page))

    # Then: refused, and the account is as it was.
    assert res.status_code == 403
    member_user.refresh_from_db()
    assert not member_user.is_superuser


def test_revert_on_a_read_only_admin_is_refused(staff_admin, tenant, member_user):
    """Nodes are changed by their flow's owner through the services, never in the admin."""
    flow = services.flow_create(tenant=tenant, user=member_user, name="f")
    node = services.node_create(
        flow=flow, user=member_user, name="n", type="noop", config={}, retries=0
    )
    services.node_update(node=node, user=member_user, retries=3)
    first = _version(node)
    client = _signed_in(staff_admin)
    url = f"/admin/flows/tasknode/{node.pk}/history/{first.history_id}/"
    page = client.get(url)
    assert page.status_code == 200
    assert page.context["revert_disabled"]  # no Revert button …
    data = _resubmit(page)
    data["name"] = "renamed-in-admin"
    res = client.post(url, data)
    assert res.status_code == 403  # … and no revert by posting anyway
    node.refresh_from_db()
    assert (node.name, node.retries) == ("n", 3)


def test_revert_cannot_resurrect_a_deleted_row(staff_admin, tenant, member_user):
    flow = services.flow_create(tenant=tenant, user=member_user, name="f")
    node = services.node_create(flow=flow, user=member_user, name="gone", type="noop")
    created = _version(node)
    pk = node.pk
    services.node_delete(node=node, user=member_user)
    client = _signed_in(staff_admin)
    url = f"/admin/flows/tasknode/{pk}/history/{created.history_id}/"
    res = client.post(
        url,
        {
            "tenant": tenant.pk,
            "flow": flow.pk,
            "name": "gone",
            "type": "noop",
            "config": "{}",
            "position_x": "0",
            "position_y": "0",
            "retries": "0",
            "retry_interval": "60",
            "timeout": "3600",
            "priority": "0",
        },
    )
    assert res.status_code in (403, 404)
    assert not TaskNode.objects.filter(pk=pk).exists()


def test_revert_applies_only_the_viewers_fields_through_the_service(staff_admin, tenant):
    """A membership revert sets role and active flag (the form's fields), with the history
    the service writes, and the last-admin rule still holds."""
    from tests.factories import MembershipFactory, UserFactory

    person = UserFactory(username="reverted")
    membership = MembershipFactory(user=person, tenant=tenant, role=Role.DBA)
    client = _signed_in(staff_admin)
    client.post(
        f"/admin/accounts/membership/{membership.pk}/change/", {"role": "member", "is_active": "on"}
    )
    membership.refresh_from_db()
    assert membership.role == Role.MEMBER
    as_dba = membership.history.filter(role=Role.DBA).order_by("history_id").first()
    url = f"/admin/accounts/membership/{membership.pk}/history/{as_dba.history_id}/"
    page = client.get(url)
    assert set(page.context["adminform"].form.fields) == {"role", "is_active"}
    assert page.context["adminform"].form["role"].value() == Role.DBA
    res = client.post(url, {"role": "dba", "is_active": "on", "user": "999", "tenant": "999"})
    assert res.status_code == 302, res.content[:2000]
    membership.refresh_from_db()
    assert (membership.role, membership.user_id, membership.tenant_id) == (
        Role.DBA,
        person.pk,
        tenant.pk,
    )
    assert membership.history.latest().history_change_reason == "member updated"

    # The tenant's last admin cannot be demoted by reverting to a version as a member.
    mine = Membership.objects.get(user=staff_admin, tenant=tenant)
    mine.role = Role.MEMBER
    mine.save()
    as_member = mine.history.order_by("-history_id").first()
    mine.role = Role.ADMIN
    mine.save()
    url = f"/admin/accounts/membership/{mine.pk}/history/{as_member.history_id}/"
    res = client.post(url, {"role": "member", "is_active": "on"})
    assert res.status_code == 200 and "last active admin" in res.content.decode()
    mine.refresh_from_db()
    assert mine.role == Role.ADMIN


def test_bulk_actions_are_not_offered_to_whoever_may_not_change(tenant, member_user):
    """An auditor sees the runs' changelist but gets no action (stop, pause, delete …)."""
    from tests.factories import MembershipFactory, UserFactory

    auditor = UserFactory(username="bulk-auditor")
    MembershipFactory(user=auditor, tenant=tenant, role=Role.AUDITOR)
    client = _signed_in(auditor)
    res = client.get("/admin/operations/flowrun/")
    assert res.status_code == 200
    assert 'name="action"' not in res.content.decode()
    res = client.get("/admin/accounts/user/")
    assert res.status_code == 200
    assert 'name="action"' not in res.content.decode()
    assert User.objects.filter(pk=member_user.pk).exists()


def test_inline_rows_follow_the_parents_rights(tenant, admin_user):
    # Given the tenant's auditor (reads the admin, writes nothing), viewing a flow
    from tests.factories import UserFactory, build_flow

    auditor = UserFactory(username="audrey")
    Membership.objects.create(tenant=tenant, user=auditor, role=Role.AUDITOR)
    flow, _ = build_flow(tenant=tenant, owner=admin_user, nodes=["a"])
    client = _signed_in(auditor)
    url = f"/admin/flows/taskflow/{flow.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    # The node and edge inlines are shown without add, change or delete ...
    for formset in page.context["inline_admin_formsets"]:
        assert not formset.has_add_permission and not formset.has_change_permission
        assert not formset.has_delete_permission
    # ... and a hand-made POST adding a node through the inline changes nothing.
    data = {
        "name": flow.name,
        "nodes-TOTAL_FORMS": "1",
        "nodes-INITIAL_FORMS": "0",
        "nodes-0-name": "smuggled",
        "nodes-0-type": "noop",
        "nodes-0-config": "{}",
        "edges-TOTAL_FORMS": "0",
        "edges-INITIAL_FORMS": "0",
    }
    assert client.post(url, data).status_code == 403
    assert not TaskNode.objects.filter(flow=flow, name="smuggled").exists()
