"""Faults survived: the broker (Redis) restarted mid-run, with real processes.

PostgreSQL is the source of truth: what the broker loses is re-sent by the watchdog, and a
node's result is recorded once whatever the broker does. A re-sent message whose original
was merely slow is harmless: the claim is status-guarded.
"""

from __future__ import annotations

import os
import subprocess
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.utils import timezone

from operations import conf
from operations.choices import EventKind
from operations.models import NodeRun, RunEvent
from operations.services import run_start, watchdog_sweep
from tests.factories import build_flow, chain_flow
from tests.integration.workers import wait_for
from tests.operations.test_workers import TERMINAL, http, node_status, statuses

BROKER = urlsplit(settings.CELERY_BROKER_URL)
LOCAL_REDIS = BROKER.scheme == "redis" and BROKER.hostname in ("127.0.0.1", "localhost")


def _redis(*args: str) -> subprocess.CompletedProcess:
    port, db = str(BROKER.port or 6379), BROKER.path.strip("/") or "0"
    return subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", port, "-n", db, *args],
        capture_output=True,
        text=True,
        timeout=10,
    )


def stop_redis() -> None:
    """Stop the broker's Redis (it keeps nothing on disk: every message it held is lost)."""
    _redis("shutdown", "nosave")
    wait_for(lambda: _redis("ping").returncode != 0, timeout=10, what="Redis to stop")


def start_redis() -> None:
    """Start it again as CI does, empty."""
    subprocess.run(
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--port",
            str(BROKER.port or 6379),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/tmp",
            "--logfile",
            "/tmp/redis-restarted-by-tests.log",
        ],
        check=True,
        timeout=10,
    )
    wait_for(lambda: _redis("ping").stdout.strip() == "PONG", timeout=20, what="Redis to restart")


def start_blocked_diamond(http_server, key: str, *, tenant, owner):
    """A try run of first -> slow -> (left, right) -> join whose `slow` node is running,
    blocked on the test HTTP server under `key` (http_server.release(key) lets it go)."""
    flow, _ = build_flow(
        tenant=tenant,
        owner=owner,
        nodes=["first", http("slow", http_server.url(f"block/{key}")), "left", "right", "join"],
        edges=[
            ("first", "slow"),
            ("slow", "left"),
            ("slow", "right"),
            ("left", "join"),
            ("right", "join"),
        ],
    )
    run = run_start(flow=flow, mode="try", user=owner)
    node_status(run, "slow", "running")
    wait_for(lambda: http_server.waiting(key), what="the slow node's request")
    return run


def test_a_slow_message_sent_again_by_the_watchdog_runs_its_node_once(tenant, admin_user, engine):
    # Given: a node whose message is still on its way (a busy broker) when the re-send
    # delay passes
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=2)
    run = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    resend_after = conf.get("TRIBUTARY_QUEUED_RESEND_AFTER")
    queued = NodeRun.objects.filter(run=run, status="queued")
    queued.update(queued_at=timezone.now() - timedelta(seconds=resend_after - 5))
    assert engine.call(watchdog_sweep)["resent"] == 0
    queued.update(queued_at=timezone.now() - timedelta(seconds=resend_after + 1))

    # When: the watchdog sends it again, and both messages arrive
    assert engine.call(watchdog_sweep)["resent"] == 1
    assert len(engine.nodes) == 2 and engine.nodes[0] == engine.nodes[1]
    engine.drain()

    # Then: the node ran once, and so did the rest of the run
    run.refresh_from_db()
    assert run.status == "succeeded"
    attempts = NodeRun.objects.filter(run=run).values_list("node_name", "attempt", "status")
    assert sorted(attempts) == [("n1", 1, "succeeded"), ("n2", 1, "succeeded")]
    assert NodeRun.objects.get(run=run, node_name="n1").log.count("attempt 1 started") == 1


@pytest.mark.integration
@pytest.mark.skipif(
    not LOCAL_REDIS or os.geteuid() != 0,
    reason="needs the machine's own Redis as broker and the right to restart it",
)
def test_broker_restarted_mid_run_finishes_with_every_node_once(
    celery_workers, http_server, tenant, admin_user
):
    # Given: a run whose middle node is busy (its message unacknowledged, the worker waiting
    # on Redis for more) when the broker goes away
    run = start_blocked_diamond(http_server, "broker", tenant=tenant, owner=admin_user)

    # When: Redis stops, the node finishes meanwhile (one of the nodes it made ready cannot
    # be sent), and Redis comes back empty
    stop_redis()
    http_server.release("broker")
    wait_for(
        lambda: "could not send node run" in celery_workers.log_tail(400),
        timeout=30,
        what=lambda: f"a node's message to be lost; worker log:\n{celery_workers.log_tail(40)}",
    )
    start_redis()

    def done():
        watchdog_sweep(resend_after=3)  # what beat runs every 15 s in production
        run.refresh_from_db()
        return run.status in TERMINAL

    wait_for(
        done,
        timeout=90,
        interval=0.5,
        what=lambda: (
            f"the run to finish after the broker restart; nodes: {statuses(run)}\n"
            f"worker log:\n{celery_workers.log_tail(40)}"
        ),
    )

    # Then: the run succeeded, the lost node was sent again, and every node ran exactly once
    assert run.status == "succeeded", statuses(run)
    attempts = NodeRun.objects.filter(run=run).values_list("node_name", "status")
    assert sorted(attempts) == [
        (name, "succeeded") for name in ["first", "join", "left", "right", "slow"]
    ]
    assert http_server.hits["/block/broker"] == 1
    assert RunEvent.objects.filter(run=run, kind=EventKind.NODE_RESENT).exists()
    assert celery_workers.alive(), "the worker exited after the broker restart"
