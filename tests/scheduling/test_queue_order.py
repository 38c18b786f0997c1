"""A worker takes beat's wake-ups before the node tasks waiting in the node queue.

Beat's wake-ups travel in their own queue (tributary.scheduling), which workers consume
before `celery`. With a backlog of node-queue messages and a few wake-ups waiting, a single
worker process (one task at a time) is started; the test records the order in which it
runs them. On Redis the worker asks its queues in order every time (queue_order_strategy
"priority"; "round_robin" would alternate): the wake-ups run first. RabbitMQ pushes
messages from both queues to the worker's consumers, prefetch 1: wake-ups alternate with
node tasks, never behind the backlog. README, "Brokers: Redis or RabbitMQ".
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from config.benchmark.processes import CeleryProcess
from config.benchmark.tasks import noop
from config.celery_app import app
from tests.integration.workers import wait_for

pytestmark = pytest.mark.integration

BACKLOG = 30
WAKE_UPS = 5


def _marker(name: str) -> Path:
    return Path(settings.VAR_DIR) / "benchmark" / name


@pytest.mark.django_db(transaction=True)
def test_a_wake_up_overtakes_the_node_tasks_waiting_before_it(tmp_path):
    # Given a backlog of node-queue messages, then one wake-up on the scheduling queue
    app.control.purge()
    tag = uuid.uuid4().hex[:8]
    nodes = [f"order-{tag}-node-{i:02d}" for i in range(BACKLOG)]
    wake_ups = [f"order-{tag}-wake-up-{i}" for i in range(WAKE_UPS)]
    for name in nodes:
        noop.apply_async(args=[name])  # the default queue, as node tasks
    for name in wake_ups:
        noop.apply_async(args=[name], queue=settings.SCHEDULING_QUEUE)

    # When one worker process starts on both queues, in the configured order
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.integration.worker_settings",
        "TRIBUTARY_TEST_DB_NAME": str(connection.settings_dict["NAME"]),
    }
    worker = CeleryProcess(
        "worker",
        [
            "--pool=solo",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"order-{tag}@%h",
        ],
        log=tmp_path / "worker.log",
        env=env,
    )
    try:
        names = [*nodes, *wake_ups]
        wait_for(
            lambda: all(_marker(n).exists() for n in names),
            timeout=60,
            what=lambda: f"the worker to run every task; log:\n{worker.tail()}",
        )
    finally:
        worker.stop(signal.SIGQUIT, group=False, timeout=10)
    ran = sorted(names, key=lambda n: float(_marker(n).read_text()))
    for name in names:
        _marker(name).unlink()

    # Then on Redis every wake-up ran before any node task; on RabbitMQ they alternate with
    # node tasks (about one each) and none waits behind the backlog.
    positions = [ran.index(name) for name in wake_ups]
    if settings.CELERY_BROKER_URL.startswith("redis"):
        assert positions == list(range(WAKE_UPS)), positions
    else:
        assert max(positions) <= 3 * WAKE_UPS < BACKLOG, positions
