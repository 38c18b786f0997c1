"""The Django admin for flows: tenant-scoped, writes through the services, versions read-only."""

import pytest
from guardian.shortcuts import get_perms

from flows import services
from flows.models import Edge, FlowVersion, TaskFlow, TaskNode

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_admin(admin_user):
    admin_user.is_staff = True
    admin_user.save()
    return admin_user


@pytest.fixture
def foreign_flow(other_tenant, outsider):
    return services.flow_create(tenant=other_tenant, user=outsider, name="globex secret flow")


def test_staff_tenant_admin_sees_only_own_flows(client, staff_admin, flow, foreign_flow):
    client.force_login(staff_admin)
    body = client.get("/admin/flows/taskflow/").content.decode()
    assert flow.name in body and foreign_flow.name not in body
    assert client.get(f"/admin/flows/taskflow/{foreign_flow.pk}/change/").status_code in (
        302,
        403,
        404,
    )
    assert client.get(f"/admin/flows/taskflow/{flow.pk}/change/").status_code == 200


def test_owner_choices_are_scoped_to_own_tenant(client, staff_admin, flow, outsider, owner):
    client.force_login(staff_admin)
    res = client.get(f"/admin/flows/taskflow/{flow.pk}/change/")
    choices = res.context["adminform"].form.fields["owner"].queryset
    assert owner in choices and outsider not in choices


def test_admin_edits_go_through_services(client, staff_admin, flow, owner, other_member):
    node = services.node_create(flow=flow, user=owner, name="a", type="noop")
    client.force_login(staff_admin)
    data = {
        "tenant": flow.tenant_id,
        "name": "renamed",
        "owner": other_member.pk,
        "business_scenario": "",
        "description": "",
        "error_policy": "stop_all",
        "concurrency_policy": "skip",
        "variables": "[]",
        "notifications": "{}",
        "nodes-TOTAL_FORMS": "2",
        "nodes-INITIAL_FORMS": "1",
        "nodes-MIN_NUM_FORMS": "0",
        "nodes-MAX_NUM_FORMS": "1000",
        "nodes-0-id": node.pk,
        "nodes-0-flow": flow.pk,
        "nodes-0-name": "a",
        "nodes-0-type": "noop",
        "nodes-0-config": "{}",
        "nodes-0-position_x": "0",
        "nodes-0-position_y": "0",
        "nodes-0-retries": "1",
        "nodes-0-retry_interval": "60",
        "nodes-0-timeout": "3600",
        "nodes-0-priority": "0",
        "nodes-0-trigger_rule": "all_success",
        "nodes-0-enabled": "on",
        "nodes-1-flow": flow.pk,
        "nodes-1-name": "b",
        "nodes-1-type": "noop",
        "nodes-1-config": "{}",
        "nodes-1-position_x": "0",
        "nodes-1-position_y": "0",
        "nodes-1-retries": "0",
        "nodes-1-retry_interval": "60",
        "nodes-1-timeout": "3600",
        "nodes-1-priority": "0",
        "nodes-1-trigger_rule": "all_success",
        "nodes-1-enabled": "on",
        "edges-TOTAL_FORMS": "0",
        "edges-INITIAL_FORMS": "0",
        "edges-MIN_NUM_FORMS": "0",
        "edges-MAX_NUM_FORMS": "1000",
    }
    res = client.post(f"/admin/flows/taskflow/{flow.pk}/change/", data)
    assert res.status_code == 302, res.context["adminform"].form.errors if res.context else res
    flow.refresh_from_db()
    assert (
        flow.name == "renamed"
        and flow.error_policy == "stop_all"
        and flow.owner_id == other_member.pk
    )
    assert set(get_perms(other_member, flow)) == {
        "view_taskflow",
        "change_taskflow",
        "operate_taskflow",
    }
    assert TaskNode.objects.get(pk=node.pk).retries == 1
    assert TaskNode.objects.filter(flow=flow, name="b").exists()
    assert TaskFlow.history.filter(id=flow.pk, history_user=staff_admin).exists()


def test_admin_refuses_invalid_node_config_and_cycles(client, staff_admin, flow, owner):
    a = services.node_create(flow=flow, user=owner, name="a", type="noop")
    b = services.node_create(flow=flow, user=owner, name="b", type="noop")
    services.edge_create(flow=flow, user=owner, upstream=a.pk, downstream=b.pk)
    edge = Edge.objects.get(flow=flow)
    client.force_login(staff_admin)
    base = {
        "tenant": flow.tenant_id,
        "name": flow.name,
        "owner": owner.pk,
        "business_scenario": "",
        "description": "",
        "error_policy": "complete_running",
        "concurrency_policy": "skip",
        "variables": "[]",
        "notifications": "{}",
        "nodes-TOTAL_FORMS": "0",
        "nodes-INITIAL_FORMS": "0",
        "nodes-MIN_NUM_FORMS": "0",
        "nodes-MAX_NUM_FORMS": "1000",
        "edges-TOTAL_FORMS": "2",
        "edges-INITIAL_FORMS": "1",
        "edges-MIN_NUM_FORMS": "0",
        "edges-MAX_NUM_FORMS": "1000",
        "edges-0-id": edge.pk,
        "edges-0-flow": flow.pk,
        "edges-0-upstream": a.pk,
        "edges-0-downstream": b.pk,
        "edges-1-flow": flow.pk,
        "edges-1-upstream": b.pk,
        "edges-1-downstream": a.pk,
    }
    res = client.post(f"/admin/flows/taskflow/{flow.pk}/change/", base)
    assert res.status_code == 200
    assert "cycle" in res.content.decode()
    assert Edge.objects.filter(flow=flow).count() == 1


def test_versions_are_read_only_in_admin(client, staff_admin, flow, owner):
    services.node_create(flow=flow, user=owner, name="a", type="noop")
    version = services.flow_publish(flow=flow, user=owner)
    client.force_login(staff_admin)
    assert client.get("/admin/flows/flowversion/").status_code == 200
    res = client.post(f"/admin/flows/flowversion/{version.pk}/change/", {"comment": "rewrite"})
    assert res.status_code in (200, 403)
    assert FlowVersion.objects.get(pk=version.pk).comment == ""
    assert client.get("/admin/flows/flowversion/add/").status_code == 403


def test_member_staff_without_admin_role_sees_no_flows(client, member_user, flow):
    member_user.is_staff = True
    member_user.save()
    client.force_login(member_user)
    assert client.get("/admin/flows/taskflow/").status_code == 403


def test_superuser_sees_all_flows(client, superuser, flow, foreign_flow):
    client.force_login(superuser)
    body = client.get("/admin/flows/taskflow/").content.decode()
    assert flow.name in body and foreign_flow.name in body


def test_admin_node_variables_are_validated_like_the_apis(client, staff_admin, flow, owner):
    node = services.node_create(flow=flow, user=owner, name="a", type="noop")
    client.force_login(staff_admin)
    data = {
        "tenant": flow.tenant_id,
        "name": flow.name,
        "owner": owner.pk,
        "business_scenario": "",
        "description": "",
        "error_policy": "complete_running",
        "concurrency_policy": "skip",
        "variables": "[]",
        "notifications": "{}",
        "nodes-TOTAL_FORMS": "1",
        "nodes-INITIAL_FORMS": "1",
        "nodes-MIN_NUM_FORMS": "0",
        "nodes-MAX_NUM_FORMS": "1000",
        "nodes-0-id": node.pk,
        "nodes-0-flow": flow.pk,
        "nodes-0-name": "a",
        "nodes-0-type": "noop",
        "nodes-0-config": "{}",
        "nodes-0-position_x": "0",
        "nodes-0-position_y": "0",
        "nodes-0-retries": "0",
        "nodes-0-retry_interval": "60",
        "nodes-0-timeout": "3600",
        "nodes-0-priority": "0",
        "nodes-0-trigger_rule": "all_success",
        "nodes-0-enabled": "on",
        "nodes-0-variables": '[{"name": "ds", "type": "time", "format": "yyyyQ"}]',
        "edges-TOTAL_FORMS": "0",
        "edges-INITIAL_FORMS": "0",
        "edges-MIN_NUM_FORMS": "0",
        "edges-MAX_NUM_FORMS": "1000",
    }
    res = client.post(f"/admin/flows/taskflow/{flow.pk}/change/", data)
    assert res.status_code == 200
    assert "variables[0].format: unknown pattern letter" in res.content.decode()
    assert TaskNode.objects.get(pk=node.pk).variables == []
    good = '[{"name": "ds", "type": "time", "format": "yyyyMMdd", "base": "bizdate"}]'
    res = client.post(
        f"/admin/flows/taskflow/{flow.pk}/change/", {**data, "nodes-0-variables": good}
    )
    assert res.status_code == 302
    assert TaskNode.objects.get(pk=node.pk).variables[0]["base"] == "bizdate"


def test_a_versions_lineage_is_shown_read_only_in_admin(client, staff_admin, flow, owner, tenant):
    from flows.models import DataSource, LineageEntry

    ds = DataSource.objects.create(tenant=tenant, name="wh", engine="postgresql", database="wh")
    services.node_create(
        flow=flow,
        user=owner,
        name="load",
        type="sql",
        config={"datasource": ds.pk, "sql": "insert into mart.daily select * from orders"},
    )
    version = services.flow_publish(flow=flow, user=owner)
    client.force_login(staff_admin)
    body = client.get(f"/admin/flows/flowversion/{version.pk}/change/").content.decode()
    assert "mart" in body and "daily" in body and "orders" in body
    before = LineageEntry.objects.count()
    client.post(f"/admin/flows/flowversion/{version.pk}/change/", {"lineage-TOTAL_FORMS": "0"})
    assert LineageEntry.objects.count() == before == 2


def test_admin_history_names_published_versions_in_words(client, staff_admin, flow, owner):
    # Given a flow published twice
    services.node_create(flow=flow, user=owner, name="a", type="noop")
    services.flow_publish(flow=flow, user=owner)
    services.node_create(flow=flow, user=owner, name="b", type="noop")
    services.flow_publish(flow=flow, user=owner)
    client.force_login(staff_admin)

    # When its history is shown in the admin
    body = client.get(f"/admin/flows/taskflow/{flow.pk}/history/").content.decode()

    # Then the published version changes read in words, with the flow's name and numbers
    assert "pk=None" not in body and "Deleted flow version" not in body
    assert f"version 1 of “{flow.name}”" in body
    assert f"version 2 of “{flow.name}”" in body
