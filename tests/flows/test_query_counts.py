"""List endpoints run a fixed number of SQL queries whatever the number of flows and grants."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from guardian.shortcuts import assign_perm

from flows.choices import STAKEHOLDER_PERMS
from tests.factories import FlowFactory, NodeFactory

pytestmark = pytest.mark.django_db


def make_flows(tenant, owner, stakeholder, count):
    for i in range(count):
        # A mix the visibility filter must handle: owned, public, stakeholder-of, invisible.
        kind = i % 4
        flow = FlowFactory(
            tenant=tenant,
            owner=owner if kind == 0 else stakeholder,
            is_public=kind == 1,
            owner_grants=False,
        )
        if kind == 2:
            for perm in STAKEHOLDER_PERMS:
                assign_perm(perm, owner, flow)
    return sum(1 for i in range(count) if i % 4 != 3)  # flows `owner` may see


def count_queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        res = client.get(url)
    assert res.status_code == 200, res.data
    return len(ctx), res.data


@pytest.mark.parametrize("role", ["member", "admin"])
def test_flow_list_query_count_is_constant(
    role, as_user, tenant, owner, admin_user, stakeholder, django_assert_num_queries
):
    user = owner if role == "member" else admin_user
    client = as_user(user)
    url = "/api/v1/flows/?page_size=200&search=flow"
    make_flows(tenant, owner, stakeholder, 1)
    baseline, first = count_queries(client, url)
    assert first["count"] == 1

    visible = 1 + make_flows(tenant, owner, stakeholder, 499)
    with django_assert_num_queries(baseline):
        res = client.get(url)
    assert res.status_code == 200
    # The member sees owned, public and stakeholder-of flows, the admin all 500.
    assert res.data["count"] == (visible if role == "member" else 500)
    assert len(res.data["results"]) == 200
    assert any(f["stakeholders"] for f in res.data["results"]) or role == "admin"


def test_node_and_edge_lists_are_constant(as_user, owner, flow, django_assert_num_queries):
    client = as_user(owner)
    NodeFactory(flow=flow)
    baseline_nodes, _ = count_queries(client, f"/api/v1/flows/{flow.pk}/nodes/")
    baseline_graph, _ = count_queries(client, f"/api/v1/flows/{flow.pk}/graph/")
    for _ in range(60):
        NodeFactory(flow=flow)
    with django_assert_num_queries(baseline_nodes):
        client.get(f"/api/v1/flows/{flow.pk}/nodes/")
    with django_assert_num_queries(baseline_graph):
        client.get(f"/api/v1/flows/{flow.pk}/graph/")
