"""Odd input answers 400 naming the field, never 500 (issue 13 items 11 and 12).

The text rules live in the shared input layer (accounts/api/parsers.py: every JSON, form and
multipart body, and flows.exporting.parse for YAML documents); the graph limits in the
flow services (checked before any other work on a graph PUT or an import).
"""

import json

import pytest

from flows.models import TaskFlow
from flows.services import MAX_EDGES, MAX_NODES
from scheduling.models import Schedule
from tests.factories import FlowFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(member_user):
    return member_user


@pytest.fixture
def flow(tenant, owner):
    return FlowFactory(tenant=tenant, owner=owner, name="mine")


@pytest.fixture
def client(api, owner):
    return api(owner)


def post_import(client, body, **kw):
    return client.post("/api/v1/flows/import/", body, format="json", **kw)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"document": {"name": "as object", "nodes": 5}}, "document"),
        ({"document": ["a", "list"]}, "document"),
        ({"document": 42}, "document"),
        ({"document": None}, "document"),
        ({"document": True}, "document"),
        ({"name": 7, "nodes": []}, "document"),
        ({"nodes": [], "edges": []}, "document"),
        ({"name": "x", "nodes": [{"name": "a"}]}, "document"),
        ({"name": "x", "nodes": [], "edges": [{"upstream": 1}]}, "document"),
        ({"document": "name: x", "name": ["not", "text"]}, "name"),
        ({"name": "x", "nodes": [], "schedule": 5}, "document"),
    ],
)
def test_small_odd_import_bodies_are_400(client, body, field):
    res = post_import(client, body)
    assert res.status_code == 400, (res.status_code, res.content)
    assert field in res.json()


def test_a_document_given_as_an_object_is_imported(client):
    res = post_import(client, {"document": {"name": "as object", "nodes": [], "edges": []}})
    assert res.status_code == 201, res.content
    assert TaskFlow.objects.filter(name="as object").exists()


NUL = "a\u0000b"
SURROGATE = "\ud800"


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "lone-surrogate"])
def test_unstorable_text_in_a_node_config_or_variables_is_400_naming_the_field(client, flow, bad):
    # A raw JSON body: a lone surrogate cannot even be encoded by the test client's encoder.
    def send(method, url, payload):
        raw = json.dumps(payload)  # \\ud800 and \\u0000 stay escaped in the JSON text
        return getattr(client, method)(url, data=raw, content_type="application/json")

    base = f"/api/v1/flows/{flow.pk}"
    res = send("post", f"{base}/nodes/", {"name": "n", "type": "noop", "config": {"x": bad}})
    assert res.status_code == 400, res.content
    assert "config" in res.json()
    assert "config.x" in res.json()["config"][0]

    res = send(
        "patch", f"{base}/", {"variables": [{"name": "v", "type": "constant", "value": bad}]}
    )
    assert res.status_code == 400, res.content
    assert res.json()["variables"][0].startswith("variables[0].value: ")

    res = send(
        "put",
        f"{base}/graph/",
        {"nodes": [{"name": "n", "type": "noop", "variables": [{"name": bad}]}], "edges": []},
    )
    assert res.status_code == 400, res.content
    assert "nodes[0].variables[0].name" in res.json()["nodes"][0]
    # A key is text too.
    res = send("post", f"{base}/nodes/", {"name": "n", "type": "noop", "config": {bad: 1}})
    assert res.status_code == 400 and "config" in res.json()
    assert not flow.nodes.exists()


def test_nul_in_a_yaml_document_is_400(client):
    document = 'name: x\nnodes:\n  - {name: a, type: noop, config: {s: "a\\0b"}}\n'
    res = post_import(client, {"document": document})
    assert res.status_code == 400, res.content
    assert "nodes[0].config.s" in res.json()["document"][0]
    res = client.post(
        "/api/v1/flows/import/", data=document.encode(), content_type="application/yaml"
    )
    assert res.status_code == 400 and "document" in res.json()


def test_nul_in_a_form_field_is_400(client):
    res = client.post("/api/v1/flows/import/", {"document": "name: a\x00b"}, format="multipart")
    assert res.status_code == 400, res.content
    assert "document" in res.json()


@pytest.mark.parametrize("depth", [100, 5000])
def test_deeply_nested_yaml_and_json_are_400(client, depth):
    nested = "[" * depth + "]" * depth
    res = post_import(
        client, {"document": f"name: deep\nnodes: []\nedges: []\ndescription: {nested}"}
    )
    assert res.status_code == 400, res.content
    assert "document" in res.json()
    res = client.post(
        "/api/v1/flows/import/",
        data=f'{{"name": "deep", "nodes": {nested}}}',
        content_type="application/json",
    )
    assert res.status_code == 400, res.content


@pytest.mark.parametrize(
    "schedule, field",
    [
        ({"cron": 5}, "cron"),
        ({"cron": "0 0 * * *", "timezone": ["UTC"]}, "timezone"),
        ({"cron": "0 0 * * *", "start_date": 20240101}, "start_date"),
        ({"cron": "0 0 * * *", "end_date": {"y": 2024}}, "end_date"),
        ({"kind": ["daily"]}, "kind"),
        ({"cron": "0 0 * * *", "start_date": "2024-13-40"}, "dates"),
    ],
)
def test_a_yaml_schedule_with_wrong_types_is_400_naming_the_field(client, schedule, field):
    document = {"name": "scheduled", "nodes": [{"name": "a", "type": "noop"}], "edges": []}
    document["schedule"] = schedule
    res = post_import(client, {"document": json.dumps(document)})
    assert res.status_code == 400, res.content
    assert any(field in message for message in res.json()["schedule"])
    assert not TaskFlow.objects.filter(name="scheduled").exists()
    assert not Schedule.objects.exists()


def test_patch_of_a_partial_position_moves_one_axis(client, flow):
    res = client.post(
        f"/api/v1/flows/{flow.pk}/nodes/",
        {"name": "n", "type": "noop", "position": {"x": 5, "y": 6}},
        format="json",
    )
    node = res.json()["id"]
    res = client.patch(
        f"/api/v1/flows/{flow.pk}/nodes/{node}/", {"position": {"y": 3}}, format="json"
    )
    assert res.status_code == 200, res.content
    assert res.json()["position"] == {"x": 5.0, "y": 3.0}


def chain(n):
    nodes = [{"name": f"n{i}", "type": "noop"} for i in range(n)]
    edges = [{"upstream": f"n{i}", "downstream": f"n{i + 1}"} for i in range(n - 1)]
    return nodes, edges


def test_a_graph_over_the_limits_is_refused_naming_the_field(client, flow):
    nodes, edges = chain(MAX_NODES + 1)
    res = client.put(f"/api/v1/flows/{flow.pk}/graph/", {"nodes": nodes, "edges": edges})
    assert res.status_code == 400 and "nodes" in res.json()
    many_edges = [{"upstream": "a", "downstream": "b"}] * (MAX_EDGES + 1)
    res = client.put(f"/api/v1/flows/{flow.pk}/graph/", {"nodes": nodes[:2], "edges": many_edges})
    assert res.status_code == 400 and "edges" in res.json()
    res = post_import(client, {"name": "big", "nodes": nodes, "edges": edges})
    assert res.status_code == 400 and "nodes" in res.json()
    assert not flow.nodes.exists()


def test_the_graph_service_refuses_over_the_limit_before_validating(flow, owner, monkeypatch):
    # The service is the rule's home (the serializer only repeats it for its own callers):
    # no node of an oversized graph is validated.
    from django.core.exceptions import ValidationError

    from flows.services import graph_replace
    from flows.services import validation as v

    def boom(**_kw):
        raise AssertionError("validated an oversized graph")

    monkeypatch.setattr(v, "graph_problems", boom)
    nodes, edges = chain(MAX_NODES + 1)
    with pytest.raises(ValidationError) as exc:
        graph_replace(flow=flow, user=owner, nodes=nodes, edges=edges)
    assert "nodes" in exc.value.message_dict


def test_a_nul_in_a_query_parameter_is_400(client, flow):
    res = client.get("/api/v1/flows/?search=a%00b")
    assert res.status_code == 400, res.content
    assert "search" in res.json()
