"""Through the API alone, on real workers: a flow of sql, sql_assign, condition, data_sync
and http nodes runs in every run mode (issue 4's "done means")."""

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from operations.models import FlowRun, NodeRun
from tests.integration.workers import wait_for

pytestmark = pytest.mark.integration

TERMINAL = {"succeeded", "failed", "stopped", "skipped"}


def _finished(run_id, timeout=60):
    def done():
        run = FlowRun.objects.get(pk=run_id)
        return run if run.status in TERMINAL else None

    return wait_for(done, timeout=timeout, what=f"run {run_id} to finish")


@pytest.fixture
def flow_id(celery_workers, api, admin_user, http_server, sqlite_dir):
    # Given: two SQLite data sources and a flow built with the API (one atomic graph PUT)
    client = api(admin_user)
    ids = {}
    for name in ("warehouse", "mart"):
        res = client.post(
            "/api/v1/datasources/",
            {
                "name": name,
                "engine": "sqlite",
                "database": str(sqlite_dir / f"{name}.sqlite3"),
                "options": {"create": True},
            },
            format="json",
        )
        assert res.status_code == 201, res.content
        ids[name] = res.json()["id"]
    with sqlite3.connect(sqlite_dir / "mart.sqlite3") as mart:
        mart.execute("CREATE TABLE copies (day TEXT, amount INTEGER)")
    flow = client.post(
        "/api/v1/flows/",
        {"name": "sales", "business_scenario": "e2e", "concurrency_policy": "ignore"},
        format="json",
    ).json()

    def sql(key, text, type_="sql"):
        return {
            "key": key,
            "name": key,
            "type": type_,
            "config": {"datasource": ids["warehouse"], "sql": text},
        }

    graph = {
        "nodes": [
            sql("create", "CREATE TABLE IF NOT EXISTS sales (day TEXT, amount INTEGER)"),
            sql(
                "load",
                "DELETE FROM sales WHERE day = '${bizdate}';\n"
                "INSERT INTO sales VALUES ('${bizdate}', 10), ('${bizdate}', 32)",
            ),
            sql(
                "total",
                "SELECT sum(amount) AS total FROM sales WHERE day = '${bizdate}'",
                "sql_assign",
            ),
            {
                "key": "check",
                "name": "check",
                "type": "condition",
                "config": {"mode": "expression", "expression": "${total} > 40"},
            },
            {
                "key": "copy",
                "name": "copy",
                "type": "data_sync",
                "config": {
                    "source": ids["warehouse"],
                    "target": ids["mart"],
                    "table": "copies",
                    "mode": "append",
                    "query": "SELECT day, amount FROM sales WHERE day = '${bizdate}'",
                },
            },
            {
                "key": "notify",
                "name": "notify",
                "type": "http",
                "config": {"method": "GET", "url": http_server.url("ok?total=${total}")},
            },
            {"key": "alarm", "name": "alarm", "type": "noop", "config": {}},
        ],
        "edges": [
            {"upstream": "create", "downstream": "load"},
            {"upstream": "load", "downstream": "total"},
            {"upstream": "total", "downstream": "check"},
            {"upstream": "check", "downstream": "copy", "branch": "true"},
            {"upstream": "copy", "downstream": "notify"},
            {"upstream": "check", "downstream": "alarm", "branch": "false"},
        ],
    }
    res = client.put(f"/api/v1/flows/{flow['id']}/graph/", graph, format="json")
    assert res.status_code == 200, res.content
    res = client.put(
        f"/api/v1/flows/{flow['id']}/schedule/",
        {"enabled": True, "cron": "0 0 * * *", "timezone": "UTC", "start_date": "2024-01-01"},
        format="json",
    )
    assert res.status_code == 200, res.content
    return flow["id"]


@pytest.mark.parametrize("mode", ["try", "point_in_time", "time_range", "dry"])
def test_mixed_flow_runs_through_the_api_in_every_mode(
    mode, flow_id, api, admin_user, http_server, sqlite_dir
):
    body = {"mode": mode}
    if mode == "point_in_time":
        body["business_time"] = "2024-01-15T00:00:00Z"
    if mode == "time_range":
        body.update(start="2024-01-15T00:00:00Z", end="2024-01-16T00:00:00Z")
    # When: the owner starts the run through the API
    asked = timezone.now()
    res = api(admin_user).post(f"/api/v1/flows/{flow_id}/runs/", body, format="json")
    answered = timezone.now()
    assert res.status_code == 201, res.content
    created = res.json()["runs"] if mode == "time_range" else [res.json()]
    # Then: every run succeeds with the condition's branch taken and the data copied
    for item in created:
        run = _finished(item["id"])
        statuses = dict(
            NodeRun.objects.filter(run=run, is_latest=True).values_list("node_name", "status")
        )
        assert run.status == "succeeded", statuses
        if mode == "dry":
            assert set(statuses.values()) == {"succeeded"}
            continue
        assert statuses.pop("alarm") == "skipped" and set(statuses.values()) == {"succeeded"}
        copy = NodeRun.objects.get(run=run, node_name="copy", is_latest=True)
        assert copy.output["rows_read"] == copy.output["rows_written"] == 2
    if mode == "dry":
        assert http_server.hits["/ok?total=42"] == 0  # nothing executed
        with sqlite3.connect(sqlite_dir / "mart.sqlite3") as mart:
            assert mart.execute("SELECT count(*) FROM copies").fetchone()[0] == 0
    else:
        assert http_server.hits["/ok?total=42"] == len(created)
        # Each run worked on the bizdate of its business time (the day before it): a try
        # run's business time is the moment it was asked for.
        if mode == "try":
            (business_time,) = [datetime.fromisoformat(r["business_time"]) for r in created]
            assert asked <= business_time <= answered
            expected = [(business_time.astimezone(UTC).date() - timedelta(days=1)).isoformat()]
        else:
            expected = {"point_in_time": ["2024-01-14"], "time_range": ["2024-01-14", "2024-01-15"]}
            expected = expected[mode]
        with sqlite3.connect(sqlite_dir / "mart.sqlite3") as mart:
            copied = [day for (day,) in mart.execute("SELECT DISTINCT day FROM copies ORDER BY 1")]
        assert copied == expected
