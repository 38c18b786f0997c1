"""Variables preview: what each node's configuration becomes for a chosen business time."""

import pytest

from flows import services
from tests.factories import NodeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def wired(flow, owner, datasource):
    services.flow_update(
        flow=flow,
        user=owner,
        variables=[
            {"name": "month", "type": "time", "format": "yyyy-MM", "offset": "-1M"},
            {"name": "region", "type": "constant", "value": "eu"},
        ],
    )
    count = services.node_create(
        flow=flow,
        user=owner,
        name="count",
        type="sql_assign",
        config={
            "datasource": datasource.pk,
            "sql": "select count(*) as n from t_${region} where m = '${month}'",
        },
    )
    check = services.node_create(
        flow=flow,
        user=owner,
        name="check",
        type="condition",
        config={"mode": "expression", "expression": "${n} > 0 and '${bizdate}' != ''"},
    )
    services.edge_create(flow=flow, user=owner, upstream=count.pk, downstream=check.pk)
    return flow, count, check


def test_preview_resolves_variables_and_renders_configs(as_user, owner, wired):
    flow, count, check = wired
    res = as_user(owner).post(
        f"/api/v1/flows/{flow.pk}/preview/",
        {"business_time": "2024-03-01T00:30:00Z"},
        format="json",
    )
    assert res.status_code == 200, res.data
    assert res.data["variables"]["bizdate"] == "2024-02-29"
    assert res.data["variables"]["month"] == "2024-02"
    nodes = {n["name"]: n for n in res.data["nodes"]}
    assert nodes["count"]["config"]["sql"] == "select count(*) as n from t_eu where m = '2024-02'"
    # Upstream outputs are known only at run time: they stay as placeholders, not undefined.
    assert nodes["check"]["config"]["expression"] == "${n} > 0 and '2024-02-29' != ''"
    assert nodes["check"]["undefined"] == [] and nodes["check"]["upstream_outputs"] == ["n"]


def test_preview_one_node_lists_undefined(as_user, owner, wired):
    flow, _count, _check = wired
    stray = NodeFactory(flow=flow, name="stray", type="noop", config={"note": "${nowhere}"})
    res = as_user(owner).post(
        f"/api/v1/flows/{flow.pk}/preview/",
        {"business_time": "2024-03-01T00:30:00Z", "node": stray.pk},
        format="json",
    )
    assert res.status_code == 200
    assert [n["name"] for n in res.data["nodes"]] == ["stray"]
    assert res.data["nodes"][0]["undefined"] == ["nowhere"]


def test_preview_input_errors_name_the_field(as_user, owner, wired, other_tenant, outsider):
    flow, _count, _check = wired
    url = f"/api/v1/flows/{flow.pk}/preview/"
    res = as_user(owner).post(url, {"business_time": "soon"}, format="json")
    assert res.status_code == 400 and "business_time" in res.data
    foreign = services.node_create(
        flow=services.flow_create(tenant=other_tenant, user=outsider, name="f"),
        user=outsider,
        name="x",
        type="noop",
    )
    res = as_user(owner).post(
        url, {"business_time": "2024-03-01T00:00:00Z", "node": foreign.pk}, format="json"
    )
    assert res.status_code == 400 and "node" in res.data
