"""Flow CRUD, filters, stakeholders and owner through the API."""

import pytest
from guardian.shortcuts import get_perms

from flows.models import TaskFlow
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_creator_becomes_owner_with_guardian_grants(as_user, member_user):
    res = as_user(member_user).post(
        "/api/v1/flows/",
        {"name": "orders", "business_scenario": "sales", "description": "daily orders"},
        format="json",
    )
    assert res.status_code == 201, res.data
    body = res.data
    assert body["owner"] == member_user.pk
    assert body["stakeholders"] == []
    assert body["status"] == "draft"
    assert body["published_version"] is None
    assert body["is_frozen"] is False
    assert body["has_unpublished_changes"] is True
    assert body["notifications"]["on_failure"] is True
    flow = TaskFlow.objects.get(pk=body["id"])
    assert set(get_perms(member_user, flow)) == {
        "view_taskflow",
        "change_taskflow",
        "operate_taskflow",
    }


def test_duplicate_name_in_tenant_is_400_naming_name(as_user, member_user, flow):
    res = as_user(member_user).post("/api/v1/flows/", {"name": flow.name}, format="json")
    assert res.status_code == 400
    assert "name" in res.data


def test_same_name_in_another_tenant_is_fine(api, outsider, other_tenant, flow):
    res = api(outsider, other_tenant).post("/api/v1/flows/", {"name": flow.name}, format="json")
    assert res.status_code == 201


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"variables": [{"name": "1bad", "type": "constant", "value": "x"}]}, "variables"),
        (
            {"variables": [{"name": "d", "type": "time", "format": "yyyy", "offset": "-1q"}]},
            "variables",
        ),
        ({"notifications": {"emails": ["not-an-email"]}}, "notifications"),
        ({"notifications": {"webhooks": ["ftp://x.example"]}}, "notifications"),
        ({"notifications": {"on_failure": "yes"}}, "notifications"),
        ({"notifications": {"max_duration_s": -5}}, "notifications"),
        ({"notifications": {"surprise": 1}}, "notifications"),
        ({"error_policy": "explode"}, "error_policy"),
        ({"name": "x" * 129}, "name"),
        ({"description": "x" * 4001}, "description"),
    ],
)
def test_invalid_fields_are_400_naming_the_field(as_user, owner, flow, payload, field):
    res = as_user(owner).patch(f"/api/v1/flows/{flow.pk}/", payload, format="json")
    assert res.status_code == 400, res.data
    assert field in res.data


def test_patch_updates_and_marks_unpublished_changes(as_user, owner, flow):
    res = as_user(owner).patch(
        f"/api/v1/flows/{flow.pk}/",
        {
            "is_public": True,
            "variables": [{"name": "day", "type": "time", "format": "yyyyMMdd", "offset": "-1d"}],
            "notifications": {
                "emails": ["ops@example.com"],
                "webhooks": ["https://hooks.example/x"],
                "max_duration_s": 600,
            },
            "concurrency_policy": "parallel_downstream",
        },
        format="json",
    )
    assert res.status_code == 200, res.data
    assert res.data["is_public"] is True
    assert res.data["concurrency_policy"] == "parallel_downstream"
    assert res.data["notifications"]["max_duration_s"] == 600
    assert res.data["has_unpublished_changes"] is True


def test_put_on_flow_detail_is_not_allowed(as_user, owner, flow):
    assert (
        as_user(owner).put(f"/api/v1/flows/{flow.pk}/", {"name": "x"}, format="json").status_code
        == 405
    )


def test_filters_and_search(as_user, owner, tenant, admin_user):
    from flows import services

    services.flow_create(tenant=tenant, user=owner, name="alpha", business_scenario="finance")
    services.flow_create(
        tenant=tenant, user=owner, name="beta", business_scenario="sales", is_public=True
    )
    services.flow_create(tenant=tenant, user=admin_user, name="gamma", description="finance report")
    client = as_user(admin_user)

    def names(query):
        res = client.get(f"/api/v1/flows/?{query}")
        assert res.status_code == 200, res.data
        return sorted(f["name"] for f in res.data["results"])

    assert names("scenario=finance") == ["alpha"]
    assert names("name=et") == ["beta"]
    assert names(f"owner={owner.pk}") == ["alpha", "beta"]
    assert names("is_public=true") == ["beta"]
    assert names("status=draft") == ["alpha", "beta", "gamma"]
    assert names("status=published") == []
    assert names("search=finance") == ["alpha", "gamma"]


def test_delete_flow(as_user, owner, flow):
    assert as_user(owner).delete(f"/api/v1/flows/{flow.pk}/").status_code == 204
    assert not TaskFlow.objects.filter(pk=flow.pk).exists()


# --------------------------------------------------------------------------- stakeholders


def test_set_stakeholders_grants_view_and_operate(as_user, owner, flow, other_member, stakeholder):
    res = as_user(owner).put(
        f"/api/v1/flows/{flow.pk}/stakeholders/", {"users": [other_member.pk]}, format="json"
    )
    assert res.status_code == 200, res.data
    assert res.data == {"users": [other_member.pk]}
    assert set(get_perms(other_member, flow)) == {"view_taskflow", "operate_taskflow"}
    assert get_perms(stakeholder, flow) == []
    detail = as_user(owner).get(f"/api/v1/flows/{flow.pk}/").data
    assert detail["stakeholders"] == [other_member.pk]


def test_stakeholder_of_another_tenant_is_400_without_revealing(as_user, owner, flow, outsider):
    res = as_user(owner).put(
        f"/api/v1/flows/{flow.pk}/stakeholders/", {"users": [outsider.pk]}, format="json"
    )
    assert res.status_code == 400
    missing = as_user(owner).put(
        f"/api/v1/flows/{flow.pk}/stakeholders/", {"users": [999999]}, format="json"
    )
    assert missing.status_code == 400
    assert "users" in res.data
    # The same answer whether the id belongs to another tenant or to nobody.
    assert res.data["users"][0].replace(str(outsider.pk), "N") == missing.data["users"][0].replace(
        "999999", "N"
    )
    assert "bob" not in str(res.data)


def test_inactive_member_cannot_be_stakeholder(as_user, owner, flow, tenant):
    user = UserFactory(username="gone")
    MembershipFactory(user=user, tenant=tenant, is_active=False)
    res = as_user(owner).put(
        f"/api/v1/flows/{flow.pk}/stakeholders/", {"users": [user.pk]}, format="json"
    )
    assert res.status_code == 400 and "users" in res.data


# --------------------------------------------------------------------------- owner


def test_owner_change_moves_grants(as_user, owner, flow, other_member):
    res = as_user(owner).post(
        f"/api/v1/flows/{flow.pk}/owner/", {"owner": other_member.pk}, format="json"
    )
    assert res.status_code == 200, res.data
    assert res.data["owner"] == other_member.pk
    flow.refresh_from_db()
    assert set(get_perms(other_member, flow)) == {
        "view_taskflow",
        "change_taskflow",
        "operate_taskflow",
    }
    assert get_perms(owner, flow) == []
    # The old owner no longer sees a private flow.
    assert as_user(owner).get(f"/api/v1/flows/{flow.pk}/").status_code == 404


def test_owner_must_be_active_member(as_user, owner, flow, outsider):
    res = as_user(owner).post(
        f"/api/v1/flows/{flow.pk}/owner/", {"owner": outsider.pk}, format="json"
    )
    assert res.status_code == 400 and "owner" in res.data
    res = as_user(owner).post(f"/api/v1/flows/{flow.pk}/owner/", {"owner": "abc"}, format="json")
    assert res.status_code == 400 and "owner" in res.data


def test_published_version_keeps_old_owner_until_republished(as_user, owner, flow, other_member):
    from flows import services

    services.node_create(flow=flow, user=owner, name="start", type="noop")
    assert as_user(owner).post(f"/api/v1/flows/{flow.pk}/publish/").data == {"version": 1}
    as_user(owner).post(
        f"/api/v1/flows/{flow.pk}/owner/", {"owner": other_member.pk}, format="json"
    )
    flow.refresh_from_db()
    assert flow.published_version.owner_id == owner.pk
    assert flow.has_unpublished_changes
    assert as_user(other_member).post(f"/api/v1/flows/{flow.pk}/publish/").data == {"version": 2}
    flow.refresh_from_db()
    assert flow.published_version.owner_id == other_member.pk
