"""Issue 16 on real workers, through the API alone: a published version started with typed
parameters whose SQL used the values it was given."""

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


def test_a_parameterised_run_of_the_published_version_uses_the_values_in_its_sql(
    celery_workers, api, admin_user, sqlite_dir
):
    # Given: a warehouse, and a flow declaring `region` (a choice) and `minimum` (integer)
    # whose published version copies the matching orders
    client = api(admin_user)
    path = sqlite_dir / "warehouse.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE orders (id INTEGER, region TEXT, amount INTEGER)")
        db.executemany(
            "INSERT INTO orders VALUES (?, ?, ?)",
            [(1, "eu", 5), (2, "eu", 50), (3, "us", 70), (4, "eu", 90)],
        )
        db.execute("CREATE TABLE picked (id INTEGER, region TEXT)")
    ds = client.post(
        "/api/v1/datasources/",
        {"name": "warehouse", "engine": "sqlite", "database": str(path)},
        format="json",
    ).json()["id"]
    flow = client.post(
        "/api/v1/flows/",
        {
            "name": "pick orders",
            "parameters": [
                {"name": "region", "type": "string", "required": True, "choices": ["eu", "us"]},
                {"name": "minimum", "type": "integer", "default": 0},
            ],
        },
        format="json",
    ).json()["id"]
    res = client.put(
        f"/api/v1/flows/{flow}/graph/",
        {
            "nodes": [
                {
                    "name": "copy",
                    "type": "sql",
                    "config": {
                        "datasource": ds,
                        "sql": "INSERT INTO picked SELECT id, region FROM orders "
                        "WHERE region = '${region}' AND amount >= ${minimum}",
                    },
                }
            ],
            "edges": [],
        },
        format="json",
    )
    assert res.status_code == 200, res.content
    assert client.post(f"/api/v1/flows/{flow}/publish/").status_code in (200, 201)

    # When: an integration starts the published version with its own values
    res = client.post(
        f"/api/v1/flows/{flow}/runs/",
        {
            "mode": "point_in_time",
            "business_time": "2024-01-15T10:00:00Z",
            "parameters": {"region": "eu", "minimum": "40"},
        },
        format="json",
    )
    assert res.status_code == 201, res.content
    assert res.json()["version"] == 1
    run = _finished(res.json()["id"])

    # Then: the SQL ran with them
    assert run.status == "succeeded", NodeRun.objects.filter(run=run).values("error")
    copy = NodeRun.objects.get(run=run, node_name="copy", is_latest=True)
    assert "region = 'eu' AND amount >= 40" in copy.rendered_config["sql"]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT id, region FROM picked ORDER BY id").fetchall() == [
            (2, "eu"),
            (4, "eu"),
        ]
    detail = client.get(f"/api/v1/runs/{run.pk}/").json()
    assert detail["parameters"] == {"region": "eu", "minimum": 40}


def test_a_receiver_verifies_signed_events_in_order_while_a_down_subscriber_waits(
    celery_workers, api, admin_user, tenant, webhook_receiver
):
    from tests.integration.receiver import verify

    # Given: two subscriptions, a receiver that verifies signatures and a URL nobody answers
    client = api(admin_user)
    events = ["run.started", "node.retrying", "node.failed", "run.failed", "run.succeeded"]
    hook = client.post(
        "/api/v1/webhooks/", {"url": webhook_receiver.url, "events": events}, format="json"
    ).json()
    webhook_receiver.secret = hook["secret"]
    down = client.post(
        "/api/v1/webhooks/",
        {"url": "http://127.0.0.1:9/nobody", "events": ["run.started", "run.failed"]},
        format="json",
    ).json()
    # and a flow whose http node fails on every attempt (one retry)
    flow = client.post("/api/v1/flows/", {"name": "hooked"}, format="json").json()["id"]
    res = client.put(
        f"/api/v1/flows/{flow}/graph/",
        {
            "nodes": [
                {
                    "name": "call",
                    "type": "http",
                    "config": {"url": "http://127.0.0.1:9/refused", "timeout": 2},
                    "retries": 1,
                    "retry_interval": 0,
                }
            ],
            "edges": [],
        },
        format="json",
    )
    assert res.status_code == 200, res.content

    # When: the run goes
    res = client.post(f"/api/v1/flows/{flow}/runs/", {"mode": "try"}, format="json")
    assert res.status_code == 201, res.content
    run = _finished(res.json()["id"])
    assert run.status == "failed"

    # Then: the receiver got the run's events, each signed, in the order they happened
    wait_for(
        lambda: "run.failed" in webhook_receiver.types(),
        timeout=60,
        what=lambda: f"run.failed to arrive (got {webhook_receiver.types()})",
    )
    assert webhook_receiver.types() == ["run.started", "node.retrying", "node.failed", "run.failed"]
    assert not webhook_receiver.refused
    for entry in webhook_receiver.received:
        assert verify(hook["secret"], entry["raw"], entry["headers"]["x-tributary-signature"])
        assert entry["headers"]["x-tributary-event"] == entry["json"]["type"]
        assert entry["json"]["data"]["run"]["id"] == run.pk
    last = webhook_receiver.received[-1]["json"]
    assert last["tenant"] == tenant.slug
    assert last["data"]["run"]["status"] == "failed"
    assert webhook_receiver.received[2]["json"]["data"]["node"]["node_name"] == "call"

    # and the subscriber that is down has its attempts listed and retried later, its
    # run.failed waiting behind its run.started, while the run finished all the same
    def down_attempted():
        rows = client.get(f"/api/v1/webhooks/{down['id']}/deliveries/").json()["results"]
        by_type = {r["event_type"]: r for r in rows}
        started = by_type.get("run.started")
        return by_type if started and started["attempts_made"] >= 1 and len(rows) == 2 else None

    rows = wait_for(down_attempted, timeout=60, what="the down subscriber's first attempt")
    assert rows["run.started"]["status"] in ("pending", "sending")
    assert rows["run.started"]["last_error"]
    assert rows["run.started"]["attempts"][0]["status_code"] is None
    assert rows["run.failed"]["status"] == "pending" and rows["run.failed"]["attempts_made"] == 0
    listed = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries/").json()["results"]
    assert {r["status"] for r in listed} == {"delivered"}
