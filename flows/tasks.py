"""Celery entry points of flows: webhook deliveries (their own queue, flows.webhooks.QUEUE)."""

from celery import shared_task
from django.db import close_old_connections

from flows.webhooks import services


@shared_task(
    bind=True,
    name=services.TASK,
    acks_late=True,
    time_limit=60,
    soft_time_limit=50,
    ignore_result=True,
)
def deliver_webhook_event(self, delivery_id: int) -> None:
    """Send one webhook delivery; come back later when its stream is busy or the POST failed."""
    close_old_connections()
    delay = services.delivery_send(delivery_id)
    if delay is not None:
        self.apply_async((delivery_id,), countdown=delay)
