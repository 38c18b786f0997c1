"""Fair share on real Celery workers and real PostgreSQL connections.

Tenant limits and data-source pools hold nodes back as `waiting` with a reason, priorities
decide who goes next, a SIGKILLed worker's pool slot is freed by the watchdog, and claims
racing for the last slot on separate connections take it exactly once. http nodes call the
test's server, whose `/block/<key>` requests hang until the test releases them; SQL nodes
block on an advisory lock the test holds. The workers report 4 slots (tests/integration).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading

import psycopg
import pytest
from django.db import connection, connections
from django.utils import timezone

from accounts.services import tenant_set_limits
from flows.models import DataSource
from flows.services import flow_publish
from operations.models import FlowRun, NodeRun, WorkerSlots
from operations.services import run_create_scheduled, run_start, slots, watchdog_sweep
from tests.factories import ScheduleFactory, build_flow
from tests.integration.workers import wait_for

pytestmark = pytest.mark.integration

TERMINAL = {"succeeded", "failed", "stopped", "skipped"}
PG = "host=127.0.0.1 user=postgres dbname=postgres"


def http(name, url, **extra):
    return {"name": name, "type": "http", "config": {"url": url}, **extra}


def finished(run, timeout: float = 30) -> FlowRun:
    def done():
        run.refresh_from_db()
        return run.status in TERMINAL

    wait_for(done, timeout=timeout, what=f"run {run.pk} to finish")
    return run


def statuses(run) -> dict:
    return dict(NodeRun.objects.filter(run=run, is_latest=True).values_list("node_name", "status"))


def running(tenant) -> int:
    return NodeRun.objects.filter(tenant=tenant, status="running").count()


def waiting_for(tenant, reason: str) -> list[NodeRun]:
    return list(NodeRun.objects.filter(tenant=tenant, status="waiting", waiting_reason=reason))


def _slots_reported():
    return wait_for(
        lambda: WorkerSlots.objects.filter(concurrency=4).exists(),
        what="the worker to report its slots",
    )


def test_tenant_limit_holds_nodes_with_a_reason_and_a_lowered_limit_lets_running_ones_finish(
    celery_workers, tenant, admin_user, superuser, http_server
):
    _slots_reported()
    tenant_set_limits(tenant=tenant, actor=superuser, limits={"running_nodes": 2})
    flow, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[http(f"b{i}", http_server.url(f"block/b{i}")) for i in range(4)],
    )
    run = run_start(flow=flow, mode="try", user=admin_user)
    # Given two of four blocking nodes running (the limit) and two waiting, saying why ...
    wait_for(lambda: len(waiting_for(tenant, "tenant_limit")) == 2, what="two nodes held back")
    wait_for(lambda: running(tenant) == 2, what="two nodes running")
    held = waiting_for(tenant, "tenant_limit")[0]
    assert "tenant limit (2 running nodes)" in held.waiting_detail
    # ... when the limit is lowered to 1, nothing running is stopped ...
    tenant_set_limits(tenant=tenant, actor=superuser, limits={"running_nodes": 1})
    busy = [n.node_name for n in NodeRun.objects.filter(run=run, status="running")]
    assert len(busy) == 2
    # ... and when one of them finishes, no new node starts (the other still runs: 1 = limit).
    http_server.release(busy[0])
    wait_for(lambda: statuses(run)[busy[0]] == "succeeded", what="the released node to finish")
    # (A worker may still hold the old limit for up to TRIBUTARY_FAIR_REFRESH_SECONDS and send
    # a held node, whose claim then parks it again: what must hold is the settled state.)
    wait_for(
        lambda: running(tenant) == 1 and len(waiting_for(tenant, "tenant_limit")) == 2,
        what="one running node and two still held back",
    )
    # When the limit is raised again, the waiting nodes start; then everything succeeds.
    tenant_set_limits(tenant=tenant, actor=superuser, limits={"running_nodes": 3})
    wait_for(lambda: running(tenant) == 3, what="three running nodes")
    for i in range(4):
        http_server.release(f"b{i}")
    assert finished(run).status == "succeeded", (statuses(run), celery_workers.log_tail())
    assert not NodeRun.objects.filter(run=run).exclude(waiting_detail="").exists()


def test_a_worker_does_not_keep_its_slot_for_the_next_node_beyond_a_lowered_limit(
    celery_workers, tenant, admin_user, superuser, http_server
):
    # Given two chains a0 -> c0 and a1 -> c1 whose heads run (the limit, 2) ...
    _slots_reported()
    tenant_set_limits(tenant=tenant, actor=superuser, limits={"running_nodes": 2})
    flow, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[http(n, http_server.url(f"block/{n}")) for n in ("a0", "a1", "c0", "c1")],
        edges=[("a0", "c0"), ("a1", "c1")],
    )
    run = run_start(flow=flow, mode="try", user=admin_user)
    wait_for(lambda: running(tenant) == 2, what="both heads running")
    # ... when the limit is lowered to 1 and a0 finishes, its worker does not go on with c0
    # itself (the hand-off keeps a slot): c0 waits, because a1 alone fills the limit.
    tenant_set_limits(tenant=tenant, actor=superuser, limits={"running_nodes": 1})
    http_server.release("a0")
    wait_for(
        lambda: statuses(run)["c0"] == "waiting" and running(tenant) == 1,
        what="c0 held back by the lowered limit",
    )
    assert NodeRun.objects.get(run=run, node_name="c0").waiting_reason == "tenant_limit"
    for name in ("a1", "c0", "c1"):
        http_server.release(name)
    assert finished(run).status == "succeeded", (statuses(run), celery_workers.log_tail())


def test_the_default_limit_keeps_a_slot_for_another_tenant(
    celery_workers, tenant, other_tenant, admin_user, outsider, http_server
):
    # Given 4 worker slots and two tenants with flows: the default leaves one slot free.
    _slots_reported()
    busy, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[http(f"a{i}", http_server.url(f"block/a{i}")) for i in range(6)],
    )
    quick, _ = build_flow(tenant=other_tenant, owner=outsider, nodes=["x", "y"], edges=[("x", "y")])
    run_a = run_start(flow=busy, mode="try", user=admin_user)
    wait_for(lambda: running(tenant) == 3, what="tenant A to hold its three slots")
    wait_for(lambda: len(waiting_for(tenant, "tenant_limit")) == 3, what="A's other nodes held")
    # When tenant B starts a run while A's nodes block, B's run goes through at once.
    # (What must hold is that B does not wait for A: A's nodes block until the test
    # releases them, so B finishing while they still block shows it; how fast is the
    # fairness benchmark's figure.)
    run_b = run_start(flow=quick, mode="try", user=outsider)
    assert finished(run_b).status == "succeeded", celery_workers.log_tail()
    assert running(tenant) == 3
    assert len(waiting_for(tenant, "tenant_limit")) == 3
    for i in range(6):
        http_server.release(f"a{i}")
    assert finished(run_a).status == "succeeded", (statuses(run_a), celery_workers.log_tail())


def test_scheduled_runs_go_before_manual_runs_before_backfills(
    celery_workers, tenant, admin_user, superuser, http_server
):
    _slots_reported()
    tenant_set_limits(tenant=tenant, actor=superuser, limits={"running_nodes": 1})
    gate, _ = build_flow(
        tenant=tenant, owner=admin_user, nodes=[http("gate", http_server.url("block/gate"))]
    )
    gate_run = run_start(flow=gate, mode="try", user=admin_user)
    wait_for(lambda: running(tenant) == 1, what="the gate to hold the tenant's slot")
    at = dt.datetime(2024, 1, 15, tzinfo=dt.UTC)
    backfill, _ = build_flow(
        tenant=tenant, owner=admin_user, nodes=["bf"], concurrency_policy="ignore"
    )
    ScheduleFactory(flow=backfill, cron="0 0 * * *", start_date=dt.date(2024, 1, 1))
    manual, _ = build_flow(tenant=tenant, owner=admin_user, nodes=["man"])
    scheduled, _ = build_flow(tenant=tenant, owner=admin_user, nodes=["sch"])
    flow_publish(flow=scheduled, user=admin_user)
    # Given a backfill, then a manual run, then a scheduled run, all held by the limit ...
    runs = run_start(flow=backfill, mode="time_range", user=admin_user, start=at, end=at)
    run_start(flow=manual, mode="try", user=admin_user)
    run_create_scheduled(flow_id=scheduled.pk, fire_time=at)
    wait_for(lambda: len(waiting_for(tenant, "tenant_limit")) == 3, what="three nodes held")
    assert len(runs) == 1
    # ... when the slot frees up, they start in priority order, not in arrival order.
    http_server.release("gate")
    assert finished(gate_run).status == "succeeded"

    def all_done():
        done = NodeRun.objects.filter(node_name__in=["bf", "man", "sch"], status="succeeded")
        return done.count() == 3

    wait_for(all_done, what="the three held nodes to run")
    order = list(
        NodeRun.objects.filter(node_name__in=["bf", "man", "sch"])
        .order_by("started_at")
        .values_list("node_name", flat=True)
    )
    assert order == ["sch", "man", "bf"]


@pytest.mark.skipif(not os.environ.get("TEST_POSTGRES_URL"), reason="needs TEST_POSTGRES_URL")
def test_a_sigkilled_worker_holding_a_pool_slot_has_it_freed_by_the_watchdog(
    celery_workers, tenant, admin_user
):
    _slots_reported()
    ds = DataSource(
        tenant=tenant,
        name="warehouse",
        engine="postgresql",
        host="127.0.0.1",
        port=5432,
        database="postgres",
        username="postgres",
        max_concurrency=1,
    )
    ds.password = ""
    ds.save()
    key = 7_000_000 + os.getpid() % 100_000
    holder = psycopg.connect(PG, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (key,))
    try:
        sql = f"SELECT pg_advisory_lock({key}), pg_advisory_unlock({key})"
        hold, _ = build_flow(
            tenant=tenant,
            owner=admin_user,
            nodes=[{"name": "hold", "type": "sql", "config": {"datasource": ds.pk, "sql": sql}}],
        )
        quick, _ = build_flow(
            tenant=tenant,
            owner=admin_user,
            nodes=[
                {"name": "quick", "type": "sql", "config": {"datasource": ds.pk, "sql": "SELECT 1"}}
            ],
        )
        run_hold = run_start(flow=hold, mode="try", user=admin_user)
        holding = wait_for(
            lambda: NodeRun.objects.filter(run=run_hold, status="running").first(),
            what="the node to hold the pool's slot",
        )
        # Given the pool's only slot taken, another node on it waits, naming the pool ...
        run_quick = run_start(flow=quick, mode="try", user=admin_user)
        held = wait_for(
            lambda: NodeRun.objects.filter(run=run_quick, status="waiting").first(),
            what="the second node to wait for the pool",
        )
        assert held.waiting_reason == "pool"
        assert held.waiting_detail == "pool warehouse full (1 running)"
        # ... when the worker process holding the slot is SIGKILLed ...
        os.kill(int(holding.worker.rpartition(":")[2]), signal.SIGKILL)
        # ... the watchdog (or the redelivered message) declares the node lost, which frees
        # its slot; the node that waited and the lost node's retry take turns on the pool.
        holder.execute("SELECT pg_advisory_unlock(%s)", (key,))

        def swept():
            watchdog_sweep(heartbeat_timeout=2)
            return NodeRun.objects.filter(run=run_hold, attempt=1, status="failed").exists()

        wait_for(swept, timeout=30, interval=0.5, what="the lost node to be failed")
        assert finished(run_quick).status == "succeeded", celery_workers.log_tail()
        assert finished(run_hold).status == "succeeded", celery_workers.log_tail()
        lost = NodeRun.objects.get(run=run_hold, attempt=1)
        assert lost.error.startswith("worker lost")
    finally:
        holder.close()
    # No slot of the pool is left taken.
    assert NodeRun.objects.filter(status="running", pools__contains=f",{ds.pk},").count() == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL: real racing sessions")
def test_concurrent_claims_racing_for_the_last_slot_take_it_once(
    transactional_db, tenant, other_tenant, admin_user, outsider, superuser
):
    # Given a tenant with a limit of 3 and 2 nodes running, and 6 queued nodes ...
    WorkerSlots.objects.create(name="race", concurrency=8, seen_at=timezone.now())
    tenant_set_limits(tenant=tenant, actor=superuser, limits={"running_nodes": 3})
    flow, _ = build_flow(tenant=tenant, owner=admin_user, nodes=[f"n{i}" for i in range(8)])
    from operations import dispatch

    sent = []
    original = dispatch.publisher
    dispatch.publisher = lambda items: sent.extend(items)
    try:
        for _round in range(3):
            run = run_start(flow=flow, mode="try", user=admin_user)
            ids = list(NodeRun.objects.filter(run=run).order_by("pk").values_list("pk", flat=True))
            NodeRun.objects.filter(pk__in=ids[:2]).update(status="running")
            NodeRun.objects.filter(pk__in=ids[2:]).update(status="queued")
            slots.forget_state()
            barrier = threading.Barrier(6)
            results: list = []

            def claim(pk, barrier=barrier, results=results):
                try:
                    barrier.wait()
                    got, _parked = slots.claim_fair(pk, timezone.now(), f"racer:{pk}")
                    results.append(got is not None)
                finally:
                    connections.close_all()

            # ... when six workers claim them at the same moment on their own connections ...
            threads = [threading.Thread(target=claim, args=(pk,)) for pk in ids[2:]]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            # ... exactly one takes the last slot; the others wait, saying why.
            assert sum(results) == 1, results
            assert NodeRun.objects.filter(run=run, status="running").count() == 3
            assert (
                NodeRun.objects.filter(
                    run=run, status="waiting", waiting_reason="tenant_limit"
                ).count()
                == 5
            )
            NodeRun.objects.filter(run=run).update(status="stopped")
            FlowRun.objects.filter(pk=run.pk).update(status="stopped")
    finally:
        dispatch.publisher = original
