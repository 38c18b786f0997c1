"""Tenant limits and data-source pools through the API and the admin: who sets, who reads."""

import pytest
from django.utils import timezone

from accounts.models import Tenant
from operations.models import WorkerSlots
from tests.factories import DataSourceFactory, build_flow

pytestmark = pytest.mark.django_db


def url(tenant):
    return f"/api/v1/tenants/{tenant.pk}/"


def test_the_superuser_sets_limits_and_a_tenant_admin_reads_them_with_current_use(
    api, tenant, other_tenant, admin_user, outsider, superuser
):
    WorkerSlots.objects.create(name="w1", concurrency=10, seen_at=timezone.now())
    build_flow(tenant=tenant, owner=admin_user, nodes=["a"])
    build_flow(tenant=other_tenant, owner=outsider, nodes=["b"])
    res = api(superuser).patch(
        url(tenant), {"limits": {"running_nodes": 4, "active_runs": 2}}, format="json"
    )
    assert res.status_code == 200, res.content
    assert res.json()["limits"] == {"running_nodes": 4, "active_runs": 2}
    tenant.refresh_from_db()
    assert (tenant.max_running_nodes, tenant.max_active_runs) == (4, 2)
    assert tenant.history.first().history_change_reason == "tenant limits changed"

    body = api(admin_user, tenant).get(url(tenant)).json()
    assert body["limits"] == {"running_nodes": 4, "active_runs": 2}
    use = body["use"]
    assert use["effective"] == {"running_nodes": 4, "active_runs": 2}
    assert use["use"] == {"running_nodes": 0, "active_runs": 0, "waiting_nodes": 0}
    # Two tenants with flows and 10 slots up: the default leaves 2 free for the others.
    assert use["worker_slots"] == 10
    assert use["default_running_nodes"] == 8

    # null goes back to the default.
    res = api(superuser).patch(url(tenant), {"limits": {"running_nodes": None}}, format="json")
    assert res.json()["limits"] == {"running_nodes": None, "active_runs": 2}
    assert res.json()["use"]["effective"]["running_nodes"] == 8


def test_a_tenant_admin_cannot_set_limits_nor_read_another_tenants(
    api, tenant, other_tenant, admin_user, member_user
):
    res = api(admin_user, tenant).patch(
        url(tenant), {"limits": {"running_nodes": 99}}, format="json"
    )
    assert res.status_code == 403
    assert Tenant.objects.get(pk=tenant.pk).max_running_nodes is None
    assert api(admin_user, tenant).get(url(other_tenant)).status_code == 404
    assert api(member_user, tenant).get(url(tenant)).status_code == 403


@pytest.mark.parametrize(
    "limits, message",
    [
        ({"running_nodes": 0}, "running_nodes"),
        ({"active_runs": -1}, "active_runs"),
        ({"running_nodes": "many"}, "running_nodes"),
    ],
)
def test_invalid_limits_are_400s_naming_the_field(api, tenant, superuser, limits, message):
    res = api(superuser).patch(url(tenant), {"limits": limits}, format="json")
    assert res.status_code == 400
    assert message in res.content.decode()


def test_put_is_not_offered(api, tenant, superuser):
    assert api(superuser).put(url(tenant), {"limits": {}}, format="json").status_code in (403, 405)


def test_data_source_pool_is_set_by_admins_and_dbas(
    api, tenant, admin_user, member_user, sqlite_dir
):
    ds = DataSourceFactory(tenant=tenant, engine="sqlite", database=str(sqlite_dir / "x.sqlite3"))
    path = f"/api/v1/datasources/{ds.pk}/"
    res = api(admin_user, tenant).patch(path, {"max_concurrency": 3}, format="json")
    assert res.status_code == 200, res.content
    assert res.json()["max_concurrency"] == 3
    assert (
        api(admin_user, tenant).patch(path, {"max_concurrency": 0}, format="json").status_code
        == 400
    )
    assert (
        api(member_user, tenant).patch(path, {"max_concurrency": 5}, format="json").status_code
        == 403
    )
    res = api(admin_user, tenant).patch(path, {"max_concurrency": None}, format="json")
    assert res.json()["max_concurrency"] is None
    ds.refresh_from_db()
    assert ds.max_concurrency is None
    assert ds.history.count() >= 3


def test_the_admin_sets_limits_through_the_service(client, tenant, superuser, admin_user):
    client.force_login(superuser)
    res = client.post(
        f"/admin/accounts/tenant/{tenant.pk}/change/",
        {
            "name": tenant.name,
            "slug": tenant.slug,
            "is_active": "on",
            "max_running_nodes": "5",
            "max_active_runs": "",
        },
    )
    assert res.status_code == 302, res.content.decode()[:2000]
    tenant.refresh_from_db()
    assert tenant.max_running_nodes == 5
    assert tenant.history.first().history_change_reason == "tenant limits changed"
    # A tenant admin reads the row but changes nothing.
    client.force_login(admin_user)
    res = client.post(
        f"/admin/accounts/tenant/{tenant.pk}/change/",
        {"name": tenant.name, "slug": tenant.slug, "max_running_nodes": "50"},
    )
    assert res.status_code == 403
    tenant.refresh_from_db()
    assert tenant.max_running_nodes == 5


def test_every_member_reads_the_tenants_capacity_live(
    api, tenant, admin_user, member_user, sqlite_dir
):
    from operations.models import NodeRun
    from operations.services import run_start

    ds = DataSourceFactory(
        tenant=tenant, name="wh", engine="sqlite", database=str(sqlite_dir / "w.sqlite3")
    )
    ds.max_concurrency = 2
    ds.save()
    flow, _ = build_flow(tenant=tenant, owner=admin_user, nodes=["a", "b"])
    run = run_start(flow=flow, mode="try", user=admin_user)
    NodeRun.objects.filter(run=run, node_name="a").update(status="running", pools=f",{ds.pk},")
    NodeRun.objects.filter(run=run, node_name="b").update(
        status="waiting", waiting_reason="pool", pools=f",{ds.pk},"
    )
    body = api(member_user, tenant).get("/api/v1/capacity/").json()
    assert body["tenant"]["use"]["running_nodes"] == 1
    assert body["tenant"]["use"]["waiting_nodes"] == 1
    assert body["pools"] == [
        {"id": ds.pk, "name": "wh", "max_concurrency": 2, "running": 1, "waiting": 1}
    ]
