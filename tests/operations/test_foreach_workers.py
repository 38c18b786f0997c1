"""Loops on real Celery workers: a foreach node runs a sub-flow per query row (or literal
item) with ${item.<column>} in its parameters, at most max_parallel at once, and succeeds
only when every item run succeeded; the item runs are the node's child runs."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from flows.models import DataSource
from flows.services import flow_publish
from operations.models import FlowRun, NodeRun
from operations.services import run_start
from tests.factories import build_flow
from tests.integration.workers import wait_for

pytestmark = pytest.mark.integration

BT = dt.datetime(2024, 1, 15, 10, tzinfo=dt.UTC)
TERMINAL = {"succeeded", "failed", "stopped", "skipped"}


def finished(run, timeout: float = 120) -> FlowRun:
    def done():
        run.refresh_from_db()
        return run.status in TERMINAL

    wait_for(done, timeout=timeout, what=f"run {run.pk} to finish")
    return run


def per_code_flow(tenant, owner, http_server):
    """A published flow declaring `code`, whose http node asks the server for that status."""
    flow, _ = build_flow(
        tenant=tenant,
        owner=owner,
        name="per code",
        parameters=[{"name": "code", "type": "string", "required": True}],
        nodes=[
            {"name": "call", "type": "http", "config": {"url": http_server.url("status/${code}")}}
        ],
    )
    flow_publish(flow=flow, user=owner)
    return flow


def test_foreach_runs_a_sub_flow_per_query_row(
    celery_workers, http_server, tenant, admin_user, sqlite_dir, api
):
    # Given three rows of codes and a flow run per code
    path = sqlite_dir / "codes.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE codes (code TEXT)")
        db.executemany("INSERT INTO codes VALUES (?)", [("200",), ("201",), ("202",)])
    ds = DataSource.objects.create(tenant=tenant, name="codes", engine="sqlite", database=str(path))
    target = per_code_flow(tenant, admin_user, http_server)
    loop, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[
            {
                "name": "each",
                "type": "foreach",
                "config": {
                    "flow": target.pk,
                    "datasource": ds.pk,
                    "sql": "SELECT code FROM codes ORDER BY code",
                    "parameters": {"code": "${item.code}"},
                    "max_parallel": 2,
                },
            }
        ],
    )
    run = run_start(flow=loop, mode="point_in_time", user=admin_user, business_time=BT)
    assert finished(run).status == "succeeded", list(
        NodeRun.objects.filter(run__in=[run, *run.child_runs.all()]).values_list(
            "node_name", "error"
        )
    )
    # Then one child per row, each with its row's value, all at the parent's business time
    children = list(FlowRun.objects.filter(parent_run=run).order_by("parent_key"))
    assert [c.parent_key for c in children] == ["0", "1", "2"]
    assert [c.parameters for c in children] == [{"code": "200"}, {"code": "201"}, {"code": "202"}]
    assert {c.status for c in children} == {"succeeded"} and {
        c.business_time for c in children
    } == {BT}
    assert all(http_server.hits[f"/status/{code}"] == 1 for code in ("200", "201", "202"))
    each = NodeRun.objects.get(run=run, node_name="each", is_latest=True)
    assert each.output == {"items": 3, "succeeded": 3}
    # At most two ran at once: the third started after one of the first two finished.
    first_done = min(c.finished_at for c in children[:2])
    assert children[2].created_at >= first_done
    body = api(admin_user, tenant).get(f"/api/v1/runs/{run.pk}/").json()
    assert [(c["parent_key"], c["status"]) for c in body["child_runs"]] == [
        ("0", "succeeded"),
        ("1", "succeeded"),
        ("2", "succeeded"),
    ]


def test_foreach_fails_when_an_item_run_failed(celery_workers, http_server, tenant, admin_user):
    target = per_code_flow(tenant, admin_user, http_server)
    loop, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[
            {
                "name": "each",
                "type": "foreach",
                "config": {
                    "flow": target.pk,
                    "items": [{"c": "200"}, {"c": "500"}],
                    "parameters": {"code": "${item.c}"},
                },
            }
        ],
    )
    run = run_start(flow=loop, mode="point_in_time", user=admin_user, business_time=BT)
    assert finished(run).status == "failed"
    each = NodeRun.objects.get(run=run, node_name="each", is_latest=True)
    assert "1 of 2 item run(s) did not succeed: 1" in each.error
    assert sorted(FlowRun.objects.filter(parent_run=run).values_list("status", flat=True)) == [
        "failed",
        "succeeded",
    ]
