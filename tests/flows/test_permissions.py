"""The permission table of PRODUCT.md, role by action, each way round, through the API."""

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from accounts.selectors import tenant_context_for
from flows import permissions, selectors, services

pytestmark = pytest.mark.django_db

ROLES = ["owner", "stakeholder", "admin", "dba", "member_public", "member_private"]
OK, FORBIDDEN, HIDDEN = "ok", "forbidden", "hidden"

# action → expected outcome per role, in ROLES order (PRODUCT.md "Who may do what with a flow").
TABLE = {
    "view": [OK, OK, OK, OK, OK, HIDDEN],
    "edit": [OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, HIDDEN],
    "operate": [OK, OK, OK, OK, FORBIDDEN, HIDDEN],
    "publish": [OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, HIDDEN],
    "manage_stakeholders": [OK, FORBIDDEN, OK, OK, FORBIDDEN, HIDDEN],
    "change_owner": [OK, FORBIDDEN, OK, OK, FORBIDDEN, HIDDEN],
}
CASES = [(action, role, TABLE[action][i]) for action in TABLE for i, role in enumerate(ROLES)]


@pytest.fixture
def actors(owner, stakeholder, admin_user, dba_user, other_member):
    return {
        "owner": owner,
        "stakeholder": stakeholder,
        "admin": admin_user,
        "dba": dba_user,
        "member_public": other_member,
        "member_private": other_member,
    }


@pytest.fixture
def subject(flow, owner):
    services.node_create(flow=flow, user=owner, name="start", type="noop")
    return flow


def _status_class(code: int) -> str:
    if 200 <= code < 300:
        return OK
    if code == 403:
        return FORBIDDEN
    if code == 404:
        return HIDDEN
    raise AssertionError(f"unexpected status {code}")


def _api_calls(client, flow, other_member_id):
    """For each action, the API requests that need it (each must answer the same class)."""
    base = f"/api/v1/flows/{flow.pk}"
    node = flow.nodes.first()
    return {
        "view": [
            lambda: client.get(f"{base}/"),
            lambda: client.get(f"{base}/graph/"),
            lambda: client.get(f"{base}/nodes/"),
            lambda: client.get(f"{base}/nodes/{node.pk}/"),
            lambda: client.get(f"{base}/edges/"),
            lambda: client.get(f"{base}/versions/"),
            lambda: client.get(f"{base}/history/"),
            lambda: client.get(f"{base}/stakeholders/"),
            lambda: client.get(f"{base}/export/"),
            lambda: client.post(
                f"{base}/preview/", {"business_time": "2024-01-15T00:00:00Z"}, format="json"
            ),
        ],
        "edit": [
            lambda: client.patch(f"{base}/", {"description": "x"}, format="json"),
            lambda: client.post(f"{base}/nodes/", {"name": "n2", "type": "noop"}, format="json"),
            lambda: client.patch(f"{base}/nodes/{node.pk}/", {"retries": 1}, format="json"),
            lambda: client.put(
                f"{base}/graph/",
                {"nodes": [{"id": node.pk, "name": "start", "type": "noop"}], "edges": []},
                format="json",
            ),
        ],
        "publish": [
            lambda: client.post(f"{base}/publish/"),
            lambda: client.post(f"{base}/freeze/"),
            lambda: client.post(f"{base}/unfreeze/"),
            lambda: client.post(f"{base}/unpublish/"),
        ],
        "manage_stakeholders": [
            lambda: client.put(
                f"{base}/stakeholders/", {"users": [other_member_id]}, format="json"
            ),
        ],
        "change_owner": [
            lambda: client.post(f"{base}/owner/", {"owner": other_member_id}, format="json"),
        ],
    }


@pytest.mark.parametrize("action, role, expected", CASES)
def test_permission_table(action, role, expected, actors, subject, as_user, tenant, other_member):
    if role == "member_public":
        services.flow_update(flow=subject, user=subject.owner, is_public=True)
        subject.refresh_from_db()
    user = actors[role]
    # The rule itself, as every interface reads it.
    ctx = tenant_context_for(user=user, slug=tenant.slug)
    visible = selectors.flow_list(ctx=ctx).filter(pk=subject.pk).exists()
    assert visible == (TABLE["view"][ROLES.index(role)] != HIDDEN)
    try:
        selectors.flow_get(ctx=ctx, flow_id=subject.pk, action=action)
        outcome = OK
    except PermissionDenied:
        outcome = FORBIDDEN
    except Http404:
        outcome = HIDDEN
    assert outcome == expected
    if visible:
        assert permissions.flow_rights(ctx, subject).allows(action) == (expected == OK)

    calls = _api_calls(as_user(user), subject, other_member.pk).get(action, [])
    for call in calls:
        res = call()
        assert _status_class(res.status_code) == expected, (
            action,
            role,
            res.status_code,
            getattr(res, "data", None),
        )


def test_private_flow_is_not_listed_for_other_members(
    as_user, flow, other_member, stakeholder, owner
):
    ids = lambda user: [f["id"] for f in as_user(user).get("/api/v1/flows/").data["results"]]  # noqa: E731
    assert flow.pk in ids(owner) and flow.pk in ids(stakeholder)
    assert flow.pk not in ids(other_member)
    services.flow_update(flow=flow, user=owner, is_public=True)
    assert flow.pk in ids(other_member)


def test_anonymous_is_refused(api, flow):
    assert api().get("/api/v1/flows/").status_code in (401, 403)
    assert api().get(f"/api/v1/flows/{flow.pk}/").status_code in (401, 403)


def test_create_and_import_open_to_every_member(as_user, other_member, dba_user):
    for user in (other_member, dba_user):
        res = as_user(user).post("/api/v1/flows/", {"name": f"mine-{user.pk}"}, format="json")
        assert res.status_code == 201 and res.data["owner"] == user.pk
