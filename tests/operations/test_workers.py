"""Runs through real Celery worker processes: modes, error policies, logs, a killed worker.

The workers share the test database and broker; the test waits on states with deadlines.
http nodes call a local server whose `/block/<key>` requests hang until the test releases
them, so "a node is running" is a state the test controls, not a guess about timing.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sqlite3

import pytest

from flows.models import DataSource
from flows.services import flow_publish
from operations.models import FlowRun, NodeRun
from operations.services import run_create_scheduled, run_start, run_stop, watchdog_sweep
from tests.factories import ScheduleFactory, build_flow, chain_flow
from tests.integration.workers import wait_for

pytestmark = pytest.mark.integration

TERMINAL = {"succeeded", "failed", "stopped", "skipped"}


def finished(run, timeout: float = 30) -> FlowRun:
    def done():
        run.refresh_from_db()
        return run.status in TERMINAL

    wait_for(done, timeout=timeout, what=f"run {run.pk} to finish")
    return run


def node(run, name) -> NodeRun:
    return NodeRun.objects.get(run=run, node_name=name, is_latest=True)


def node_status(run, name, status, timeout: float = 30) -> NodeRun:
    return wait_for(
        lambda: NodeRun.objects.filter(
            run=run, node_name=name, is_latest=True, status=status
        ).first(),
        timeout=timeout,
        what=f"node {name} of run {run.pk} to be {status}",
    )


def statuses(run) -> dict:
    return dict(NodeRun.objects.filter(run=run, is_latest=True).values_list("node_name", "status"))


def http(name, url, **extra):
    return {"name": name, "type": "http", "config": {"url": url}, **extra}


# --------------------------------------------------------------------------- run modes


@pytest.mark.parametrize("mode", ["try", "dry", "point_in_time", "time_range", "scheduled"])
def test_every_run_mode_runs_to_success_on_workers(celery_workers, tenant, admin_user, mode):
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=3, concurrency_policy="ignore")
    at = dt.datetime(2024, 1, 15, tzinfo=dt.UTC)
    if mode == "time_range":
        ScheduleFactory(flow=flow, cron="0 0 * * *", start_date=dt.date(2024, 1, 1))
        runs = run_start(
            flow=flow, mode=mode, user=admin_user, start=at, end=at + dt.timedelta(days=1)
        )
    elif mode == "scheduled":
        flow_publish(flow=flow, user=admin_user)
        runs = [run_create_scheduled(flow_id=flow.pk, fire_time=at)]
    else:
        runs = [run_start(flow=flow, mode=mode, user=admin_user, business_time=at)]

    for run in runs:
        assert finished(run).status == "succeeded", (statuses(run), celery_workers.log_tail())
        assert set(statuses(run).values()) == {"succeeded"}
    if mode == "time_range":
        assert runs[0].finished_at <= runs[1].started_at  # serial


# --------------------------------------------------------------------------- error policies


def policy_flow(tenant, owner, server, policy, slow=None):
    """`fail` answers 500 when released; `slow` runs until released; `other` waits on `gate`."""
    return build_flow(
        tenant=tenant,
        owner=owner,
        error_policy=policy,
        nodes=[
            http("fail", server.url("block/fail/500")),
            slow or http("slow", server.url("block/slow")),
            http("gate", server.url("block/gate")),
            "fail_down",
            "slow_down",
            "other",
        ],
        edges=[("fail", "fail_down"), ("slow", "slow_down"), ("gate", "other")],
    )


def _fail_while_slow_runs(run, server):
    """Once `slow` and `gate` run, `fail` fails."""
    node_status(run, "slow", "running")
    wait_for(lambda: server.waiting("gate") and server.waiting("fail"), what="gate and fail to run")
    server.release("fail")
    return node_status(run, "fail", "failed")


def test_complete_running_on_workers(celery_workers, http_server, tenant, admin_user):
    flow, _ = policy_flow(tenant, admin_user, http_server, "complete_running")
    run = run_start(flow=flow, mode="try", user=admin_user)
    _fail_while_slow_runs(run, http_server)

    assert "500" in node(run, "fail").error
    assert node(run, "slow").status == "running"  # the running node finishes ...
    http_server.release("slow")
    http_server.release("gate")
    finished(run)
    assert statuses(run) == {
        "fail": "failed",
        "slow": "succeeded",
        "gate": "succeeded",
        "fail_down": "upstream_failed",
        "slow_down": "stopped",  # ... but nothing starts after the failure
        "other": "stopped",
    }
    assert run.status == "failed"


def test_stop_all_on_workers_cancels_the_running_nodes(
    celery_workers, http_server, tenant, admin_user, sqlite_dir
):
    sqlite3.connect(sqlite_dir / "scratch.sqlite3").close()
    ds = DataSource.objects.create(
        tenant=tenant, name="scratch", engine="sqlite", database=str(sqlite_dir / "scratch.sqlite3")
    )
    # A statement that never ends unless it is cancelled on its database.
    endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c"
    slow = {"name": "slow", "type": "sql", "config": {"datasource": ds.pk, "sql": endless}}
    flow, _ = policy_flow(tenant, admin_user, http_server, "stop_all", slow=slow)
    run = run_start(flow=flow, mode="try", user=admin_user)
    _fail_while_slow_runs(run, http_server)

    assert finished(run, timeout=10).status == "failed"
    assert statuses(run) == {
        "fail": "failed",
        "slow": "stopped",
        "gate": "stopped",
        "fail_down": "upstream_failed",
        "slow_down": "stopped",
        "other": "stopped",
    }
    # The worker executing `slow` cancelled the statement and let go of the node.
    wait_for(
        lambda: "result discarded" in node(run, "slow").log,
        timeout=10,
        what="the SQL to be cancelled",
    )


def test_complete_unrelated_on_workers(celery_workers, http_server, tenant, admin_user):
    flow, _ = policy_flow(tenant, admin_user, http_server, "complete_unrelated")
    run = run_start(flow=flow, mode="try", user=admin_user)
    _fail_while_slow_runs(run, http_server)
    assert node(run, "fail_down").status == "upstream_failed"

    http_server.release("slow")
    http_server.release("gate")
    finished(run)
    assert statuses(run) == {
        "fail": "failed",
        "slow": "succeeded",
        "gate": "succeeded",
        "fail_down": "upstream_failed",
        "slow_down": "succeeded",
        "other": "succeeded",
    }
    assert run.status == "failed"


@pytest.mark.skipif(not os.environ.get("TEST_POSTGRES_URL"), reason="needs TEST_POSTGRES_URL (CI)")
def test_stop_cancels_running_sql_on_its_database(celery_workers, tenant, admin_user):
    import psycopg

    ds = DataSource(
        tenant=tenant,
        name="pg",
        engine="postgresql",
        host="127.0.0.1",
        port=5432,
        database="postgres",
        username="postgres",
    )
    ds.password = ""
    ds.save()
    marker = f"tributary_cancel_{os.getpid()}"
    flow, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[
            {
                "name": "sleep",
                "type": "sql",
                "config": {"datasource": ds.pk, "sql": f"SELECT pg_sleep(60) AS {marker}"},
            }
        ],
    )

    def sleeping():
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as c:
            return c.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s AND state = 'active'"
                " AND pid <> pg_backend_pid()",
                (f"%{marker}%",),
            ).fetchone()[0]

    run = run_start(flow=flow, mode="try", user=admin_user)
    wait_for(sleeping, what="the statement to run on PostgreSQL")
    run_stop(run=run, user=admin_user)
    wait_for(lambda: sleeping() == 0, timeout=5, what="the statement to be cancelled")
    assert finished(run).status == "stopped"


# --------------------------------------------------------------------------- alerts


def test_a_run_that_fails_on_workers_emails_its_owner_and_no_one_else(
    celery_workers, http_server, tenant, member_user, other_member, admin_user, dba_user
):
    from flows.services import flow_stakeholders_set
    from operations.models import NotificationAttempt

    # Given a flow owned by a member, with a stakeholder, in a tenant with an admin and a DBA
    flow, _ = build_flow(
        tenant=tenant,
        owner=member_user,
        name="nightly",
        nodes=[http("load", http_server.url("status/500"))],
    )
    flow_stakeholders_set(flow=flow, user=member_user, users=[other_member.pk])

    # When the run fails on the workers
    run = run_start(flow=flow, mode="try", user=member_user)
    assert finished(run).status == "failed"

    # Then the engine's own alert reaches the owner, and only the owner
    (mail,) = wait_for(celery_workers.sent_mail, timeout=30, what="the failure e-mail to be sent")
    assert mail["Subject"] == f"[Tributary] nightly: run {run.pk} failed"
    assert mail["To"] == member_user.email
    for someone in (other_member, admin_user, dba_user):
        assert someone.email not in str(mail), someone.username
    # The attempt is recorded once the mail is out.
    attempt = wait_for(
        lambda: NotificationAttempt.objects.filter(run=run, event="failed").first(),
        what="the e-mail attempt to be recorded",
    )
    assert attempt.ok and attempt.channel == "email" and attempt.target == member_user.email


# --------------------------------------------------------------------------- faults


def test_a_killed_worker_is_replaced_and_no_node_completes_twice(
    celery_workers, http_server, tenant, admin_user
):
    flow, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=["first", http("slow", http_server.url("block/kill")), "after"],
        edges=[("first", "slow"), ("slow", "after")],
    )
    run = run_start(flow=flow, mode="try", user=admin_user)
    slow = node_status(run, "slow", "running")
    wait_for(lambda: http_server.waiting("kill"), what="the slow node's request")

    # Kill the child process executing the node, mid-node, without warning.
    os.kill(int(slow.worker.rsplit(":", 1)[1]), signal.SIGKILL)
    http_server.release("kill")  # the next attempt is not held

    def done():
        watchdog_sweep(heartbeat_timeout=5)  # what beat runs every 15 s in production
        run.refresh_from_db()
        return run.status in TERMINAL

    wait_for(done, timeout=40, interval=0.2, what="the run to finish after the kill")
    attempts = list(NodeRun.objects.filter(run=run, node_name="slow").order_by("attempt"))
    assert [(a.attempt, a.status) for a in attempts] == [(1, "failed"), (2, "succeeded")]
    assert attempts[0].error.startswith("worker lost")
    assert run.status == "succeeded"
    # Every node completed exactly once.
    assert list(
        NodeRun.objects.filter(run=run, status="succeeded")
        .values_list("node_name", flat=True)
        .order_by("node_name")
    ) == ["after", "first", "slow"]


def test_log_is_readable_while_the_node_runs_and_timeouts_fail_it(
    celery_workers, http_server, tenant, admin_user, api
):
    flow, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[http("hang", http_server.url("block/never"), timeout=2, retries=0)],
    )
    run = run_start(flow=flow, mode="try", user=admin_user)
    hang = node_status(run, "hang", "running")

    def log_says_started():
        body = api(admin_user).get(f"/api/v1/node-runs/{hang.pk}/log/").json()
        return body["status"] == "running" and "attempt 1 started" in body["log"]

    wait_for(log_says_started, timeout=10, what="the log of the running node")
    finished(run)
    hang.refresh_from_db()
    assert hang.status == "failed" and "timed out" in hang.error
    assert hang.rendered_config == {"url": http_server.url("block/never")}


# --------------------------------------------------------------------------- a real flow


def test_a_flow_of_sql_condition_and_http_nodes_runs_end_to_end(
    celery_workers, http_server, tenant, admin_user, sqlite_dir
):
    sqlite3.connect(sqlite_dir / "wh.sqlite3").close()
    ds = DataSource.objects.create(
        tenant=tenant, name="warehouse", engine="sqlite", database=str(sqlite_dir / "wh.sqlite3")
    )
    sql = lambda name, text, type="sql": {  # noqa: E731
        "name": name,
        "type": type,
        "config": {"datasource": ds.pk, "sql": text},
    }
    flow, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[
            sql("create", "CREATE TABLE IF NOT EXISTS sales (day TEXT, amount INTEGER)"),
            sql("load", "INSERT INTO sales VALUES ('${bizdate}', 10), ('${bizdate}', 32)"),
            sql(
                "total",
                "SELECT count(*) AS n, sum(amount) AS total FROM sales WHERE day = '${bizdate}'",
                "sql_assign",
            ),
            {
                "name": "check",
                "type": "condition",
                "config": {"mode": "expression", "expression": "${total} > 40"},
            },
            http("notify", http_server.url("ok?total=${total}")),
            http("alarm", http_server.url("status/500")),
        ],
        edges=[
            ("create", "load"),
            ("load", "total"),
            ("total", "check"),
            ("check", "notify", "true"),
            ("check", "alarm", "false"),
        ],
    )
    at = dt.datetime(2024, 1, 15, tzinfo=dt.UTC)
    run = run_start(flow=flow, mode="point_in_time", user=admin_user, business_time=at)

    assert finished(run).status == "succeeded", {
        n.node_name: n.error for n in NodeRun.objects.filter(run=run)
    }
    assert statuses(run) == {
        "create": "succeeded",
        "load": "succeeded",
        "total": "succeeded",
        "check": "succeeded",
        "notify": "succeeded",
        "alarm": "skipped",
    }
    assert node(run, "total").output["total"] in (42, "42")
    assert node(run, "check").branch == "true"
    assert node(run, "load").rendered_config["sql"].count("2024-01-14") == 2
    assert http_server.hits["/ok?total=42"] == 1


# --------------------------------------------------------------------------- benchmark


def test_benchmark_quick_prints_its_figures_as_json_last(celery_workers):
    """A smoke run of `manage.py benchmark --quick` on the test workers (speed not asserted:
    --allow-missed; the targets are the benchmark's)."""
    import io
    import json

    from django.core.management import call_command

    from accounts.models import Tenant

    out = io.StringIO()
    call_command("benchmark", "--quick", "--no-worker", "--allow-missed", stdout=out)

    figures = json.loads(out.getvalue().strip().splitlines()[-1])
    for key in (
        "nodes_per_s_wide",
        "nodes_per_s_concurrent",
        "chain20_s",
        "raw_celery_chain20_s",
        "chain20_ratio",
    ):
        assert figures[key] > 0
    assert figures["dispatch_ms"]["median"] > 0 and figures["dispatch_ms"]["p99"] > 0
    assert figures["hand_off"] is True and figures["decide_1000_ms"]["calls"] > 1
    # What no figure includes is said; the broker pass needs workers of its own.
    assert any("warm-up" in item for item in figures["excluded"])
    assert any("'broker' figures" in item for item in figures["excluded"])
    # Every verdict is reported and counts.
    assert figures["targets_met"] == all(figures["targets"].values())
    assert "decide() over a 1,000-node run <= 50 ms per call" in figures["targets"]
    assert not Tenant.objects.filter(slug__startswith="benchmark-").exists()  # cleaned up
