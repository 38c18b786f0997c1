"""Nodes, edges and the whole graph: validation, cycles, branches, atomic replacement."""

import pytest

from flows import services
from flows.models import Edge, TaskNode

pytestmark = pytest.mark.django_db


def add(flow, owner, name, type="noop", **config):
    return services.node_create(flow=flow, user=owner, name=name, type=type, config=config)


def test_create_node_and_read_it(as_user, owner, flow, datasource):
    res = as_user(owner).post(
        f"/api/v1/flows/{flow.pk}/nodes/",
        {
            "name": "load",
            "type": "sql",
            "config": {"datasource": datasource.pk, "sql": "select ${bizdate}"},
            "position": {"x": 10, "y": 20.5},
            "retries": 2,
            "retry_interval": 30,
            "timeout": 600,
        },
        format="json",
    )
    assert res.status_code == 201, res.data
    assert res.data["position"] == {"x": 10.0, "y": 20.5}
    assert res.data["retries"] == 2
    listing = as_user(owner).get(f"/api/v1/flows/{flow.pk}/nodes/").data
    assert [n["name"] for n in listing["results"]] == ["load"]
    detail = as_user(owner).get(f"/api/v1/flows/{flow.pk}/nodes/{res.data['id']}/")
    assert detail.status_code == 200 and detail.data["config"]["sql"] == "select ${bizdate}"


def test_unknown_node_type_is_400_naming_type(as_user, owner, flow):
    res = as_user(owner).post(
        f"/api/v1/flows/{flow.pk}/nodes/", {"name": "x", "type": "shell"}, format="json"
    )
    assert res.status_code == 400
    assert "type" in res.data and "shell" in res.data["type"][0]


def test_invalid_config_names_node_and_field(as_user, owner, flow):
    res = as_user(owner).post(
        f"/api/v1/flows/{flow.pk}/nodes/",
        {"name": "load", "type": "sql", "config": {"sql": "select 1"}},
        format="json",
    )
    assert res.status_code == 400
    assert any(msg.startswith("load.datasource") for msg in res.data["config"]), res.data


def test_data_source_of_another_tenant_is_refused(as_user, owner, flow, other_datasource):
    res = as_user(owner).post(
        f"/api/v1/flows/{flow.pk}/nodes/",
        {
            "name": "load",
            "type": "sql",
            "config": {"datasource": other_datasource.pk, "sql": "select 1"},
        },
        format="json",
    )
    assert res.status_code == 400
    assert "load.datasource" in res.data["config"][0]


def test_undefined_variable_is_refused_on_save(as_user, owner, flow, datasource):
    res = as_user(owner).post(
        f"/api/v1/flows/{flow.pk}/nodes/",
        {
            "name": "load",
            "type": "sql",
            "config": {"datasource": datasource.pk, "sql": "select '${nope}'"},
        },
        format="json",
    )
    assert res.status_code == 400
    assert "load" in res.data["config"][0] and "${nope}" in res.data["config"][0]


def test_duplicate_node_name_is_400(as_user, owner, flow):
    add(flow, owner, "a")
    res = as_user(owner).post(
        f"/api/v1/flows/{flow.pk}/nodes/", {"name": "a", "type": "noop"}, format="json"
    )
    assert res.status_code == 400 and "name" in res.data


def test_node_limits_are_400(as_user, owner, flow):
    res = as_user(owner).post(
        f"/api/v1/flows/{flow.pk}/nodes/",
        {"name": "a", "type": "noop", "retries": 10_000},
        format="json",
    )
    assert res.status_code == 400 and "retries" in res.data


def test_patch_and_delete_node(as_user, owner, flow):
    a, b = add(flow, owner, "a"), add(flow, owner, "b")
    services.edge_create(flow=flow, user=owner, upstream=a.pk, downstream=b.pk)
    res = as_user(owner).patch(
        f"/api/v1/flows/{flow.pk}/nodes/{a.pk}/", {"name": "first"}, format="json"
    )
    assert res.status_code == 200 and res.data["name"] == "first"
    assert as_user(owner).delete(f"/api/v1/flows/{flow.pk}/nodes/{b.pk}/").status_code == 204
    assert not Edge.objects.filter(flow=flow).exists()


def test_edge_create_and_delete(as_user, owner, flow):
    a, b = add(flow, owner, "a"), add(flow, owner, "b")
    res = as_user(owner).post(
        f"/api/v1/flows/{flow.pk}/edges/", {"upstream": a.pk, "downstream": b.pk}, format="json"
    )
    assert res.status_code == 201, res.data
    assert res.data["upstream"] == a.pk and res.data["downstream"] == b.pk
    dup = as_user(owner).post(
        f"/api/v1/flows/{flow.pk}/edges/", {"upstream": a.pk, "downstream": b.pk}, format="json"
    )
    assert dup.status_code == 400
    assert flow.edges.count() == 1  # the duplicate was not saved
    assert (
        as_user(owner).delete(f"/api/v1/flows/{flow.pk}/edges/{res.data['id']}/").status_code == 204
    )
    assert not flow.edges.exists()


def test_edge_closing_a_cycle_names_the_cycle(as_user, owner, flow):
    a, b, c = add(flow, owner, "a"), add(flow, owner, "b"), add(flow, owner, "c")
    services.edge_create(flow=flow, user=owner, upstream=a.pk, downstream=b.pk)
    services.edge_create(flow=flow, user=owner, upstream=b.pk, downstream=c.pk)
    res = as_user(owner).post(
        f"/api/v1/flows/{flow.pk}/edges/", {"upstream": c.pk, "downstream": a.pk}, format="json"
    )
    assert res.status_code == 400
    assert "c → a → b → c" in str(res.data)
    assert Edge.objects.filter(flow=flow).count() == 2


def test_self_loop_and_foreign_node_are_refused(as_user, owner, flow, tenant, admin_user):
    a = add(flow, owner, "a")
    other = services.flow_create(tenant=tenant, user=owner, name="other")
    foreign = add(other, owner, "x")
    res = as_user(owner).post(
        f"/api/v1/flows/{flow.pk}/edges/", {"upstream": a.pk, "downstream": a.pk}, format="json"
    )
    assert res.status_code == 400
    res = as_user(owner).post(
        f"/api/v1/flows/{flow.pk}/edges/",
        {"upstream": a.pk, "downstream": foreign.pk},
        format="json",
    )
    assert res.status_code == 400 and "downstream" in res.data


def test_branch_labels_follow_the_node_type(as_user, owner, flow):
    cond = add(flow, owner, "check", type="condition", mode="expression", expression="1 > 0")
    yes, no = add(flow, owner, "yes"), add(flow, owner, "no")
    client = as_user(owner)
    url = f"/api/v1/flows/{flow.pk}/edges/"
    missing = client.post(url, {"upstream": cond.pk, "downstream": yes.pk}, format="json")
    assert missing.status_code == 400 and "branch" in missing.data
    assert (
        client.post(
            url, {"upstream": cond.pk, "downstream": yes.pk, "branch": "true"}, format="json"
        ).status_code
        == 201
    )
    assert (
        client.post(
            url, {"upstream": cond.pk, "downstream": no.pk, "branch": "false"}, format="json"
        ).status_code
        == 201
    )
    stray = client.post(
        url, {"upstream": yes.pk, "downstream": no.pk, "branch": "true"}, format="json"
    )
    assert stray.status_code == 400 and "branch" in stray.data


# --------------------------------------------------------------------------- graph


def graph_of(client, flow):
    res = client.get(f"/api/v1/flows/{flow.pk}/graph/")
    assert res.status_code == 200
    return res.data


def test_graph_put_creates_updates_and_deletes(as_user, owner, flow):
    a, b = add(flow, owner, "a"), add(flow, owner, "b")
    services.edge_create(flow=flow, user=owner, upstream=a.pk, downstream=b.pk)
    client = as_user(owner)
    res = client.put(
        f"/api/v1/flows/{flow.pk}/graph/",
        {
            "nodes": [
                {"id": a.pk, "name": "a", "type": "noop", "position": {"x": 5, "y": 6}},
                {"key": "k1", "name": "c", "type": "noop"},
                {"name": "d", "type": "noop"},
            ],
            "edges": [
                {"upstream": a.pk, "downstream": "k1"},
                {"upstream": "k1", "downstream": "d"},
            ],
        },
        format="json",
    )
    assert res.status_code == 200, res.data
    names = {n["name"]: n for n in res.data["nodes"]}
    assert set(names) == {"a", "c", "d"}
    assert names["a"]["id"] == a.pk and names["a"]["position"] == {"x": 5.0, "y": 6.0}
    assert res.data["keys"] == {"k1": names["c"]["id"]}
    pairs = {(e["upstream"], e["downstream"]) for e in res.data["edges"]}
    assert pairs == {(a.pk, names["c"]["id"]), (names["c"]["id"], names["d"]["id"])}
    assert not TaskNode.objects.filter(pk=b.pk).exists()
    # b's deletion left history behind.
    assert TaskNode.history.filter(id=b.pk, history_type="-").exists()


def test_graph_put_swapping_names(as_user, owner, flow):
    a, b = add(flow, owner, "a"), add(flow, owner, "b")
    res = as_user(owner).put(
        f"/api/v1/flows/{flow.pk}/graph/",
        {
            "nodes": [
                {"id": a.pk, "name": "b", "type": "noop"},
                {"id": b.pk, "name": "a", "type": "noop"},
            ],
            "edges": [],
        },
        format="json",
    )
    assert res.status_code == 200, res.data
    assert TaskNode.objects.get(pk=a.pk).name == "b" and TaskNode.objects.get(pk=b.pk).name == "a"


def test_refused_graph_put_lists_every_problem_and_changes_nothing(
    as_user, owner, flow, datasource
):
    a, b = add(flow, owner, "a"), add(flow, owner, "b")
    services.edge_create(flow=flow, user=owner, upstream=a.pk, downstream=b.pk)
    client = as_user(owner)
    before = graph_of(client, flow)
    res = client.put(
        f"/api/v1/flows/{flow.pk}/graph/",
        {
            "nodes": [
                {"id": a.pk, "name": "a2", "type": "noop"},
                {"key": "x", "name": "x", "type": "shell"},
                {"key": "y", "name": "y", "type": "sql", "config": {"datasource": datasource.pk}},
                {"key": "z", "name": "z", "type": "noop"},
                {"key": "w", "name": "w", "type": "noop"},
            ],
            "edges": [
                {"upstream": "a2", "downstream": "z"},
                {"upstream": "z", "downstream": "w"},
                {"upstream": "w", "downstream": "a2"},
                {"upstream": "a2", "downstream": "ghost"},
            ],
        },
        format="json",
    )
    assert res.status_code == 400
    problems = res.data["problems"]
    assert any("type" in m and "shell" in m for m in problems["x"])
    assert any(m.startswith("config.sql") for m in problems["y"])
    assert any("a2 → z → w → a2" in m for m in problems["flow"])
    assert any("ghost" in m for m in problems["flow"])
    # Nothing of it was written.
    assert graph_of(client, flow) == before
    assert TaskNode.objects.filter(flow=flow).count() == 2


def test_graph_put_cycle_is_refused_atomically(as_user, owner, flow):
    a, b = add(flow, owner, "a"), add(flow, owner, "b")
    client = as_user(owner)
    before = graph_of(client, flow)
    res = client.put(
        f"/api/v1/flows/{flow.pk}/graph/",
        {
            "nodes": [
                {"id": a.pk, "name": "a", "type": "noop"},
                {"id": b.pk, "name": "b", "type": "noop"},
                {"key": "n", "name": "new", "type": "noop"},
            ],
            "edges": [
                {"upstream": a.pk, "downstream": b.pk},
                {"upstream": b.pk, "downstream": "n"},
                {"upstream": "n", "downstream": a.pk},
            ],
        },
        format="json",
    )
    assert res.status_code == 400
    assert "a → b → new → a" in res.data["problems"]["flow"][0]
    assert graph_of(client, flow) == before


def test_graph_put_rejects_node_id_of_another_flow(as_user, owner, flow, tenant):
    other = services.flow_create(tenant=tenant, user=owner, name="other")
    foreign = add(other, owner, "x")
    res = as_user(owner).put(
        f"/api/v1/flows/{flow.pk}/graph/",
        {"nodes": [{"id": foreign.pk, "name": "x", "type": "noop"}], "edges": []},
        format="json",
    )
    assert res.status_code == 400
    assert TaskNode.objects.get(pk=foreign.pk).flow_id == other.pk


def test_graph_put_checks_variables_against_upstream_outputs(as_user, owner, flow, datasource):
    nodes = [
        {
            "key": "q",
            "name": "count",
            "type": "sql_assign",
            "config": {"datasource": datasource.pk, "sql": "select 1 as n"},
        },
        {
            "key": "c",
            "name": "check",
            "type": "condition",
            "config": {"mode": "expression", "expression": "${n} > 0"},
        },
    ]
    client = as_user(owner)
    url = f"/api/v1/flows/{flow.pk}/graph/"
    # Without the edge, ${n} has no upstream that exports it.
    refused = client.put(url, {"nodes": nodes, "edges": []}, format="json")
    assert refused.status_code == 400
    assert "${n}" in refused.data["problems"]["check"][0]
    ok = client.put(
        url, {"nodes": nodes, "edges": [{"upstream": "q", "downstream": "c"}]}, format="json"
    )
    assert ok.status_code == 200, ok.data


def test_graph_put_malformed_payload_is_400(as_user, owner, flow):
    res = as_user(owner).put(
        f"/api/v1/flows/{flow.pk}/graph/", {"nodes": [{"type": "noop"}]}, format="json"
    )
    assert res.status_code == 400
    assert "nodes" in res.data or "edges" in res.data
