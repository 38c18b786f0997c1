"""Snapshots and their diff, as pure data."""

from flows.snapshot import diff_is_empty, snapshot_diff


def snap(**over):
    base = {
        "flow": {
            "id": 1,
            "name": "f",
            "error_policy": "complete_running",
            "notifications": {"emails": []},
        },
        "owner": 1,
        "variables": [],
        "nodes": [
            {"id": 1, "name": "a", "type": "noop", "config": {}, "position": {"x": 0, "y": 0}},
            {"id": 2, "name": "b", "type": "sql", "config": {"sql": "select 1", "datasource": 3}},
        ],
        "edges": [{"id": 9, "upstream": 1, "downstream": 2, "branch": None}],
        "schedule": None,
    }
    base.update(over)
    return base


def test_identical_snapshots_have_an_empty_diff():
    diff = snapshot_diff(snap(), snap())
    assert diff_is_empty(diff)


def test_diff_lists_nodes_edges_and_configuration():
    old = snap()
    new = snap(
        owner=2,
        nodes=[
            {"id": 2, "name": "b", "type": "sql", "config": {"sql": "select 2", "datasource": 3}},
            {"id": 4, "name": "c", "type": "noop", "config": {}},
        ],
        edges=[{"id": 10, "upstream": 2, "downstream": 4, "branch": None}],
        flow={
            "id": 1,
            "name": "f",
            "error_policy": "stop_all",
            "notifications": {"emails": ["x@example.com"]},
        },
    )
    diff = snapshot_diff(old, new)
    assert [n["name"] for n in diff["nodes"]["added"]] == ["c"]
    assert [n["name"] for n in diff["nodes"]["removed"]] == ["a"]
    assert diff["nodes"]["changed"] == [
        {
            "id": 2,
            "name": "b",
            "type": "sql",
            "changes": [{"field": "config.sql", "old": "select 1", "new": "select 2"}],
        }
    ]
    assert (
        diff["edges"]["added"][0]["upstream_name"] == "b"
        and diff["edges"]["added"][0]["downstream_name"] == "c"
    )
    assert diff["edges"]["removed"][0]["upstream_name"] == "a"
    fields = {c["field"] for c in diff["configuration"]}
    assert fields == {"error_policy", "notifications.emails", "owner"}


def test_a_version_published_before_node_variables_existed_diffs_clean():
    # Versions published before nodes had variables have no "variables" key on their nodes.
    old = snap()
    new = snap(nodes=[{**n, "variables": []} for n in snap()["nodes"]])
    assert diff_is_empty(snapshot_diff(old, new))
    changed = snap(
        nodes=[
            {**snap()["nodes"][0], "variables": [{"name": "x", "type": "constant", "value": ""}]}
        ]
        + snap()["nodes"][1:]
    )
    [node] = snapshot_diff(old, changed)["nodes"]["changed"]
    assert node["changes"][0]["field"] == "variables" and node["changes"][0]["old"] == []
