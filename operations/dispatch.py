"""Sending node and run tasks to the broker once the transaction that decided them commits.

Tasks are sent by name (the names operations/tasks.py registers), so tasks call services
and never the other way round. Task ids derive from the node run id and its `queued_at`,
so a stop or pause can revoke exactly the messages it knows of, and a re-sent node gets a
fresh id that an earlier revoke does not cover.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime

from django.db import transaction

from config.celery_app import app

logger = logging.getLogger("tributary.engine")

# The names of operations/tasks.py's tasks.
NODE_TASK = "operations.node_execute"
RELAY_TASK = "operations.relay_nodes"
RUN_TASKS = {
    "run_evaluate": "operations.run_evaluate",
    "batch_advance": "operations.batch_advance",
    "runs_admit": "operations.runs_admit",
}

# Seconds of slack above a node's own timeout before Celery's limits step in.
SOFT_LIMIT_GRACE = 30
HARD_LIMIT_GRACE = 60


def node_task_id(node_run_id: int, queued_at: datetime | None) -> str:
    stamp = int(queued_at.timestamp() * 1_000_000) if queued_at else 0
    return f"node-{node_run_id}-{stamp}"


def _publish(items: list[tuple[int, datetime | None, float | None, int]]) -> None:
    # Straight to the queue (the default exchange): one broker round trip per message
    # instead of two (no lookup of the "celery" exchange's bindings each time).
    # Several messages leave in one round trip where the transport can batch (kombu's
    # Producer.batch: one Redis pipeline), e.g. the first nodes of a minute's runs.
    queue = app.conf.task_default_queue
    try:
        with app.producer_or_acquire() as producer, _batch(producer, len(items)):
            for node_run_id, queued_at, countdown, timeout in items:
                app.send_task(
                    NODE_TASK,
                    args=[node_run_id],
                    exchange="",
                    routing_key=queue,
                    task_id=node_task_id(node_run_id, queued_at),
                    countdown=countdown if countdown and countdown > 0 else None,
                    soft_time_limit=timeout + SOFT_LIMIT_GRACE,
                    time_limit=timeout + HARD_LIMIT_GRACE,
                    producer=producer,
                )
    except Exception:  # noqa: BLE001 - the watchdog re-sends what did not leave
        logger.exception(
            "could not send node runs %s; the watchdog will re-send them",
            [item[0] for item in items][:20],
        )


def _batch(producer, count: int):
    return producer.batch() if count > 1 else contextlib.nullcontext()


# Tests replace this to run node tasks synchronously instead of through a broker.
publisher = _publish


def send_nodes_now(items: list[tuple[int, datetime | None, float | None, int]]) -> None:
    """Send at once, inside the deciding transaction (its receivers wait on its row locks)."""
    if items:
        publisher(list(items))


def send_nodes(items: list[tuple[int, datetime | None, float | None, int]]) -> None:
    """After commit, send (node_run_id, queued_at, countdown, timeout) items to the workers."""
    if items:
        transaction.on_commit(lambda: publisher(list(items)))


def _publish_relay(items: list[tuple[int, datetime | None, float | None, int]]) -> None:
    try:
        app.send_task(RELAY_TASK, args=[[_relay_item(item) for item in items]])
    except Exception:  # noqa: BLE001 - the watchdog re-sends what did not leave
        logger.exception(
            "could not hand node runs %s to the relay; the watchdog will re-send them",
            [item[0] for item in items][:20],
        )


def _relay_item(item) -> list:
    node_run_id, queued_at, countdown, timeout = item
    return [node_run_id, queued_at.isoformat() if queued_at else None, countdown, timeout]


def relayed_items(payload: list) -> list[tuple[int, datetime | None, float | None, int]]:
    """The items a relay message carries, as `send_nodes` takes them."""
    return [
        (
            int(node_run_id),
            datetime.fromisoformat(queued_at) if queued_at else None,
            countdown,
            int(timeout),
        )
        for node_run_id, queued_at, countdown, timeout in payload
    ]


# Tests replace this to run the relayed nodes synchronously.
relay_publisher = _publish_relay


def send_nodes_relayed(items: list[tuple[int, datetime | None, float | None, int]]) -> None:
    """After commit, send these node messages through one relay task instead of one by one.

    For the caller whose own latency matters more than its nodes' (beat's wake-up creating
    a minute's runs): it sends one message; a worker sends the node messages when the
    scheduling queue has nothing waiting. A lost relay is covered as a lost node message
    (the watchdog re-sends queued nodes), a duplicate relay by the node claim.
    """
    if len(items) <= 1:
        send_nodes(items)
    elif items:
        transaction.on_commit(lambda: relay_publisher(list(items)))


def _publish_run_task(name: str, run_id) -> None:
    try:
        app.send_task(RUN_TASKS[name], args=[run_id])
    except Exception:  # noqa: BLE001 - the watchdog's sweep catches up
        logger.exception("could not send %s(%s)", name, run_id)


run_publisher = _publish_run_task


def send_run_task(name: str, run_id) -> None:
    """After commit, send a run-level task (`run_evaluate`, `batch_advance`)."""
    transaction.on_commit(lambda: run_publisher(name, run_id))


def revoke(task_ids: list[str]) -> None:
    """After commit, ask the workers to drop these messages (status guards cover a miss)."""
    if not task_ids:
        return

    def _revoke():
        try:
            app.control.revoke(task_ids)
        except Exception:  # noqa: BLE001 - e.g. a broker without broadcast support
            logger.info("revoke not delivered; queued tasks will find their node stopped")

    transaction.on_commit(_revoke)


def _send_task(name: str, args: list) -> None:
    app.send_task(name, args=args)


# Tests replace this to run the task in-process.
task_publisher = _send_task


def send_task_on_commit(name: str, *args) -> None:
    """After commit, send any other task of the app by its name (alerts, webhooks)."""
    transaction.on_commit(lambda: task_publisher(name, list(args)))


def _send_task_at(name: str, args: list, eta: datetime) -> None:
    from django.conf import settings

    # Beside beat's wake-ups: a deadline check must not wait behind node tasks.
    app.send_task(name, args=args, eta=eta, queue=settings.SCHEDULING_QUEUE)


# Tests replace this too.
timed_task_publisher = _send_task_at


def send_task_at(name: str, eta: datetime, *args) -> None:
    """Send a task by name to run at `eta` (seconds ahead at most: it waits in the worker)."""
    timed_task_publisher(name, list(args), eta)
