"""Issue 17's closing check on real workers: one flow using a sub-flow, a loop over a query's
rows, a cleanup node with one_failed, a disabled node and a node-level dependency on another
flow's node from the previous hour, run in every run mode (try, dry, point in time, time
range, scheduled)."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from flows.models import DataSource
from flows.services import flow_publish
from operations.models import FlowRun, NodeRun
from operations.services import run_create_scheduled, run_start
from tests.factories import ScheduleFactory, build_flow
from tests.integration.workers import wait_for

pytestmark = pytest.mark.integration

BT = dt.datetime(2024, 1, 15, 10, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
TERMINAL = {"succeeded", "failed", "stopped", "skipped"}


def finished(run, timeout: float = 150) -> FlowRun:
    def done():
        run.refresh_from_db()
        return run.status in TERMINAL

    wait_for(done, timeout=timeout, what=f"run {run.pk} ({run.mode}) to finish")
    return run


def statuses(run) -> dict:
    return dict(NodeRun.objects.filter(run=run, is_latest=True).values_list("node_name", "status"))


@pytest.fixture
def world(tenant, admin_user, http_server, sqlite_dir):
    # The hourly flow whose node `load` the dependency waits for (previous hour), and dry
    # runs of it that record its successes for the hours the runs below need.
    hourly, _ = build_flow(tenant=tenant, owner=admin_user, nodes=["load"], name="hourly")
    flow_publish(flow=hourly, user=admin_user)
    # The child flow: one http call for the `code` it is given.
    child, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        name="child",
        concurrency_policy="ignore",
        parameters=[{"name": "code", "type": "string", "required": True}],
        nodes=[
            {"name": "call", "type": "http", "config": {"url": http_server.url("status/${code}")}}
        ],
    )
    flow_publish(flow=child, user=admin_user)
    path = sqlite_dir / "codes.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE codes (code TEXT)")
        db.executemany("INSERT INTO codes VALUES (?)", [("200",), ("201",)])
    ds = DataSource.objects.create(tenant=tenant, name="codes", engine="sqlite", database=str(path))
    main, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        name="everything",
        concurrency_policy="ignore",
        nodes=[
            {
                "name": "dep",
                "type": "dependency_check",
                "config": {
                    "flow": hourly.pk,
                    "node": "load",
                    "cycle": "hour",
                    "offset": -1,
                    "poll_s": 1,
                    "timeout_s": 120,
                },
            },
            {
                "name": "sub",
                "type": "subflow",
                "config": {"flow": child.pk, "parameters": {"code": "200"}},
            },
            {
                "name": "each",
                "type": "foreach",
                "config": {
                    "flow": child.pk,
                    "datasource": ds.pk,
                    "sql": "SELECT code FROM codes ORDER BY code",
                    "parameters": {"code": "${item.code}"},
                    "max_parallel": 2,
                },
            },
            {"name": "off", "enabled": False},
            {"name": "cleanup", "trigger_rule": "one_failed"},
            {"name": "final", "trigger_rule": "all_done"},
        ],
        edges=[
            ("dep", "sub"),
            ("dep", "each"),
            ("sub", "off"),
            ("sub", "cleanup"),
            ("each", "cleanup"),
            ("off", "final"),
            ("cleanup", "final"),
        ],
    )
    ScheduleFactory(flow=main, cron="0 * * * *", timezone="UTC")
    flow_publish(flow=main, user=admin_user)
    for at in (BT - HOUR, BT, BT + HOUR):
        finished(run_start(flow=hourly, mode="dry", user=admin_user, business_time=at))
    return main


EXPECTED = {
    "dep": "succeeded",
    "sub": "succeeded",
    "each": "succeeded",
    "off": "disabled",
    "cleanup": "skipped",
    "final": "succeeded",
}


def check_ran(run):
    assert finished(run).status == "succeeded", (run.mode, statuses(run), run.error)
    assert statuses(run) == EXPECTED
    children = FlowRun.objects.filter(parent_run=run)
    assert sorted(children.values_list("parent_key", "status")) == [
        ("", "succeeded"),
        ("0", "succeeded"),
        ("1", "succeeded"),
    ]
    assert set(children.values_list("business_time", flat=True)) == {run.business_time}


def test_one_flow_with_every_control_feature_runs_in_every_mode(
    celery_workers, tenant, admin_user, world
):
    main = world
    # try (the draft), at BT
    check_ran(run_start(flow=main, mode="try", user=admin_user, business_time=BT))
    # point in time (the published version)
    check_ran(run_start(flow=main, mode="point_in_time", user=admin_user, business_time=BT))
    # time range: the fire times BT and BT + 1h
    runs = run_start(
        flow=main, mode="time_range", user=admin_user, start=BT, end=BT + HOUR, parallelism=2
    )
    assert [r.business_time for r in runs] == [BT, BT + HOUR]
    for run in runs:
        check_ran(run)
    # scheduled, as beat fires it
    scheduled = run_create_scheduled(flow_id=main.pk, fire_time=BT + HOUR + HOUR)
    check_ran(scheduled)
    # dry: nothing executes (no child runs), the disabled node and the rule still hold
    dry = run_start(flow=main, mode="dry", user=admin_user, business_time=BT)
    assert finished(dry).status == "succeeded"
    assert statuses(dry) == {**EXPECTED}
    assert not FlowRun.objects.filter(parent_run=dry).exists()
