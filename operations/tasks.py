"""Celery entry points of the engine: thin, take ids, idempotent (status-guarded services).

A connection kept from an earlier task may be dead (the database restarted): the engine's
idempotent services run through `reconnecting`, which retries them on a new connection
(the node task retries its claim and its result inside services.node_execute). Alerts are
not retried that way: a retry could send an e-mail twice.
"""

from celery import shared_task
from django.db import close_old_connections

from operations import dispatch, services
from operations.reconnect import reconnecting

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
