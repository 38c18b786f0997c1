"""A dependency_check names only flows its flow's owner can see (issue 13 item 8): checked when
the node is saved (graph PUT, node create and PATCH, import), when the flow is published and
when it runs, with one answer for a flow that is hidden and one that does not exist."""

import datetime as dt

import pytest

from flows.models import TaskFlow
from flows.nodes import base
from flows.nodes.base import NodeFailed, unseen_flow
from flows.services.validation import run_validation_context
from tests.factories import FlowFactory
from tests.factories.datasources import Recorder

pytestmark = pytest.mark.django_db

DEP = base.get("dependency_check")


@pytest.fixture
def targets(tenant, other_member):
    """Oscar's flows: one private, one public; neither is Mary's."""
    return {
        "private": FlowFactory(tenant=tenant, owner=other_member, name="secret", is_public=False),
        "public": FlowFactory(tenant=tenant, owner=other_member, name="open", is_public=True),
    }


@pytest.fixture
def mine(tenant, member_user):
    return FlowFactory(tenant=tenant, owner=member_user, name="consumer")


def dep_node(flow_id, name="wait"):
    return {"name": name, "type": "dependency_check", "config": {"flow": flow_id, "offset": -1}}


def graph_put(client, flow, *nodes):
    return client.put(
        f"/api/v1/flows/{flow.pk}/graph/", {"nodes": list(nodes), "edges": []}, format="json"
    )


def test_graph_put_refuses_a_flow_the_owner_cannot_see(api, member_user, mine, targets):
    client = api(member_user)
    hidden = targets["private"].pk
    res = graph_put(client, mine, dep_node(hidden))
    assert res.status_code == 400, res.data
    assert res.data["problems"]["wait"] == [f"config.flow: {unseen_flow(hidden)}"]
    # A flow that does not exist gets the very same words: nothing about the hidden one leaks.
    missing = TaskFlow.objects.order_by("-pk").first().pk + 100
    res = graph_put(client, mine, dep_node(missing))
    assert res.data["problems"]["wait"] == [f"config.flow: {unseen_flow(missing)}"]
    assert not mine.nodes.exists()
    # A public flow is seen by every member.
    assert graph_put(client, mine, dep_node(targets["public"].pk)).status_code == 200


def test_a_stakeholder_owner_may_name_the_flow_they_hold(
    api, member_user, mine, targets, other_member
):
    from flows.services import flow_stakeholders_set

    flow_stakeholders_set(flow=targets["private"], user=other_member, users=[member_user.pk])
    res = graph_put(api(member_user), mine, dep_node(targets["private"].pk))
    assert res.status_code == 200, res.data


def test_node_create_and_patch_refuse_a_flow_the_owner_cannot_see(api, member_user, mine, targets):
    client = api(member_user)
    hidden = targets["private"].pk
    res = client.post(f"/api/v1/flows/{mine.pk}/nodes/", dep_node(hidden), format="json")
    assert res.status_code == 400, res.data
    assert res.data["config"] == [f"wait.flow: {unseen_flow(hidden)}"]
    assert not mine.nodes.exists()

    res = client.post(
        f"/api/v1/flows/{mine.pk}/nodes/", dep_node(targets["public"].pk), format="json"
    )
    assert res.status_code == 201, res.data
    node_id = res.data["id"]
    res = client.patch(
        f"/api/v1/flows/{mine.pk}/nodes/{node_id}/",
        {"config": {"flow": hidden, "offset": -1}},
        format="json",
    )
    assert res.status_code == 400, res.data
    assert res.data["config"] == [f"wait.flow: {unseen_flow(hidden)}"]
    assert mine.nodes.get().config["flow"] == targets["public"].pk


def test_import_cannot_name_a_flow_the_importer_cannot_see(api, member_user, targets):
    client = api(member_user)

    def imported(flow_ref):
        document = {
            "name": "imported",
            "nodes": [{"name": "wait", "type": "dependency_check", "config": {"flow": flow_ref}}],
            "edges": [],
        }
        return client.post("/api/v1/flows/import/", document, format="json")

    hidden = imported({"$flow": "secret"})
    missing = imported({"$flow": "no such flow"})
    assert hidden.status_code == missing.status_code == 400
    assert hidden.data["problems"]["wait"][0] == (
        "config.flow: flow 'secret' does not exist in this tenant"
    )
    assert [m.replace("'secret'", "'no such flow'") for m in hidden.data["problems"]["wait"]] == (
        missing.data["problems"]["wait"]
    )
    by_id = imported(targets["private"].pk)
    assert by_id.status_code == 400
    assert by_id.data["problems"]["wait"] == [f"config.flow: {unseen_flow(targets['private'].pk)}"]
    assert not TaskFlow.objects.filter(name="imported").exists()
    assert imported({"$flow": "open"}).status_code == 201


def test_publish_refuses_a_target_that_became_hidden(api, member_user, mine, targets):
    # Given: the consumer waits on a public flow, saved while it was public
    client = api(member_user)
    target = targets["public"]
    assert graph_put(client, mine, dep_node(target.pk)).status_code == 200
    # When: its owner makes it private
    target.is_public = False
    target.save()
    # Then: publishing names the node and the flow
    res = client.post(f"/api/v1/flows/{mine.pk}/publish/", {}, format="json")
    assert res.status_code == 400, res.data
    assert res.data["problems"]["wait"] == [f"config.flow: {unseen_flow(target.pk)}"]
    assert mine.versions.count() == 0


def test_a_run_fails_the_node_when_its_owner_cannot_see_the_target(tenant, member_user, targets):
    hidden = targets["private"]
    rec = Recorder(
        tenant_id=tenant.pk,
        config={"flow": hidden.pk, "offset": -1, "require": "any"},
        business_time=dt.datetime(2024, 1, 15, tzinfo=dt.UTC),
    )
    rec.ctx.validation = run_validation_context(
        tenant_id=tenant.pk, flow_id=rec.ctx.flow_id, owner_id=member_user.pk
    )
    with pytest.raises(NodeFailed, match="The flow's owner cannot see flow"):
        DEP.execute(rec.ctx)
    # Without the owner's view a node does not guess: it fails too.
    rec.ctx.validation = None
    with pytest.raises(NodeFailed, match="cannot check"):
        DEP.execute(rec.ctx)


def test_an_owner_who_left_the_tenant_sees_no_flow(tenant, member_user, targets, mine):
    from flows.services._common import TenantLookups

    lookups = TenantLookups(tenant.pk, owner_id=member_user.pk)
    assert lookups.flow(targets["public"].pk) is not None
    member_user.memberships.update(is_active=False)
    assert TenantLookups(tenant.pk, owner_id=member_user.pk).flow(targets["public"].pk) is None
