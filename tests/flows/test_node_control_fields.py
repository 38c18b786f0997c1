"""A node's trigger rule and enabled flag: saved, validated naming the node, versioned, exported."""

import pytest
import yaml

from flows import services
from flows.choices import TriggerRule
from flows.models import TaskNode
from flows.snapshot import flow_snapshot
from operations.engine import core

pytestmark = pytest.mark.django_db


def test_the_flows_rule_names_are_the_engines():
    assert tuple(TriggerRule.values) == core.TRIGGER_RULES
    assert TriggerRule.ALL_SUCCESS == core.DEFAULT_RULE


def test_node_api_saves_and_shows_rule_and_enabled(as_user, owner, flow):
    client = as_user(owner)
    res = client.post(
        f"/api/v1/flows/{flow.pk}/nodes/",
        {"name": "cleanup", "type": "noop", "trigger_rule": "one_failed", "enabled": False},
        format="json",
    )
    assert res.status_code == 201, res.data
    assert res.data["trigger_rule"] == "one_failed" and res.data["enabled"] is False
    node = TaskNode.objects.get(pk=res.data["id"])
    assert (node.trigger_rule, node.enabled) == ("one_failed", False)
    # Defaults for a node that says nothing.
    plain = client.post(f"/api/v1/flows/{flow.pk}/nodes/", {"name": "p", "type": "noop"})
    assert plain.data["trigger_rule"] == "all_success" and plain.data["enabled"] is True
    # A change is recorded in the node's history.
    res = client.patch(
        f"/api/v1/flows/{flow.pk}/nodes/{node.pk}/", {"trigger_rule": "all_done"}, format="json"
    )
    assert res.status_code == 200, res.data
    assert node.history.first().trigger_rule == "all_done"


def test_unknown_rule_is_400_naming_the_node(as_user, owner, flow):
    client = as_user(owner)
    res = client.post(
        f"/api/v1/flows/{flow.pk}/nodes/",
        {"name": "cleanup", "type": "noop", "trigger_rule": "sometimes"},
        format="json",
    )
    assert res.status_code == 400
    assert "cleanup" in res.data["trigger_rule"][0] and "sometimes" in res.data["trigger_rule"][0]
    res = client.post(
        f"/api/v1/flows/{flow.pk}/nodes/",
        {"name": "x", "type": "noop", "enabled": "maybe"},
        format="json",
    )
    assert res.status_code == 400 and "x" in res.data["enabled"][0]
    res = client.put(
        f"/api/v1/flows/{flow.pk}/graph/",
        {"nodes": [{"name": "alert", "type": "noop", "trigger_rule": "never"}], "edges": []},
        format="json",
    )
    assert res.status_code == 400
    assert "trigger_rule" in str(res.data) and "alert" in str(res.data)


def test_graph_put_snapshot_and_export_carry_the_fields(as_user, owner, flow):
    client = as_user(owner)
    res = client.put(
        f"/api/v1/flows/{flow.pk}/graph/",
        {
            "nodes": [
                {"key": "a", "name": "load", "type": "noop"},
                {"key": "b", "name": "cleanup", "type": "noop", "trigger_rule": "one_failed"},
                {"key": "c", "name": "off", "type": "noop", "enabled": False},
            ],
            "edges": [{"upstream": "a", "downstream": "b"}, {"upstream": "a", "downstream": "c"}],
        },
        format="json",
    )
    assert res.status_code == 200, res.data
    flow.refresh_from_db()
    nodes = {n["name"]: n for n in flow_snapshot(flow)["nodes"]}
    assert nodes["cleanup"]["trigger_rule"] == "one_failed" and nodes["off"]["enabled"] is False
    assert nodes["load"]["trigger_rule"] == "all_success" and nodes["load"]["enabled"] is True
    doc = yaml.safe_load(client.get(f"/api/v1/flows/{flow.pk}/export/?format=yaml").content)
    exported = {n["name"]: n for n in doc["nodes"]}
    assert exported["cleanup"]["trigger_rule"] == "one_failed"
    assert exported["off"]["enabled"] is False
    # Defaults are left out, so documents of flows without them stay as they were.
    assert "trigger_rule" not in exported["load"] and "enabled" not in exported["load"]
    imported = client.post(
        "/api/v1/flows/import/?name=copy",
        data=yaml.safe_dump(doc).encode(),
        content_type="application/yaml",
    )
    assert imported.status_code == 201, imported.data
    copies = {n.name: n for n in TaskNode.objects.filter(flow_id=imported.data["id"])}
    assert copies["cleanup"].trigger_rule == "one_failed" and copies["off"].enabled is False


def test_the_plan_carries_rules_and_disabled_nodes_to_the_engine(owner, flow):
    from operations.plan import parse_snapshot

    a = services.node_create(flow=flow, user=owner, name="a", type="noop", config={})
    b = services.node_create(
        flow=flow, user=owner, name="b", type="noop", config={}, trigger_rule="all_done"
    )
    c = services.node_create(flow=flow, user=owner, name="c", type="noop", config={}, enabled=False)
    plan = parse_snapshot(flow_snapshot(flow))
    assert plan.dag.rule(b.pk) == "all_done" and plan.dag.rule(a.pk) == "all_success"
    assert plan.dag.disabled == {c.pk}
