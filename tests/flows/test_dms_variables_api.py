"""Issue 17 §5-6 through the API: node-level variables (saved, validated, versioned,
exported, previewed), the bizdate base of DMS-style imports, the new dependency_check and
sql_assign fields, and the older dependency_check form still accepted."""

import json

import pytest

from flows import services
from flows.models import TaskNode

pytestmark = pytest.mark.django_db

NODE_VARS = [
    {"name": "ds", "type": "time", "format": "yyyyMMdd", "base": "bizdate"},
    {"name": "region", "type": "constant", "value": "apac"},
]


def test_node_variables_are_saved_shown_and_override_the_flows(as_user, owner, flow):
    client = as_user(owner)
    client.patch(
        f"/api/v1/flows/{flow.pk}/",
        {"variables": [{"name": "region", "type": "constant", "value": "eu"}]},
        format="json",
    )
    res = client.post(
        f"/api/v1/flows/{flow.pk}/nodes/",
        {"name": "tag", "type": "noop", "variables": NODE_VARS},
        format="json",
    )
    assert res.status_code == 201, res.data
    assert res.data["variables"] == NODE_VARS
    detail = client.get(f"/api/v1/flows/{flow.pk}/nodes/{res.data['id']}/").data
    assert detail["variables"] == NODE_VARS

    # The preview renders each node with its own variables over the flow's.
    preview = client.post(
        f"/api/v1/flows/{flow.pk}/preview/",
        {"business_time": "2024-01-15T10:00:00Z"},
        format="json",
    )
    assert preview.status_code == 200, preview.data
    assert preview.data["variables"]["region"] == "eu"


def test_a_reference_defined_only_on_a_node_is_valid_there_and_nowhere_else(
    as_user, owner, flow, datasource
):
    client = as_user(owner)
    sql = {"datasource": datasource.pk, "sql": "select '${ds}', '${region}'"}
    ok = client.post(
        f"/api/v1/flows/{flow.pk}/nodes/",
        {"name": "mine", "type": "sql", "config": sql, "variables": NODE_VARS},
        format="json",
    )
    assert ok.status_code == 201, ok.data
    refused = client.post(
        f"/api/v1/flows/{flow.pk}/nodes/",
        {"name": "other", "type": "sql", "config": sql},
        format="json",
    )
    assert refused.status_code == 400
    assert "undefined variables ${ds}, ${region}" in refused.data["config"][0]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ([{"name": "ds", "type": "time", "format": "yyyyQ"}], "variables[0].format: unknown"),
        ([{"name": "ds", "type": "time", "format": "yyyy", "base": "x"}], "variables[0].base:"),
        ([{"name": "a", "type": "constant"}], "variables[0].value:"),
        ("ds", "variables: must be a list"),
        ([{"name": "v", "type": "constant", "value": "x"}] * 201, "variables: at most 200"),
    ],
)
def test_invalid_node_variables_are_400_naming_the_field(as_user, owner, flow, variables, message):
    res = as_user(owner).post(
        f"/api/v1/flows/{flow.pk}/nodes/",
        {"name": "n", "type": "noop", "variables": variables},
        format="json",
    )
    assert res.status_code == 400
    assert res.data["variables"][0].startswith(message), res.data
    assert not TaskNode.objects.filter(flow=flow).exists()


def test_the_graph_put_names_the_node_whose_variables_are_wrong(as_user, owner, flow):
    res = as_user(owner).put(
        f"/api/v1/flows/{flow.pk}/graph/",
        {
            "nodes": [
                {"name": "good", "type": "noop", "variables": NODE_VARS},
                {"name": "bad", "type": "noop", "variables": [{"name": "1x", "type": "time"}]},
            ],
            "edges": [],
        },
        format="json",
    )
    assert res.status_code == 400
    problems = res.data["problems"]
    assert problems["bad"][0].startswith("variables[0].name: '1x' is not a valid name")
    assert "good" not in problems
    assert not TaskNode.objects.filter(flow=flow).exists()


def test_node_variables_are_versioned_audited_and_diffed(as_user, owner, flow):
    client = as_user(owner)
    node = services.node_create(flow=flow, user=owner, name="tag", type="noop")
    assert client.post(f"/api/v1/flows/{flow.pk}/publish/", {}, format="json").status_code == 200
    res = client.patch(
        f"/api/v1/flows/{flow.pk}/nodes/{node.pk}/", {"variables": NODE_VARS}, format="json"
    )
    assert res.status_code == 200, res.data

    diff = client.get(f"/api/v1/flows/{flow.pk}/versions/1/diff/").data
    [changed] = diff["nodes"]["changed"]
    assert changed["changes"] == [{"field": "variables", "old": [], "new": NODE_VARS}]
    assert client.post(f"/api/v1/flows/{flow.pk}/publish/", {}, format="json").status_code == 200
    snapshot = client.get(f"/api/v1/flows/{flow.pk}/versions/2/").data["snapshot"]
    assert snapshot["nodes"][0]["variables"] == NODE_VARS
    history = client.get(f"/api/v1/flows/{flow.pk}/history/").data["results"]
    assert any(
        any(c["field"] == "variables" for c in entry["changes"])
        for entry in history
        if entry["object_type"] == "node"
    ), history


def test_node_variables_round_trip_through_export_and_import(as_user, owner, flow):
    client = as_user(owner)
    services.node_create(flow=flow, user=owner, name="tag", type="noop", variables=NODE_VARS)
    services.node_create(flow=flow, user=owner, name="plain", type="noop")
    document = client.get(f"/api/v1/flows/{flow.pk}/export/?format=json").json()
    assert document["origin"] == "tributary"
    nodes = {n["name"]: n for n in document["nodes"]}
    assert nodes["tag"]["variables"] == NODE_VARS
    assert "variables" not in nodes["plain"]

    res = client.post("/api/v1/flows/import/?name=copy", document, format="json")
    assert res.status_code == 201, res.data
    copied = TaskNode.objects.get(flow_id=res.data["id"], name="tag")
    assert copied.variables == NODE_VARS


def test_a_dms_document_imports_its_time_variables_on_the_bizdate_base(as_user, owner):
    document = {
        "origin": "dms",
        "name": "from dms",
        "variables": [
            {"name": "ds", "type": "time", "format": "yyyyMMdd", "offset": "-1d"},
            {"name": "hour", "type": "time", "format": "HH", "base": "business_time"},
            {"name": "c", "type": "constant", "value": "x"},
        ],
        "nodes": [
            {
                "name": "n",
                "type": "noop",
                "variables": [{"name": "m", "type": "time", "format": "yyyyMM"}],
            }
        ],
        "edges": [],
    }
    res = as_user(owner).post("/api/v1/flows/import/", document, format="json")
    assert res.status_code == 201, res.data
    assert res.data["variables"] == [
        {"name": "ds", "type": "time", "format": "yyyyMMdd", "offset": "-1d", "base": "bizdate"},
        # A variable that names its base keeps it.
        {"name": "hour", "type": "time", "format": "HH", "base": "business_time"},
        {"name": "c", "type": "constant", "value": "x"},
    ]
    node = TaskNode.objects.get(flow_id=res.data["id"])
    assert node.variables == [{"name": "m", "type": "time", "format": "yyyyMM", "base": "bizdate"}]
    # Our own documents keep the business-time default.
    ours = as_user(owner).post(
        "/api/v1/flows/import/", {**document, "origin": "tributary", "name": "ours"}, format="json"
    )
    assert "base" not in ours.data["variables"][0]


def test_an_unknown_document_origin_is_refused(as_user, owner):
    res = as_user(owner).post(
        "/api/v1/flows/import/",
        {"origin": "airflow", "name": "x", "nodes": [], "edges": []},
        format="json",
    )
    assert res.status_code == 400
    assert "origin: one of tributary, dms" in json.dumps(res.data)


# --------------------------------------------------------------------------- node types


@pytest.fixture
def upstream(tenant, owner):
    other = services.flow_create(tenant=tenant, user=owner, name="feed")
    services.node_create(flow=other, user=owner, name="load", type="noop")
    return other


def test_dependency_check_on_a_node_of_another_flow(as_user, owner, flow, upstream):
    client = as_user(owner)
    config = {"flow": upstream.pk, "node": "load", "cycle": "hour", "offset": -1, "require": "all"}
    res = client.post(
        f"/api/v1/flows/{flow.pk}/nodes/",
        {"name": "wait feed", "type": "dependency_check", "config": config},
        format="json",
    )
    assert res.status_code == 201, res.data
    assert res.data["config"] == config
    res = client.post(
        f"/api/v1/flows/{flow.pk}/nodes/",
        {
            "name": "wait typo",
            "type": "dependency_check",
            "config": {**config, "node": "laod"},
        },
        format="json",
    )
    assert res.status_code == 400
    assert res.data["config"] == [
        f"wait typo.node: Flow {upstream.pk} has no node named 'laod'; its nodes are: load."
    ]


def test_the_older_dependency_form_is_saved_in_the_new_one(as_user, owner, flow, upstream):
    res = as_user(owner).post(
        f"/api/v1/flows/{flow.pk}/nodes/",
        {
            "name": "legacy",
            "type": "dependency_check",
            "config": {"flow": upstream.pk, "business_date_offset_days": -1},
        },
        format="json",
    )
    assert res.status_code == 201, res.data
    assert res.data["config"] == {
        "flow": upstream.pk,
        "cycle": "day",
        "offset": -1,
        "require": "any",
    }


def test_its_own_previous_cycle_but_not_its_own_current_one(as_user, owner, flow):
    client = as_user(owner)
    base = {"flow": flow.pk, "cycle": "day", "require": "latest"}
    res = client.post(
        f"/api/v1/flows/{flow.pk}/nodes/",
        {"name": "yesterday", "type": "dependency_check", "config": {**base, "offset": -1}},
        format="json",
    )
    assert res.status_code == 201, res.data
    res = client.post(
        f"/api/v1/flows/{flow.pk}/nodes/",
        {"name": "today", "type": "dependency_check", "config": {**base, "offset": 0}},
        format="json",
    )
    assert res.status_code == 400
    assert res.data["config"][0].startswith("today.offset: A flow cannot wait for its own run")


def test_sql_assign_both_all_is_400_naming_the_field(as_user, owner, flow, datasource):
    res = as_user(owner).post(
        f"/api/v1/flows/{flow.pk}/nodes/",
        {
            "name": "ids",
            "type": "sql_assign",
            "config": {
                "datasource": datasource.pk,
                "sql": "select id from t",
                "rows": "all",
                "columns": "all",
            },
        },
        format="json",
    )
    assert res.status_code == 400
    assert res.data["config"][0].startswith("ids.columns: Rows and columns cannot both be 'all'")
