"""Faults survived with real processes: the broker (Redis) restarted mid-run.

PostgreSQL is the source of truth: what the broker loses is re-sent by the watchdog, and a
node's result is recorded once whatever the broker does.
"""

from __future__ import annotations

import os
import subprocess
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from operations.models import NodeRun
from operations.services import run_start, watchdog_sweep
from tests.factories import build_flow
from tests.integration.workers import wait_for
from tests.operations.test_workers import TERMINAL, http, node_status, statuses

pytestmark = pytest.mark.integration

BROKER = urlsplit(settings.CELERY_BROKER_URL)
LOCAL_REDIS = BROKER.scheme == "redis" and BROKER.hostname in ("127.0.0.1", "localhost")


def _redis(*args: str) -> subprocess.CompletedProcess:
    port = str(BROKER.port or 6379)
    return subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", port, *args],
                          capture_output=True, text=True, timeout=10)


def restart_redis() -> None:
    """Stop the machine's Redis (it keeps nothing on disk) and start it again, as CI does."""
    _redis("shutdown", "nosave")
    wait_for(lambda: _redis("ping").returncode != 0, timeout=10, what="Redis to stop")
    subprocess.run(
        ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1",
         "--port", str(BROKER.port or 6379), "--save", "", "--appendonly", "no",
         "--dir", "/tmp", "--logfile", "/tmp/redis-restarted-by-tests.log"],
        check=True, timeout=10,
    )
    wait_for(lambda: _redis("ping").stdout.strip() == "PONG", timeout=20, what="Redis to restart")


@pytest.mark.skipif(not LOCAL_REDIS or os.geteuid() != 0,
                    reason="needs the machine's own Redis as broker and the right to restart it")
@pytest.mark.xfail(
    strict=False,
    reason="Known defect (open in issue 8): after Redis restarts, the Celery 5.7 / kombu 5.7 "
    "worker logs 'Error on stopping Hub: ... no attribute hostname' and stops consuming, so a "
    "node the watchdog re-sends stays queued until the worker is restarted.",
)
def test_broker_restarted_mid_run_finishes_with_every_node_once(
    celery_workers, http_server, tenant, admin_user
):
    # Given: a run whose middle node is busy when the broker goes away
    flow, _ = build_flow(
        tenant=tenant, owner=admin_user,
        nodes=["first", http("slow", http_server.url("block/broker")), "left", "right", "join"],
        edges=[("first", "slow"), ("slow", "left"), ("slow", "right"),
               ("left", "join"), ("right", "join")],
    )
    run = run_start(flow=flow, mode="try", user=admin_user)
    node_status(run, "slow", "running")
    wait_for(lambda: http_server.waiting("broker"), what="the slow node's request")

    # When: Redis restarts (losing every message it held) and the node then finishes
    restart_redis()
    http_server.release("broker")

    def done():
        watchdog_sweep(resend_after=3)  # what beat runs every 15 s in production
        run.refresh_from_db()
        return run.status in TERMINAL

    wait_for(done, timeout=90, interval=0.5, what=lambda: (
        f"the run to finish after the broker restart; nodes: {statuses(run)}\n"
        f"worker log:\n{celery_workers.log_tail(40)}"))

    # Then: the run succeeded and every node completed exactly once
    assert run.status == "succeeded"
    done_nodes = list(NodeRun.objects.filter(run=run, status="succeeded")
                      .values_list("node_name", flat=True).order_by("node_name"))
    assert done_nodes == ["first", "join", "left", "right", "slow"]
    assert http_server.hits["/block/broker"] == 1
