"""POST /flows/{id}/runs/ with nodes or from_node: a try run of some nodes (no workers)."""

import pytest

from tests.factories import chain_flow

pytestmark = pytest.mark.django_db


def test_node_scoped_try_run_through_the_api(api, tenant, admin_user, engine):
    flow, nodes = chain_flow(tenant=tenant, owner=admin_user, length=3)
    client = api(admin_user, tenant)
    res = client.post(
        f"/api/v1/flows/{flow.pk}/runs/",
        {"mode": "try", "from_node": nodes["n2"].pk},
        format="json",
    )
    assert res.status_code == 201, res.data
    assert res.data["node_scope"] == [nodes["n2"].pk, nodes["n3"].pk]
    shown = {nr["node_name"]: nr["status"] for nr in res.data["node_runs"]}
    assert shown == {"n1": "not_run", "n2": "queued", "n3": "pending"}
    refused = client.post(
        f"/api/v1/flows/{flow.pk}/runs/",
        {"mode": "point_in_time", "business_time": "2024-01-15T00:00:00Z", "nodes": [1]},
        format="json",
    )
    assert refused.status_code == 400 and "nodes" in refused.data
    refused = client.post(
        f"/api/v1/flows/{flow.pk}/runs/", {"mode": "try", "nodes": ["x"]}, format="json"
    )
    assert refused.status_code == 400 and "nodes" in refused.data
