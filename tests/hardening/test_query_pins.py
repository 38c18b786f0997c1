"""Query counts of the endpoints config/benchmark/api_scale.py measures, pinned at small scale.

tests/flows/test_query_counts.py pins the flow list for a member who owns flows and for an
admin; these add the other viewers the benchmark measures (a plain member who owns
nothing, a DBA, the owner of a few flows) and the flow detail and history endpoints. Each
number is pinned exactly and must not move when the tenant grows.
"""

import pytest
from guardian.shortcuts import assign_perm

from accounts.choices import Role
from flows import services
from flows.choices import STAKEHOLDER_PERMS
from tests.factories import FlowFactory, MembershipFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db

# ctx (membership) + COUNT + page + stakeholder grants of the page.
LIST_QUERIES = 4
# ctx + the flow + its stakeholders.
DETAIL_QUERIES = 3
# ctx + the flow + COUNT + page of (at, id, source) + the page's rows and their
# predecessors (2 per source on the page) + their users + the names the entries are told
# in (flows, and the people named in changes; at most 4 more, one per kind of name).
HISTORY_QUERIES = 9


@pytest.fixture
def people():
    tenant = TenantFactory(slug="pins", name="Pins")
    users = {}
    for key, role in (
        ("member", Role.MEMBER),
        ("dba", Role.DBA),
        ("few", Role.MEMBER),
        ("busy", Role.MEMBER),
    ):
        users[key] = UserFactory(username=f"pins-{key}")
        MembershipFactory(user=users[key], tenant=tenant, role=role)
    return tenant, users


def grow(tenant, users, count: int) -> None:
    """`count` more flows owned by someone else: a mix of public, granted and invisible."""
    for i in range(count):
        flow = FlowFactory(tenant=tenant, owner=users["busy"], is_public=i % 3 == 0)
        if i % 3 == 1:
            for perm in STAKEHOLDER_PERMS:
                assign_perm(perm, users["member"], flow)


@pytest.mark.parametrize("viewer", ["member", "dba", "few"])
def test_flow_list_query_count_is_pinned(viewer, people, api, django_assert_num_queries):
    tenant, users = people
    for _ in range(2):
        FlowFactory(tenant=tenant, owner=users["few"])
    grow(tenant, users, 3)
    client = api(users[viewer], tenant)
    with django_assert_num_queries(LIST_QUERIES):
        small = client.get("/api/v1/flows/")
    grow(tenant, users, 60)
    with django_assert_num_queries(LIST_QUERIES):
        large = client.get("/api/v1/flows/")
    assert small.status_code == large.status_code == 200
    expected = {"member": 21 + 21, "dba": 65, "few": 2 + 21}[viewer]  # public + own/granted
    assert large.data["count"] == expected
    assert len(large.data["results"]) == min(expected, 50)


def test_flow_detail_and_history_query_counts_are_pinned(people, api, django_assert_num_queries):
    tenant, users = people
    owner = users["member"]
    flow = services.flow_create(tenant=tenant, user=owner, name="pinned")
    client = api(owner, tenant)
    with django_assert_num_queries(DETAIL_QUERIES):
        assert client.get(f"/api/v1/flows/{flow.pk}/").status_code == 200
    for n in range(3):
        services.flow_update(flow=flow, user=owner, description=f"change {n}")
    with django_assert_num_queries(HISTORY_QUERIES):
        small = client.get(f"/api/v1/flows/{flow.pk}/history/", {"page_size": 2})

    # Given a long trail and a tenant grown around the flow, the same page costs the same.
    for n in range(60):
        services.flow_update(flow=flow, user=owner, description=f"more {n}")
    grow(tenant, users, 30)
    with django_assert_num_queries(DETAIL_QUERIES):
        assert client.get(f"/api/v1/flows/{flow.pk}/").status_code == 200
    with django_assert_num_queries(HISTORY_QUERIES):
        large = client.get(f"/api/v1/flows/{flow.pk}/history/", {"page_size": 2})
    assert small.data["count"] < large.data["count"]
    assert [e["object_type"] for e in large.data["results"]] == ["flow", "flow"]
