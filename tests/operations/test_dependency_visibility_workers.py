"""On real workers, a dependency_check whose target the run's owner can no longer see fails
with a node error naming it, instead of telling whether the hidden flow succeeded."""

import pytest

from flows.models import TaskFlow
from flows.nodes.base import unseen_flow
from operations.models import FlowRun, NodeRun
from tests.factories import FlowFactory
from tests.integration.workers import wait_for

pytestmark = pytest.mark.integration

TERMINAL = {"succeeded", "failed", "stopped", "skipped"}


def test_a_dependency_on_a_flow_that_became_hidden_fails_the_node(
    celery_workers, api, tenant, member_user, other_member
):
    # Given: Mary's flow waits on Oscar's public flow, published while it was public
    target = FlowFactory(tenant=tenant, owner=other_member, name="oscar's", is_public=True)
    client = api(member_user)
    consumer = client.post("/api/v1/flows/", {"name": "consumer"}, format="json").json()["id"]
    res = client.put(
        f"/api/v1/flows/{consumer}/graph/",
        {
            "nodes": [
                {
                    "name": "wait",
                    "type": "dependency_check",
                    "config": {"flow": target.pk, "require": "any", "poll_s": 1, "timeout_s": 60},
                }
            ],
            "edges": [],
        },
        format="json",
    )
    assert res.status_code == 200, res.content
    assert client.post(f"/api/v1/flows/{consumer}/publish/", {}, format="json").status_code == 200
    # When: Oscar makes his flow private, then Mary's flow runs
    TaskFlow.objects.filter(pk=target.pk).update(is_public=False)
    res = client.post(
        f"/api/v1/flows/{consumer}/runs/",
        {"mode": "point_in_time", "business_time": "2024-01-15T10:00:00Z"},
        format="json",
    )
    assert res.status_code == 201, res.content
    run_id = res.json()["id"]

    def finished():
        run = FlowRun.objects.get(pk=run_id)
        return run if run.status in TERMINAL else None

    # Then: the run fails at once (no polling until the timeout) with the node's error
    run = wait_for(finished, timeout=45, what=f"run {run_id} to finish")
    node = NodeRun.objects.get(run_id=run_id, node_name="wait", is_latest=True)
    assert run.status == "failed"
    assert node.status == "failed"
    assert unseen_flow(target.pk) in node.error
    assert node.defer_count == 0
