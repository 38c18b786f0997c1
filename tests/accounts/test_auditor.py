"""The auditor role (issue 20, backend): reads everything in its tenant, including the audit
trail and every flow (public or not), and changes nothing, through the API, the console
pages and the Django admin. (The matrices in tests/hardening cover every route and role.)
"""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.choices import Role
from flows import services
from flows.models import TaskFlow
from tests.factories import MembershipFactory, UserFactory
from tests.hardening.world import fingerprint, fingerprint_diff

pytestmark = pytest.mark.django_db


@pytest.fixture
def auditor(tenant):
    user = UserFactory(username="audrey-auditor")
    MembershipFactory(user=user, tenant=tenant, role=Role.AUDITOR)
    return user


@pytest.fixture
def private_flow(tenant, member_user):
    flow = services.flow_create(tenant=tenant, user=member_user, name="private stuff")
    services.node_create(flow=flow, user=member_user, name="n", type="noop")
    return flow


@pytest.fixture
def foreign_flow(other_tenant, outsider):
    return services.flow_create(tenant=other_tenant, user=outsider, name="globex flow")


def _page(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def test_auditor_reads_every_flow_and_the_audit_trail(api, auditor, private_flow, foreign_flow):
    client = api(auditor)
    names = [f["name"] for f in client.get("/api/v1/flows/").json()["results"]]
    assert names == ["private stuff"]
    assert client.get(f"/api/v1/flows/{private_flow.pk}/").status_code == 200
    assert client.get(f"/api/v1/flows/{private_flow.pk}/history/").status_code == 200
    assert client.get(f"/api/v1/flows/{foreign_flow.pk}/").status_code == 404
    audit = client.get("/api/v1/audit/")
    assert audit.status_code == 200
    assert any(e["object_id"] == private_flow.pk for e in audit.json()["results"])
    assert client.get("/api/v1/members/").status_code == 200


def test_member_still_cannot_read_the_audit_trail(api, member_user):
    assert api(member_user).get("/api/v1/audit/").status_code == 403


def test_auditor_changes_nothing_through_the_api_even_with_every_scope(
    auditor, tenant, private_flow
):
    """Role and scope must both allow a write: an auditor's all-scope token writes nothing."""
    from tests.hardening.world import Victim

    victim = Victim(tenant=tenant, users={"auditor": auditor}, ids={})
    before = fingerprint(victim)
    _token, key = account_services.token_sign_in(user=auditor)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}", HTTP_X_TENANT=tenant.slug)
    pk = private_flow.pk
    for method, url, body in (
        ("post", "/api/v1/flows/", {"name": "by auditor"}),
        ("post", "/api/v1/flows/import/", {"kind": "tributary/flow", "version": 1, "name": "i"}),
        ("patch", f"/api/v1/flows/{pk}/", {"description": "x"}),
        ("post", f"/api/v1/flows/{pk}/runs/", {"mode": "dry"}),
        ("post", f"/api/v1/flows/{pk}/publish/", {}),
        ("post", "/api/v1/datasources/", {"name": "d", "engine": "sqlite", "database": "/x"}),
        ("post", "/api/v1/members/", {"username": "n", "password": "a-Strong-passw0rd"}),
        ("post", "/api/v1/service-accounts/", {"name": "bot"}),
    ):
        res = getattr(client, method)(url, body, format="json")
        assert res.status_code == 403, (url, res.content)
    assert not fingerprint_diff(before, fingerprint(victim))
    # Reading with the same token works, and the preview (a read sent as POST) too.
    assert client.get(f"/api/v1/flows/{pk}/graph/").status_code == 200
    res = client.post(f"/api/v1/flows/{pk}/preview/", {"business_time": "2024-01-15T00:00:00Z"})
    assert res.status_code == 200


def test_auditor_is_never_made_owner_or_stakeholder(api, member_user, auditor, private_flow):
    client = api(member_user)
    res = client.post(f"/api/v1/flows/{private_flow.pk}/owner/", {"owner": auditor.pk})
    assert res.status_code == 400 and "owner" in res.json()
    res = client.put(f"/api/v1/flows/{private_flow.pk}/stakeholders/", {"users": [auditor.pk]})
    assert res.status_code == 400 and "users" in res.json()
    assert TaskFlow.objects.get(pk=private_flow.pk).owner_id == member_user.pk


def test_console_pages_show_an_auditor_no_edit_controls(auditor, private_flow):
    client = _page(auditor)
    body = client.get("/flows/").content.decode()
    assert "private stuff" in body and 'data-testid="create-flow"' not in body
    assert "Create task flow" not in client.get("/").content.decode()
    res = client.get(f"/flows/{private_flow.pk}/")
    assert res.status_code == 200
    body = res.content.decode()
    assert 'data-testid="readonly-badge"' in body
    for control in ("save", "try-run", "publish", "palette"):
        assert f'data-testid="{control}"' not in body
    assert client.get(f"/flows/{private_flow.pk}/history/").status_code == 200
    # The page's JavaScript writes through the API with the session: refused there too.
    res = client.patch(
        f"/api/v1/flows/{private_flow.pk}/", {"name": "x"}, content_type="application/json"
    )
    assert res.status_code == 403


def test_auditor_reads_the_django_admin_of_their_tenant_only(auditor, private_flow, foreign_flow):
    client = _page(auditor)
    assert client.get("/admin/").status_code == 200
    listing = client.get("/admin/flows/taskflow/").content.decode()
    assert "private stuff" in listing and "globex flow" not in listing
    url = f"/admin/flows/taskflow/{private_flow.pk}/change/"
    assert client.get(url).status_code == 200  # the read-only view
    res = client.post(url, {"name": "renamed", "tenant": private_flow.tenant_id})
    assert res.status_code == 403
    res = client.post(f"/admin/flows/taskflow/{private_flow.pk}/delete/", {"post": "yes"})
    assert res.status_code == 403
    version = private_flow.history.order_by("history_id").first()
    res = client.post(
        f"/admin/flows/taskflow/{private_flow.pk}/history/{version.history_id}/",
        {"name": "reverted", "tenant": private_flow.tenant_id},
    )
    assert res.status_code == 403
    res = client.post(
        "/admin/flows/taskflow/",
        {"action": "delete_selected", "_selected_action": [private_flow.pk], "post": "yes"},
    )
    assert TaskFlow.objects.get(pk=private_flow.pk).name == "private stuff"
    assert client.get(f"/admin/flows/taskflow/{foreign_flow.pk}/change/").status_code in (302, 404)
