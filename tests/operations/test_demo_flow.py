"""The demo tenant's sample flow try-runs end to end on real workers: sql, sql_assign,
condition and data_sync over SQLite, with ${bizdate} resolved."""

import datetime as dt
import sqlite3
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from accounts.models import User
from flows.models import TaskFlow
from operations.models import NodeRun
from operations.services import run_start
from tests.operations.test_workers import finished

pytestmark = pytest.mark.integration


def test_demo_flow_try_runs_to_success_and_fills_the_mart(celery_workers, settings):
    # Given: the demo loaded, its warehouse and mart in the demo tenant's SQLite folder
    call_command("load_demo", stdout=StringIO())
    folder = Path(settings.SQLITE_DATASOURCE_DIRS[0]) / "demo"
    flow = TaskFlow.objects.get(name="Daily sales demo")
    admin = User.objects.get(username="demo-admin")

    # When: the owner runs it at a point in time
    run = run_start(
        flow=flow,
        mode="point_in_time",
        user=admin,
        business_time=dt.datetime(2024, 1, 15, tzinfo=dt.UTC),
    )
    finished(run, timeout=60)

    # Then: every node but the untaken branch succeeded, and the mart holds the day's orders
    statuses = dict(
        NodeRun.objects.filter(run=run, is_latest=True).values_list("node_name", "status")
    )
    assert run.status == "succeeded", statuses
    assert statuses.pop("no_orders") == "skipped"
    assert set(statuses.values()) == {"succeeded"}
    counted = NodeRun.objects.get(run=run, node_name="count_orders", is_latest=True)
    assert counted.output["order_count"] in ("3", 3)
    synced = NodeRun.objects.get(run=run, node_name="sync_to_mart", is_latest=True)
    assert synced.output["rows_read"] == synced.output["rows_written"] == 3
    with sqlite3.connect(folder / "demo_mart.sqlite3") as mart:
        rows = mart.execute("SELECT bizdate, amount FROM daily_orders ORDER BY amount").fetchall()
    assert rows == [("2024-01-14", 42.25), ("2024-01-14", 80.0), ("2024-01-14", 120.5)]
