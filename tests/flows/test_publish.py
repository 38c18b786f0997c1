"""Publishing: every problem listed, immutable versions, diffs, unpublish and freeze."""

import datetime

import pytest

from flows import services
from flows.models import DataSource, FlowVersion, FlowVersionImmutable, TaskNode
from scheduling.models import Schedule
from tests.factories import NodeFactory, ScheduleFactory

pytestmark = pytest.mark.django_db


def publish(client, flow, **body):
    return client.post(f"/api/v1/flows/{flow.pk}/publish/", body, format="json")


@pytest.fixture
def ready_flow(flow, owner, datasource):
    """extract (sql) → check (condition) —true→ load (sql)."""
    extract = services.node_create(
        flow=flow,
        user=owner,
        name="extract",
        type="sql_assign",
        config={
            "datasource": datasource.pk,
            "sql": "select count(*) as n from t where d = '${bizdate}'",
        },
    )
    check = services.node_create(
        flow=flow,
        user=owner,
        name="check",
        type="condition",
        config={"mode": "expression", "expression": "${n} > 0"},
    )
    load = services.node_create(
        flow=flow,
        user=owner,
        name="load",
        type="sql",
        config={"datasource": datasource.pk, "sql": "select 1"},
    )
    services.edge_create(flow=flow, user=owner, upstream=extract.pk, downstream=check.pk)
    services.edge_create(
        flow=flow, user=owner, upstream=check.pk, downstream=load.pk, branch="true"
    )
    return flow


def test_publish_writes_version_one_with_snapshot(as_user, owner, ready_flow):
    res = publish(as_user(owner), ready_flow, comment="first")
    assert res.status_code == 200, res.data
    assert res.data == {"version": 1}
    ready_flow.refresh_from_db()
    assert ready_flow.status == "published"
    assert not ready_flow.has_unpublished_changes
    version = ready_flow.published_version
    assert version.number == 1 and version.owner_id == owner.pk and version.comment == "first"
    snap = version.snapshot
    assert {n["name"] for n in snap["nodes"]} == {"extract", "check", "load"}
    assert all("id" in n for n in snap["nodes"])
    assert len(snap["edges"]) == 2
    assert snap["owner"] == owner.pk
    assert snap["flow"]["name"] == ready_flow.name
    assert snap["schedule"] is None
    detail = as_user(owner).get(f"/api/v1/flows/{ready_flow.pk}/").data
    assert detail["published_version"] == 1 and detail["has_unpublished_changes"] is False


def test_publish_refusal_lists_every_problem(as_user, owner, flow, datasource):
    a = services.node_create(
        flow=flow,
        user=owner,
        name="a",
        type="sql",
        config={"datasource": datasource.pk, "sql": "select 1"},
    )
    b = services.node_create(flow=flow, user=owner, name="b", type="noop")
    c = services.node_create(
        flow=flow,
        user=owner,
        name="c",
        type="condition",
        config={"mode": "expression", "expression": "1 > 0"},
    )
    services.edge_create(flow=flow, user=owner, upstream=a.pk, downstream=b.pk)
    services.edge_create(flow=flow, user=owner, upstream=b.pk, downstream=c.pk)
    # Break things behind the services' back, as a stale database or a removed data source would.
    NodeFactory(flow=flow, name="bad-config", type="sql", config={"sql": ""})
    NodeFactory(flow=flow, name="bad-type", type="shell", config={})
    NodeFactory(
        flow=flow,
        name="undefined",
        type="sql",
        config={"datasource": datasource.pk, "sql": "select '${ghost}'"},
    )
    from tests.factories import EdgeFactory

    EdgeFactory(flow=flow, upstream=c, downstream=a, branch="true")
    DataSource.objects.filter(pk=datasource.pk).delete()

    res = publish(as_user(owner), flow)
    assert res.status_code == 400
    problems = res.data["problems"]
    assert any("cycle" in m and "a → b → c → a" in m for m in problems["flow"])
    assert any("config.datasource" in m for m in problems["a"])
    assert any("config.sql" in m for m in problems["bad-config"])
    assert any("type" in m and "shell" in m for m in problems["bad-type"])
    assert any("does not exist" in m for m in problems["undefined"])
    assert not FlowVersion.objects.filter(flow=flow).exists()
    flow.refresh_from_db()
    assert flow.status == "draft"


def test_publish_refuses_undefined_variable_and_empty_flow(as_user, owner, flow, datasource):
    res = publish(as_user(owner), flow)
    assert res.status_code == 400 and "no nodes" in res.data["problems"]["flow"][0]
    NodeFactory(
        flow=flow,
        name="q",
        type="sql",
        config={"datasource": datasource.pk, "sql": "select '${day}'"},
    )
    res = publish(as_user(owner), flow)
    assert res.status_code == 400 and "${day}" in res.data["problems"]["q"][0]
    services.flow_update(
        flow=flow, user=owner, variables=[{"name": "day", "type": "time", "format": "yyyyMMdd"}]
    )
    assert publish(as_user(owner), flow).status_code == 200


def test_publish_refuses_reference_to_missing_flow(as_user, owner, flow, tenant):
    other = services.flow_create(tenant=tenant, user=owner, name="upstream flow")
    node = services.node_create(
        flow=flow, user=owner, name="dep", type="dependency_check", config={"flow": other.pk}
    )
    assert node.pk
    other.delete()
    res = publish(as_user(owner), flow)
    assert res.status_code == 400
    assert "dep" in res.data["problems"]


def test_version_is_immutable(as_user, owner, ready_flow):
    publish(as_user(owner), ready_flow)
    version = FlowVersion.objects.get(flow=ready_flow, number=1)
    version.comment = "rewritten"
    with pytest.raises(FlowVersionImmutable):
        version.save()
    assert FlowVersion.objects.get(pk=version.pk).comment == ""
    # No API path writes a version either.
    url = f"/api/v1/flows/{ready_flow.pk}/versions/1/"
    client = as_user(owner)
    assert client.patch(url, {"comment": "x"}, format="json").status_code == 405
    assert client.put(url, {"comment": "x"}, format="json").status_code == 405
    assert client.delete(url).status_code == 405


def test_versions_list_detail_and_diff(as_user, owner, ready_flow):
    client = as_user(owner)
    publish(client, ready_flow)
    load = TaskNode.objects.get(flow=ready_flow, name="load")
    check = TaskNode.objects.get(flow=ready_flow, name="check")
    services.node_update(node=load, user=owner, config={**load.config, "sql": "select 2"})
    extra = services.node_create(flow=ready_flow, user=owner, name="notify", type="noop")
    services.edge_create(
        flow=ready_flow, user=owner, upstream=check.pk, downstream=extra.pk, branch="false"
    )
    services.flow_update(flow=ready_flow, user=owner, error_policy="stop_all")

    diff = client.get(f"/api/v1/flows/{ready_flow.pk}/versions/1/diff/?against=editing")
    assert diff.status_code == 200, diff.data
    body = diff.data
    assert body["empty"] is False
    assert [n["name"] for n in body["nodes"]["added"]] == ["notify"]
    changed = {n["name"]: n["changes"] for n in body["nodes"]["changed"]}
    assert changed["load"] == [{"field": "config.sql", "old": "select 1", "new": "select 2"}]
    assert body["edges"]["added"][0]["downstream_name"] == "notify"
    assert {"field": "error_policy", "old": "complete_running", "new": "stop_all"} in body[
        "configuration"
    ]

    assert publish(client, ready_flow).data == {"version": 2}
    listing = client.get(f"/api/v1/flows/{ready_flow.pk}/versions/").data
    assert [v["number"] for v in listing["results"]] == [2, 1]
    detail = client.get(f"/api/v1/flows/{ready_flow.pk}/versions/2/").data
    assert "snapshot" in detail and detail["created_by"] == owner.pk
    between = client.get(f"/api/v1/flows/{ready_flow.pk}/versions/1/diff/?against=2").data
    assert between["nodes"]["added"][0]["name"] == "notify"
    same = client.get(f"/api/v1/flows/{ready_flow.pk}/versions/2/diff/").data
    assert same["empty"] is True
    assert (
        client.get(f"/api/v1/flows/{ready_flow.pk}/versions/1/diff/?against=9").status_code == 400
    )
    assert client.get(f"/api/v1/flows/{ready_flow.pk}/versions/9/").status_code == 404


def test_unpublish_freeze_unfreeze(as_user, owner, ready_flow):
    client = as_user(owner)
    url = f"/api/v1/flows/{ready_flow.pk}"
    assert client.post(f"{url}/freeze/").status_code == 409  # not published yet
    publish(client, ready_flow)
    res = client.post(f"{url}/freeze/")
    assert (
        res.status_code == 200
        and res.data["is_frozen"] is True
        and res.data["status"] == "published"
    )
    res = client.post(f"{url}/unfreeze/")
    assert res.status_code == 200 and res.data["is_frozen"] is False
    res = client.post(f"{url}/unpublish/")
    assert res.status_code == 200 and res.data["status"] == "unpublished"
    assert client.post(f"{url}/unpublish/").status_code == 409
    assert res.data["published_version"] == 1


def test_snapshot_includes_schedule_and_publish_syncs_beat(as_user, owner, ready_flow):
    from django_celery_beat.models import PeriodicTask

    schedule = ScheduleFactory(
        flow=ready_flow, cron="0 3 * * *", start_date=datetime.date(2024, 1, 1)
    )
    publish(as_user(owner), ready_flow)
    ready_flow.refresh_from_db()
    assert ready_flow.published_version.snapshot["schedule"]["cron"] == "0 3 * * *"
    task = PeriodicTask.objects.get(name=schedule.periodic_task_name)
    assert task.enabled
    as_user(owner).post(f"/api/v1/flows/{ready_flow.pk}/freeze/")
    task.refresh_from_db()
    assert not task.enabled
    assert Schedule.objects.filter(flow=ready_flow).exists()
