"""subflow and foreach node types: validation, ${item.<column>} filled per item."""

import pytest

from flows import services
from flows.models import TaskNode
from flows.nodes.foreach import item_parameters, item_references

pytestmark = pytest.mark.django_db


def test_item_parameters_keep_types_and_fill_text():
    params = {"code": "${item.code}", "label": "row ${item.code} of ${bizdate}", "n": 3}
    assert item_references(params) == {"item.code"}
    assert item_parameters(params, {"code": 7}) == {
        "code": 7,
        "label": "row 7 of ${bizdate}",
        "n": 3,
    }


def test_foreach_accepts_item_references_and_refuses_both_sources(as_user, owner, flow):
    target = services.flow_create(tenant=flow.tenant, user=owner, name="target")
    client = as_user(owner)
    ok = client.post(
        f"/api/v1/flows/{flow.pk}/nodes/",
        {
            "name": "each",
            "type": "foreach",
            "config": {
                "flow": target.pk,
                "items": [{"code": "a"}],
                "parameters": {"code": "${item.code}"},
            },
        },
        format="json",
    )
    assert ok.status_code == 201, ok.data
    both = client.post(
        f"/api/v1/flows/{flow.pk}/nodes/",
        {
            "name": "each2",
            "type": "foreach",
            "config": {"flow": target.pk, "items": [], "sql": "select 1", "datasource": 1},
        },
        format="json",
    )
    assert both.status_code == 400 and "each2.items" in str(both.data["config"])
    # ${item.x} is a loop's only: elsewhere it is an undefined variable.
    other = client.post(
        f"/api/v1/flows/{flow.pk}/nodes/",
        {
            "name": "sub",
            "type": "subflow",
            "config": {"flow": target.pk, "parameters": {"x": "${item.x}"}},
        },
        format="json",
    )
    assert other.status_code == 400
    assert not TaskNode.objects.filter(name__in=["each2", "sub"]).exists()


def test_subflow_cannot_run_its_own_flow(as_user, owner, flow):
    res = as_user(owner).post(
        f"/api/v1/flows/{flow.pk}/nodes/",
        {"name": "me", "type": "subflow", "config": {"flow": flow.pk}},
        format="json",
    )
    assert res.status_code == 400 and "itself" in str(res.data["config"])
