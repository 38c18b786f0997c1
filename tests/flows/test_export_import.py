"""Flows as code: export → import (same or another tenant) → export is identical."""

import datetime
import json

import pytest
import yaml

from flows import services
from flows.models import DataSource, TaskFlow
from tests.factories import ScheduleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rich_flow(flow, owner, datasource, tenant):
    target = DataSource.objects.create(
        tenant=tenant, name="lake", engine="sqlite", database="/tmp/lake.db"
    )
    upstream = services.flow_create(tenant=tenant, user=owner, name="upstream feed")
    services.flow_update(
        flow=flow,
        user=owner,
        description="moves orders",
        business_scenario="sales",
        is_public=True,
        error_policy="complete_unrelated",
        concurrency_policy="parallel_same_node",
        variables=[
            {"name": "day", "type": "time", "format": "yyyyMMdd", "offset": "-1d"},
            {"name": "region", "type": "constant", "value": "eu"},
        ],
        notifications={"emails": ["ops@example.com"], "on_success": True},
    )
    nodes = {
        "wait for feed": ("dependency_check", {"flow": upstream.pk}),
        "count": (
            "sql_assign",
            {"datasource": datasource.pk, "sql": "select count(*) as n from t where d='${day}'"},
        ),
        "has rows": ("condition", {"mode": "expression", "expression": "${n} > 0"}),
        "copy": (
            "data_sync",
            {
                "source": datasource.pk,
                "query": "select * from t",
                "target": target.pk,
                "table": "t_${region}",
                "mode": "append",
            },
        ),
        "skip": ("noop", {}),
    }
    made = {}
    for i, (name, (type_, config)) in enumerate(nodes.items()):
        made[name] = services.node_create(
            flow=flow,
            user=owner,
            name=name,
            type=type_,
            config=config,
            position_x=i * 100.0,
            position_y=50.0,
            retries=i,
            timeout=900,
        )
    services.edge_create(
        flow=flow, user=owner, upstream=made["wait for feed"].pk, downstream=made["count"].pk
    )
    services.edge_create(
        flow=flow, user=owner, upstream=made["count"].pk, downstream=made["has rows"].pk
    )
    services.edge_create(
        flow=flow,
        user=owner,
        upstream=made["has rows"].pk,
        downstream=made["copy"].pk,
        branch="true",
    )
    services.edge_create(
        flow=flow,
        user=owner,
        upstream=made["has rows"].pk,
        downstream=made["skip"].pk,
        branch="false",
    )
    ScheduleFactory(
        flow=flow,
        cron="30 2 * * 1,4",
        start_date=datetime.date(2024, 1, 1),
        timezone="Europe/Paris",
    )
    return flow


def export(client, flow, fmt="yaml"):
    res = client.get(f"/api/v1/flows/{flow.pk}/export/?format={fmt}")
    assert res.status_code == 200, res.content
    return res.content.decode()


def test_export_references_data_sources_by_name_and_has_no_secret(
    as_user, owner, rich_flow, datasource
):
    text = export(as_user(owner), rich_flow)
    doc = yaml.safe_load(text)
    copy_node = next(n for n in doc["nodes"] if n["name"] == "copy")
    assert copy_node["config"]["source"] == {"$datasource": "warehouse"}
    assert copy_node["config"]["target"] == {"$datasource": "lake"}
    wait_node = next(n for n in doc["nodes"] if n["name"] == "wait for feed")
    assert wait_node["config"]["flow"] == {"$flow": "upstream feed"}
    assert {"upstream": "has rows", "downstream": "copy", "branch": "true"} in doc["edges"]
    assert doc["schedule"]["cron"] == "30 2 * * 1,4"
    assert "s3cret" not in text and "password" not in text
    assert "id:" not in text  # no database ids


def test_round_trip_same_tenant_is_identical(as_user, owner, rich_flow):
    client = as_user(owner)
    for fmt, content_type in (("yaml", "application/yaml"), ("json", "application/json")):
        first = export(client, rich_flow, fmt)
        res = client.post(
            f"/api/v1/flows/import/?name=copy-{fmt}", data=first.encode(), content_type=content_type
        )
        assert res.status_code == 201, res.data
        imported = TaskFlow.objects.get(pk=res.data["id"])
        assert imported.name == f"copy-{fmt}" and imported.owner_id == owner.pk
        second = export(client, imported, fmt)
        assert second.replace(f"copy-{fmt}", rich_flow.name) == first


def test_round_trip_into_another_tenant_with_same_named_sources(
    api, as_user, owner, rich_flow, outsider, other_tenant
):
    first = export(as_user(owner), rich_flow)
    client = api(outsider, other_tenant)
    # Missing data sources and flow are reported by name, node by node.
    refused = client.post("/api/v1/flows/import/", {"document": first}, format="json")
    assert refused.status_code == 400
    problems = refused.data["problems"]
    assert any("'warehouse'" in m for m in problems["count"])
    assert any("'upstream feed'" in m for m in problems["wait for feed"])
    assert not TaskFlow.objects.filter(tenant=other_tenant).exists()

    for name in ("warehouse", "lake"):
        DataSource.objects.create(
            tenant=other_tenant, name=name, engine="sqlite", database=f"/tmp/{name}-2.db"
        )
    services.flow_create(tenant=other_tenant, user=outsider, name="upstream feed")
    res = client.post("/api/v1/flows/import/", {"document": first}, format="json")
    assert res.status_code == 201, res.data
    imported = TaskFlow.objects.get(pk=res.data["id"])
    assert imported.tenant_id == other_tenant.pk
    second = client.get(f"/api/v1/flows/{imported.pk}/export/?format=yaml").content.decode()
    assert second == first


def test_import_json_body_document(as_user, owner, rich_flow):
    client = as_user(owner)
    doc = json.loads(export(client, rich_flow, "json"))
    doc["name"] = "from json body"
    res = client.post("/api/v1/flows/import/", doc, format="json")
    assert res.status_code == 201, res.data
    assert res.data["name"] == "from json body"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"document": "nodes: [unclosed"}, "document"),
        ({"document": "- just a list"}, "document"),
        ({"document": "name: x\nnodes: 5"}, "document"),
        ({"document": "name: x\nsurprise: 1"}, "document"),
        ({"document": "name: x\nnodes: [{name: a}]"}, "document"),
    ],
)
def test_invalid_documents_are_400(as_user, owner, flow, body, field):
    res = as_user(owner).post("/api/v1/flows/import/", body, format="json")
    assert res.status_code == 400, res.data
    assert field in res.data


def test_import_validates_like_publish(as_user, owner, flow):
    document = {
        "name": "broken",
        "variables": [],
        "nodes": [
            {"name": "a", "type": "noop"},
            {"name": "b", "type": "shell"},
            {
                "name": "c",
                "type": "condition",
                "config": {"mode": "expression", "expression": "${x} > 1"},
            },
        ],
        "edges": [
            {"upstream": "a", "downstream": "c"},
            {"upstream": "c", "downstream": "a", "branch": "true"},
        ],
    }
    res = as_user(owner).post("/api/v1/flows/import/", document, format="json")
    assert res.status_code == 400
    assert "b" in res.data["problems"] and "flow" in res.data["problems"]
    assert not TaskFlow.objects.filter(name="broken").exists()


def test_import_name_clash_is_400(as_user, owner, flow):
    res = as_user(owner).post(
        "/api/v1/flows/import/", {"name": flow.name, "nodes": [], "edges": []}, format="json"
    )
    assert res.status_code == 400 and "name" in res.data


def test_yaml_aliases_and_huge_bodies_are_refused_not_crashing(as_user, owner):
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nname: x\nnodes: [*b]\n'
    res = as_user(owner).post("/api/v1/flows/import/", {"document": bomb}, format="json")
    assert res.status_code == 400 and "document" in res.data
    res = as_user(owner).post(
        "/api/v1/flows/import/", data=bomb.encode(), content_type="application/yaml"
    )
    assert res.status_code == 400
    res = as_user(owner).post("/api/v1/flows/import/", {"document": "x" * 3_000_000}, format="json")
    assert res.status_code == 413
