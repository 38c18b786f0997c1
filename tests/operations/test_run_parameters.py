"""Run parameters through the API: declared on the flow, validated and coerced per run,
frozen into published versions, rendered into node configurations like variables."""

from __future__ import annotations

import datetime as dt

import pytest

from flows.services import flow_publish
from operations.models import FlowRun
from operations.services import runs_create_scheduled
from tests.operations.helpers import latest, script

pytestmark = pytest.mark.django_db

PARAMETERS = [
    {"name": "region", "type": "string", "required": True, "choices": ["eu", "us"]},
    {"name": "limit", "type": "integer", "default": 10},
    {"name": "ratio", "type": "number", "required": False},
    {"name": "full", "type": "boolean", "default": False},
    {"name": "day", "type": "date", "default": "2024-01-01"},
    {"name": "at", "type": "datetime", "required": False},
]


@pytest.fixture
def client(api, member_user):
    return api(member_user)


@pytest.fixture
def flow_id(client):
    res = client.post(
        "/api/v1/flows/",
        {"name": "param flow", "concurrency_policy": "ignore", "parameters": PARAMETERS},
        format="json",
    )
    assert res.status_code == 201, res.content
    flow_id = res.json()["id"]
    res = client.put(
        f"/api/v1/flows/{flow_id}/graph/",
        {
            "nodes": [
                script(
                    "echo",
                    output={"said": "${region}/${limit}/${ratio}/${full}/${day}/${at}/${bizdate}"},
                )
            ],
            "edges": [],
        },
        format="json",
    )
    assert res.status_code == 200, res.content
    return flow_id


def _start(client, flow_id, body):
    return client.post(f"/api/v1/flows/{flow_id}/runs/", body, format="json")


def test_the_flow_api_stores_parameters_in_full_form(client, flow_id):
    body = client.get(f"/api/v1/flows/{flow_id}/").json()

    assert body["parameters"][0] == {
        "name": "region",
        "type": "string",
        "required": True,
        "default": None,
        "choices": ["eu", "us"],
        "description": "",
    }
    assert [p["default"] for p in body["parameters"]] == [None, 10, None, False, "2024-01-01", None]


def test_values_are_coerced_by_type_and_rendered_into_the_nodes(client, flow_id, engine):
    res = engine.call(
        _start,
        client,
        flow_id,
        {
            "mode": "try",
            "parameters": {
                "region": "eu",
                "limit": "25",
                "ratio": "0.5",
                "full": "yes",
                "at": "2024-03-01T08:00:00Z",
            },
        },
    )

    assert res.status_code == 201, res.content
    assert res.json()["parameters"] == {
        "region": "eu",
        "limit": 25,
        "ratio": 0.5,
        "full": True,
        "day": "2024-01-01",
        "at": "2024-03-01T08:00:00+00:00",
    }
    engine.drain()
    run = FlowRun.objects.get(pk=res.json()["id"])
    assert run.status == "succeeded"
    said = latest(run)["echo"].output["said"]
    assert said.startswith("eu/25/0.5/true/2024-01-01/2024-03-01T08:00:00+00:00/")
    detail = client.get(f"/api/v1/runs/{run.pk}/").json()
    assert detail["parameters"]["limit"] == 25


def test_an_optional_parameter_without_a_value_renders_empty(client, flow_id, engine):
    res = engine.call(_start, client, flow_id, {"mode": "try", "parameters": {"region": "us"}})
    engine.drain()

    said = latest(FlowRun.objects.get(pk=res.json()["id"]))["echo"].output["said"]
    assert said.startswith("us/10//false/2024-01-01//")


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({}, "parameters.region"),
        ({"region": "asia"}, "parameters.region"),
        ({"region": "eu", "limit": "ten"}, "parameters.limit"),
        ({"region": "eu", "limit": 1.5}, "parameters.limit"),
        ({"region": "eu", "limit": True}, "parameters.limit"),
        ({"region": "eu", "ratio": "nan"}, "parameters.ratio"),
        ({"region": "eu", "full": "maybe"}, "parameters.full"),
        ({"region": "eu", "day": "2024-02-30"}, "parameters.day"),
        ({"region": "eu", "at": "yesterday"}, "parameters.at"),
        ({"region": "eu", "colour": "red"}, "parameters.colour"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(client, flow_id, parameters, field):
    res = _start(client, flow_id, {"mode": "try", "parameters": parameters})

    assert res.status_code == 400, res.content
    assert field in res.json(), res.json()
    assert not FlowRun.objects.exists()


def test_parameters_must_be_an_object(client, flow_id):
    res = _start(client, flow_id, {"mode": "try", "parameters": ["eu"]})

    assert res.status_code == 400 and "parameters" in res.json()


def test_a_time_range_with_a_missing_parameter_creates_nothing(client, flow_id):
    res = _start(
        client,
        flow_id,
        {"mode": "time_range", "start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z"},
    )
    assert res.status_code == 400


@pytest.mark.parametrize(
    ("declarations", "message"),
    [
        ([{"name": "x", "type": "colour"}], "parameters[0].type"),
        ([{"name": "1x", "type": "string"}], "parameters[0].name"),
        ([{"name": "bizdate", "type": "string"}], "built-in"),
        ([{"name": "x", "type": "string"}, {"name": "x", "type": "integer"}], "duplicate"),
        ([{"name": "x", "type": "integer", "default": "many"}], "parameters[0].default"),
        ([{"name": "x", "type": "integer", "choices": [1, 2], "default": 3}], "one of the choices"),
        ([{"name": "x", "type": "string", "secret": True}], "unknown keys"),
        ({"x": "string"}, "must be a list"),
    ],
)
def test_bad_declarations_are_a_400_naming_parameters(client, declarations, message):
    res = client.post("/api/v1/flows/", {"name": "bad", "parameters": declarations}, format="json")

    assert res.status_code == 400, res.content
    assert message in " ".join(res.json()["parameters"])


def test_a_parameter_named_like_a_flow_variable_is_refused(client, flow_id):
    res = client.patch(
        f"/api/v1/flows/{flow_id}/",
        {"variables": [{"name": "region", "type": "constant", "value": "x"}]},
        format="json",
    )

    assert res.status_code == 400, res.content
    assert "same name" in " ".join(res.json()["parameters"])


def test_a_parameter_named_like_a_node_variable_is_refused(client, flow_id):
    node_vars = [{"name": "limit", "type": "constant", "value": "1"}]
    graph = client.put(
        f"/api/v1/flows/{flow_id}/graph/",
        {"nodes": [{**script("echo"), "variables": node_vars}], "edges": []},
        format="json",
    )
    node = client.post(
        f"/api/v1/flows/{flow_id}/nodes/",
        {"name": "other", "type": "noop", "variables": node_vars},
        format="json",
    )

    assert graph.status_code == 400, graph.content
    assert "node echo has a variable of the same name" in str(graph.json())
    assert node.status_code == 400, node.content
    assert "variables" in node.json()


def test_declaring_a_parameter_a_node_variable_already_uses_is_refused(client, flow_id):
    client.patch(f"/api/v1/flows/{flow_id}/", {"parameters": []}, format="json")
    node_vars = [{"name": "limit", "type": "constant", "value": "1"}]
    res = client.put(
        f"/api/v1/flows/{flow_id}/graph/",
        {"nodes": [{**script("echo"), "variables": node_vars}], "edges": []},
        format="json",
    )
    assert res.status_code == 200, res.content

    res = client.patch(f"/api/v1/flows/{flow_id}/", {"parameters": PARAMETERS}, format="json")

    assert res.status_code == 400, res.content
    assert "node echo" in " ".join(res.json()["parameters"])


def test_an_undeclared_reference_is_still_an_undefined_variable(client, flow_id):
    res = client.put(
        f"/api/v1/flows/{flow_id}/graph/",
        {"nodes": [script("echo", output={"x": "${nowhere}"})], "edges": []},
        format="json",
    )
    assert res.status_code == 400 and "nowhere" in str(res.json())


def test_published_versions_freeze_the_declarations(client, flow_id, member_user, engine):
    # Given version 1 declares `limit` with default 10, and the draft then changes it to 99
    from flows.models import TaskFlow

    flow_publish(flow=TaskFlow.objects.get(pk=flow_id), user=member_user)
    changed = [dict(p, default=99) if p["name"] == "limit" else p for p in PARAMETERS]
    res = client.patch(f"/api/v1/flows/{flow_id}/", {"parameters": changed}, format="json")
    assert res.status_code == 200, res.content

    published = _start(
        client,
        flow_id,
        {
            "mode": "point_in_time",
            "business_time": "2024-01-15T10:00:00Z",
            "parameters": {"region": "eu"},
        },
    )
    draft = _start(client, flow_id, {"mode": "try", "parameters": {"region": "eu"}})

    assert published.json()["version"] == 1 and published.json()["parameters"]["limit"] == 10
    assert draft.json()["parameters"]["limit"] == 99
    version = client.get(f"/api/v1/flows/{flow_id}/versions/1/").json()
    assert [p["name"] for p in version["snapshot"]["parameters"]] == [p["name"] for p in PARAMETERS]


def test_scheduled_runs_use_the_defaults(client, flow_id, member_user, engine):
    # Given a published flow whose only required parameter has a default
    from flows.models import TaskFlow

    declared = [dict(p, default="us") if p["name"] == "region" else p for p in PARAMETERS]
    client.patch(f"/api/v1/flows/{flow_id}/", {"parameters": declared}, format="json")
    flow_publish(flow=TaskFlow.objects.get(pk=flow_id), user=member_user)

    at = dt.datetime(2024, 1, 15, 6, tzinfo=dt.UTC)
    runs = engine.call(runs_create_scheduled, items=[(flow_id, at)])

    run = runs[(flow_id, at)]
    run.refresh_from_db()
    assert run.parameters == {
        "region": "us",
        "limit": 10,
        "ratio": None,
        "full": False,
        "day": "2024-01-01",
        "at": None,
    }


def test_rerun_keeps_the_runs_parameters(client, flow_id, engine):
    res = engine.call(
        _start, client, flow_id, {"mode": "try", "parameters": {"region": "eu", "limit": 3}}
    )
    engine.drain()

    again = engine.call(client.post, f"/api/v1/runs/{res.json()['id']}/rerun/")

    assert again.json()["parameters"]["limit"] == 3


def test_export_and_import_carry_the_parameters(client, flow_id):
    document = client.get(f"/api/v1/flows/{flow_id}/export/?format=json").json()
    assert [p["name"] for p in document["parameters"]] == [p["name"] for p in PARAMETERS]

    res = client.post("/api/v1/flows/import/?name=copy", document, format="json")

    assert res.status_code == 201, res.content
    copy = client.get(f"/api/v1/flows/{res.json()['id']}/").json()
    assert copy["parameters"] == client.get(f"/api/v1/flows/{flow_id}/").json()["parameters"]
