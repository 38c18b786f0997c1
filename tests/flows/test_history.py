"""The audit timeline: who changed what, field by field, newest first; tenant-wide audit."""

import datetime

import pytest
from django.utils import timezone

from flows import services
from flows.models import DataSource

pytestmark = pytest.mark.django_db


def history(client, flow, query=""):
    res = client.get(f"/api/v1/flows/{flow.pk}/history/{query}")
    assert res.status_code == 200, res.data
    return res.data


def test_history_rows_carry_actor_and_field_changes(as_user, owner, flow, other_member, admin_user):
    client = as_user(owner)
    node = client.post(
        f"/api/v1/flows/{flow.pk}/nodes/", {"name": "a", "type": "noop"}, format="json"
    ).data
    client.patch(
        f"/api/v1/flows/{flow.pk}/nodes/{node['id']}/",
        {"name": "first", "retries": 3},
        format="json",
    )
    client.patch(f"/api/v1/flows/{flow.pk}/", {"description": "now documented"}, format="json")
    as_user(admin_user).post(
        f"/api/v1/flows/{flow.pk}/owner/", {"owner": other_member.pk}, format="json"
    )
    client = as_user(other_member)
    client.delete(f"/api/v1/flows/{flow.pk}/nodes/{node['id']}/")

    entries = history(client, flow)["results"]
    # Newest first.
    stamps = [e["at"] for e in entries]
    assert stamps == sorted(stamps, reverse=True)
    deleted = entries[0]
    assert (deleted["object_type"], deleted["action"], deleted["user"]) == (
        "node",
        "deleted",
        other_member.pk,
    )
    assert deleted["object_id"] == node["id"] and deleted["object_repr"] == "first"

    def find(object_type, action, field):
        for e in entries:
            if e["object_type"] == object_type and e["action"] == action:
                for change in e["changes"]:
                    if change["field"] == field:
                        return e, change
        raise AssertionError(f"no {object_type} {action} {field} in {entries}")

    def core(c):  # the raw change (entries also carry it in words: label, *_display)
        return {k: c[k] for k in ("field", "old", "new")}

    entry, change = find("node", "changed", "name")
    assert (
        core(change) == {"field": "name", "old": "a", "new": "first"} and entry["user"] == owner.pk
    )
    assert {"field": "retries", "old": 0, "new": 3} in [core(c) for c in entry["changes"]]
    entry, change = find("flow", "changed", "description")
    assert change["new"] == "now documented" and entry["user"] == owner.pk
    entry, change = find("flow", "changed", "owner")
    assert core(change) == {"field": "owner", "old": owner.pk, "new": other_member.pk}
    assert change["new_display"] == other_member.username  # in words: the person's name
    assert entry["user"] == admin_user.pk and entry["username"] == admin_user.username
    # Owner grants moved: rows for the grants with the acting admin.
    grants = [e for e in entries if e["object_type"] == "grant"]
    assert any(e["action"] == "deleted" and e["user"] == admin_user.pk for e in grants)
    assert any(
        e["action"] == "created"
        and {"field": "user", "old": None, "new": other_member.pk}
        in [{k: c[k] for k in ("field", "old", "new")} for c in e["changes"]]
        for e in grants
    )
    entry, change = find("node", "created", "type")
    assert change["new"] == "noop"


def test_history_filters_and_pagination(as_user, owner, flow, stakeholder):
    client = as_user(owner)
    for i in range(3):
        services.node_create(flow=flow, user=owner, name=f"n{i}", type="noop")
    everything = history(client, flow)
    assert everything["count"] >= 5
    mine = history(client, flow, f"?user={owner.pk}")["results"]
    assert mine and all(e["user"] == owner.pk for e in mine)
    assert history(client, flow, f"?user={stakeholder.pk}")["count"] == 0
    future = (timezone.now() + datetime.timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert history(client, flow, f"?since={future}")["count"] == 0
    assert history(client, flow, f"?until={future}")["count"] == everything["count"]
    page = history(client, flow, "?page_size=2")
    assert len(page["results"]) == 2 and page["next"]
    assert client.get(f"/api/v1/flows/{flow.pk}/history/?since=yesterday").status_code == 400


def test_history_includes_publish_and_stakeholders(as_user, owner, flow, other_member):
    services.node_create(flow=flow, user=owner, name="a", type="noop")
    client = as_user(owner)
    client.put(
        f"/api/v1/flows/{flow.pk}/stakeholders/", {"users": [other_member.pk]}, format="json"
    )
    client.post(f"/api/v1/flows/{flow.pk}/publish/", {"comment": "go"}, format="json")
    entries = history(client, flow)["results"]
    version = next(e for e in entries if e["object_type"] == "version")
    assert version["object_id"] == 1 and version["user"] == owner.pk
    flow_row = next(e for e in entries if e["object_type"] == "flow" and e["action"] == "changed")
    assert {"field": "status", "old": "draft", "new": "published"} in [
        {k: c[k] for k in ("field", "old", "new")} for c in flow_row["changes"]
    ]
    assert any(
        e["object_type"] == "grant"
        and {"field": "user", "old": None, "new": other_member.pk}
        in [{k: c[k] for k in ("field", "old", "new")} for c in e["changes"]]
        for e in entries
    )


def test_history_query_count_is_constant(
    as_user, owner, flow, other_member, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def churn(tag):
        # Rows of every kind: node and edge created/changed, flow changed, grants, a version.
        a = services.node_create(flow=flow, user=owner, name=f"a{tag}", type="noop")
        b = services.node_create(flow=flow, user=owner, name=f"b{tag}", type="noop")
        services.node_update(node=a, user=owner, retries=2)
        services.edge_create(flow=flow, user=owner, upstream=a.pk, downstream=b.pk)
        services.flow_update(flow=flow, user=owner, description=f"rev {tag}")
        services.flow_stakeholders_set(
            flow=flow, user=owner, users=[other_member.pk] if tag % 2 else []
        )
        services.flow_publish(flow=flow, user=owner)

    client = as_user(owner)
    url = f"/api/v1/flows/{flow.pk}/history/?page_size=200"
    churn(0)
    with CaptureQueriesContext(connection) as small:
        assert client.get(url).status_code == 200
    for tag in range(1, 25):
        churn(tag)
    with django_assert_num_queries(len(small)):
        res = client.get(url)
    assert len(res.data["results"]) == 200


def test_tenant_audit_for_admins_only(as_user, admin_user, dba_user, owner, flow, datasource):
    datasource.password = "another-secret"
    datasource.host = "db.internal"
    datasource.save()
    assert as_user(dba_user).get("/api/v1/audit/").status_code == 403
    assert as_user(owner).get("/api/v1/audit/").status_code == 403
    res = as_user(admin_user).get("/api/v1/audit/?page_size=200")
    assert res.status_code == 200
    types = {e["object_type"] for e in res.data["results"]}
    assert {"flow", "grant", "membership", "datasource"} <= types
    text = str(res.data)
    assert "password" not in text and "another-secret" not in text and "s3cret-pw" not in text
    only_ds = as_user(admin_user).get("/api/v1/audit/?object_type=datasource").data["results"]
    assert only_ds and {e["object_type"] for e in only_ds} == {"datasource"}


def test_tenant_audit_excludes_other_tenants(api, outsider, other_tenant, flow):
    res = api(outsider, other_tenant).get("/api/v1/audit/?page_size=200")
    assert res.status_code == 200
    assert all(
        e["flow"] != flow.pk or e["object_type"] == "membership" for e in res.data["results"]
    )
    assert flow.name not in str(res.data)


def test_password_never_in_history_rows(datasource):
    row = DataSource.history.filter(id=datasource.pk).first()
    assert not hasattr(row, "password_encrypted")
