"""Issue 17 §5-6 on real workers, through the API alone: a node-level dependency on another
flow's node from the previous hour (waiting without a worker until it succeeds), a list
assigned by sql_assign and used in a downstream SQL node, and node variables (bizdate base,
Java week letters) overriding the flow's."""

import sqlite3

import pytest

from operations.models import FlowRun, NodeRun
from tests.integration.workers import wait_for

pytestmark = pytest.mark.integration

TERMINAL = {"succeeded", "failed", "stopped", "skipped"}


def _finished(run_id, timeout=60):
    def done():
        run = FlowRun.objects.get(pk=run_id)
        return run if run.status in TERMINAL else None

    return wait_for(done, timeout=timeout, what=f"run {run_id} to finish")


def _node(run_id, name):
    return NodeRun.objects.filter(run_id=run_id, node_name=name, is_latest=True).first()


@pytest.fixture
def world(celery_workers, api, admin_user, sqlite_dir):
    # Given: a warehouse with items, and a "feed" flow that fires hourly whose "load" node
    # succeeds while a later node of it fails (so the feed's runs fail as a whole)
    client = api(admin_user)
    path = sqlite_dir / "warehouse.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE items (id INTEGER, kind TEXT)")
        db.executemany("INSERT INTO items VALUES (?, ?)", [(1, "a"), (2, "b"), (3, "a"), (4, "a")])
        db.execute("CREATE TABLE picked (id INTEGER, tag TEXT, ds TEXT, wk TEXT)")
    ds = client.post(
        "/api/v1/datasources/",
        {"name": "warehouse", "engine": "sqlite", "database": str(path)},
        format="json",
    ).json()["id"]
    feed = client.post("/api/v1/flows/", {"name": "feed"}, format="json").json()["id"]
    res = client.put(
        f"/api/v1/flows/{feed}/graph/",
        {
            "nodes": [
                {"name": "load", "type": "noop"},
                {
                    "name": "broken",
                    "type": "sql",
                    "config": {"datasource": ds, "sql": "SELECT * FROM no_such_table"},
                },
            ],
            "edges": [{"upstream": "load", "downstream": "broken"}],
        },
        format="json",
    )
    assert res.status_code == 200, res.content
    res = client.put(
        f"/api/v1/flows/{feed}/schedule/",
        {"enabled": True, "cron": "0 * * * *", "timezone": "UTC", "start_date": "2024-01-01"},
        format="json",
    )
    assert res.status_code == 200, res.content

    # and a "consumer" flow: wait for feed.load of the previous hour, list the ids of kind
    # 'a', copy them with node variables that override the flow's
    consumer = client.post(
        "/api/v1/flows/",
        {
            "name": "consumer",
            "concurrency_policy": "ignore",
            "variables": [
                {"name": "tag", "type": "constant", "value": "flow"},
                {"name": "ds", "type": "time", "format": "yyyyMMdd"},
            ],
        },
        format="json",
    ).json()["id"]
    res = client.put(
        f"/api/v1/flows/{consumer}/graph/",
        {
            "nodes": [
                {
                    "name": "wait feed",
                    "type": "dependency_check",
                    "config": {
                        "flow": feed,
                        "node": "load",
                        "cycle": "hour",
                        "offset": -1,
                        "require": "latest",
                        "poll_s": 1,
                        "timeout_s": 120,
                    },
                },
                {
                    "name": "ids",
                    "type": "sql_assign",
                    "config": {
                        "datasource": ds,
                        "sql": "SELECT id FROM items WHERE kind = 'a' ORDER BY id",
                        "rows": "all",
                        "columns": "first",
                    },
                },
                {
                    "name": "copy",
                    "type": "sql",
                    "config": {
                        "datasource": ds,
                        "sql": "INSERT INTO picked SELECT id, '${tag}', '${ds}', '${wk}' "
                        "FROM items WHERE id IN (${id})",
                    },
                    "variables": [
                        {"name": "tag", "type": "constant", "value": "node"},
                        {"name": "ds", "type": "time", "format": "yyyyMMdd", "base": "bizdate"},
                        {"name": "wk", "type": "time", "format": "YYYY-'W'ww-e EEE"},
                    ],
                },
            ],
            "edges": [
                {"upstream": "wait feed", "downstream": "ids"},
                {"upstream": "ids", "downstream": "copy"},
            ],
        },
        format="json",
    )
    assert res.status_code == 200, res.content
    return {"client": client, "feed": feed, "consumer": consumer, "db": path}


def test_a_node_dependency_on_the_previous_hour_then_a_list_and_node_variables(world):
    client, feed, consumer = world["client"], world["feed"], world["consumer"]

    # When: the consumer runs for Monday 2024-01-15 10:05 before the feed ran for 09:00
    res = client.post(
        f"/api/v1/flows/{consumer}/runs/",
        {"mode": "point_in_time", "business_time": "2024-01-15T10:05:00Z"},
        format="json",
    )
    assert res.status_code == 201, res.content
    run_id = res.json()["id"]

    # Then: its dependency check has started and waits (between checks, without a worker)
    def checked_twice():
        node = _node(run_id, "wait feed")
        return node if node and node.defer_count >= 2 else None

    waiting = wait_for(checked_twice, timeout=60, what="the dependency check to poll")
    assert waiting.status not in TERMINAL
    assert "waiting for flow" in waiting.log and "the previous hour" in waiting.log
    assert FlowRun.objects.get(pk=run_id).status not in TERMINAL

    # When: the feed runs for 09:00 (its load node succeeds, the run fails)
    res = client.post(
        f"/api/v1/flows/{feed}/runs/",
        {"mode": "point_in_time", "business_time": "2024-01-15T09:00:00Z"},
        format="json",
    )
    assert res.status_code == 201, res.content
    feed_run = _finished(res.json()["id"])
    assert feed_run.status == "failed"
    assert _node(feed_run.pk, "load").status == "succeeded"

    # Then: the consumer goes on and succeeds
    run = _finished(run_id, timeout=90)
    statuses = dict(
        NodeRun.objects.filter(run_id=run_id, is_latest=True).values_list("node_name", "status")
    )
    assert run.status == "succeeded", statuses
    assert _node(run_id, "wait feed").output["dependency_window_start"] == (
        "2024-01-15T09:00:00+00:00"
    )
    assert _node(run_id, "ids").output == {"id": ["1", "3", "4"]}
    copy = _node(run_id, "copy")
    assert "WHERE id IN (1,3,4)" in copy.rendered_config["sql"]
    with sqlite3.connect(world["db"]) as db:
        rows = db.execute("SELECT id, tag, ds, wk FROM picked ORDER BY id").fetchall()
    # The node's tag beats the flow's; ds counts from the bizdate (the business time a day
    # earlier); 2024-01-15 is the Monday of week 3.
    assert rows == [
        (1, "node", "20240114", "2024-W03-1 Mon"),
        (3, "node", "20240114", "2024-W03-1 Mon"),
        (4, "node", "20240114", "2024-W03-1 Mon"),
    ]
