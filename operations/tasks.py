"""Celery entry points of the engine: thin, take ids, idempotent (status-guarded services).

A connection kept from an earlier task may be dead (the database restarted): the engine's
idempotent services run through `reconnecting`, which retries them on a new connection
(the node task retries its claim and its result inside services.node_execute). Alerts are
not retried that way: a retry could send an e-mail twice.
"""

import logging
import threading

from celery import shared_task
from celery.signals import worker_init, worker_ready, worker_shutdown
from django.db import close_old_connections, connection

from operations import conf, dispatch, services
from operations.reconnect import reconnecting
from operations.services import slots

logger = logging.getLogger("tributary.engine")

# Seconds kept in hand below the soft time limit when a task goes on with another node.
SOFT_LIMIT_MARGIN = 20


@shared_task(bind=True, name="operations.node_execute", acks_late=True, reject_on_worker_lost=True)
def node_execute(self, node_run_id: int) -> None:
    """Execute one queued node run; a duplicate or late delivery does nothing."""
    # Connections outlive tasks (CELERY_DB_REUSE_MAX): drop a broken or expired one first.
    close_old_connections()
    _hard, soft = self.request.timelimit or (None, None)
    # What is left of this task's soft time limit bounds the nodes it may go on with.
    budget = soft - SOFT_LIMIT_MARGIN if soft else None
    services.node_execute(node_run_id, budget=budget)


@shared_task(name="operations.relay_nodes", acks_late=True, ignore_result=True)
def relay_nodes(items: list) -> None:
    """Send the node messages another task handed over (dispatch.send_nodes_relayed)."""
    dispatch.send_nodes_now(dispatch.relayed_items(items))


@shared_task(name="operations.run_evaluate", acks_late=True)
def run_evaluate(run_id: int) -> None:
    """Re-decide a run whose concurrency gate may have opened."""
    close_old_connections()
    reconnecting(services.run_evaluate, run_id)


@shared_task(name="operations.batch_advance", acks_late=True)
def batch_advance(batch: str) -> None:
    """Start the next runs of a time range after one of them finished."""
    close_old_connections()
    reconnecting(services.batch_advance, batch)


@shared_task(name="operations.runs_admit", acks_late=True)
def runs_admit(tenant_id: int) -> None:
    """Let runs waiting for their tenant's active-run limit join, best first."""
    close_old_connections()
    reconnecting(services.runs_admit, tenant_id)


@shared_task(name="operations.watchdog", acks_late=True, time_limit=300, soft_time_limit=240)
def watchdog() -> dict:
    """Periodic: lost workers, parked retries that are due, messages the broker lost."""
    close_old_connections()
    return reconnecting(services.watchdog_sweep)


@shared_task(name="operations.deadline_sweep", acks_late=True, time_limit=60, soft_time_limit=50)
def deadline_sweep() -> dict:
    """Periodic (every second): runs predicted to miss, or still going at, their deadline."""
    close_old_connections()
    return reconnecting(services.deadline_sweep)


@shared_task(name="operations.expire_run_request_keys", time_limit=300, soft_time_limit=240)
def expire_run_request_keys() -> int:
    """Periodic: forget Idempotency-Keys older than their 24-hour window."""
    from operations.services.idempotency import run_request_keys_expire

    close_old_connections()
    return run_request_keys_expire()


@shared_task(name="operations.deadline_check", acks_late=True, time_limit=60, soft_time_limit=50)
def deadline_check(run_id: int) -> None:
    """One run at the moment of its deadline (the sweep sends it just before)."""
    close_old_connections()
    reconnecting(services.deadline_check, run_id=run_id)


@shared_task(name="operations.send_alerts", acks_late=True, time_limit=120, soft_time_limit=110)
def send_alerts(run_id: int, event: str, detail: dict | None = None) -> None:
    """Tell the owner and the flow's recipients about a run's event (failed, deadline …)."""
    from operations import alerts

    close_old_connections()
    alerts.send_alerts(run_id=run_id, event=event, detail=detail)


@shared_task(name="operations.deliver_webhook", acks_late=True, time_limit=60, soft_time_limit=50)
def deliver_webhook(
    run_id: int,
    event: str,
    url: str,
    attempt: int,
    channel: str = "webhook",
    detail: dict | None = None,
) -> None:
    """POST one alert to a webhook or chat robot; on failure try again later with backoff."""
    from operations import alerts

    close_old_connections()
    delay = alerts.deliver_webhook(
        run_id=run_id, event=event, url=url, attempt=attempt, channel=channel, detail=detail
    )
    if delay is not None:
        deliver_webhook.apply_async(
            (run_id, event, url, attempt + 1, channel, detail), countdown=delay
        )


# --------------------------------------------------------------------------- worker slots
# Fair share learns the worker slots that are up from the workers themselves: each worker's
# main process reports its pool size when it is ready and then every
# TRIBUTARY_WORKER_REPORT_SECONDS (its heartbeat), and withdraws it when it stops cleanly.


@worker_init.connect(weak=False)
def prepare_worker(sender=None, **_kwargs) -> None:
    """Before the pool starts: every node type loads what it executes with, so a prefork
    pool's processes inherit it instead of each paying for it at its first node (a fresh
    process's first http node took 0.14 s of CPU, a warm one's 7 ms; a burst of work on a
    fresh pool spent that in every process at once, and other tenants' nodes waited)."""
    from flows.nodes import base as nodes

    try:
        nodes.prepare_all()
    except Exception:  # noqa: BLE001 - a node then prepares at its first execution
        logger.warning("could not prepare the node types before the pool", exc_info=True)


@worker_ready.connect(weak=False)
def report_worker_slots(sender=None, **_kwargs) -> None:
    name = getattr(sender, "hostname", None) or "worker"
    controller = getattr(sender, "controller", None)
    concurrency = int(getattr(controller, "concurrency", 0) or 1)
    _reporter.start(name, concurrency)


@worker_shutdown.connect(weak=False)
def withdraw_worker_slots(sender=None, **_kwargs) -> None:
    _reporter.stop()


class _Reporter:
    """The heartbeat thread of a worker's main process (one per process)."""

    def __init__(self) -> None:
        self.name = ""
        self.stopping = threading.Event()

    def start(self, name: str, concurrency: int) -> None:
        self.name = name
        self.stopping.clear()
        self._report(concurrency)
        threading.Thread(
            target=self._loop, args=(concurrency,), name="worker-slots", daemon=True
        ).start()

    def _report(self, concurrency: int) -> None:
        try:
            slots.worker_report(name=self.name, concurrency=concurrency)
        except Exception:  # noqa: BLE001 - the next beat tries again
            logger.warning("could not report the worker's slots", exc_info=True)
        finally:
            close_old_connections()

    def _loop(self, concurrency: int) -> None:
        while not self.stopping.wait(conf.get("TRIBUTARY_WORKER_REPORT_SECONDS")):
            self._report(concurrency)
        connection.close()

    def stop(self) -> None:
        if not self.name:
            return
        self.stopping.set()
        try:
            slots.worker_gone(name=self.name)
        except Exception:  # noqa: BLE001 - it goes stale instead
            logger.warning("could not withdraw the worker's slots", exc_info=True)


_reporter = _Reporter()
