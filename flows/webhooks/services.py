"""Webhook writes: subscriptions, the events apps report, and sending one delivery.

Delivery rules, in one place (`delivery_send`): a delivery waits while an earlier one of
its stream (the same run, flow or schedule) for the same subscription is still open, so a
subscriber sees a run's events in order; a failed POST is tried again with backoff
(`backoff`) up to MAX_ATTEMPTS; every POST is recorded as a WebhookAttempt.
"""

from __future__ import annotations

import json
import secrets as token_secrets
import time
import uuid
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from flows.models import WebhookAttempt, WebhookDelivery, WebhookSubscription

from . import DELIVERY_HEADER, EVENT_HEADER, EVENT_TYPES, SIGNATURE_HEADER, signature

TASK = "flows.deliver_webhook_event"
MAX_ATTEMPTS = 8
TIMEOUT_S = 10.0
# A delivery claimed by a worker that died is taken again after this long.
CLAIM_TIMEOUT = timedelta(minutes=5)
# How long a delivery waits for an earlier one of its stream before it looks again.
ORDER_WAIT_S = 2.0
MIN_SECRET = 16


def backoff(attempt: int) -> float:
    """Seconds before attempt `attempt + 1`: 2, 4, 8 … at most 10 minutes."""
    return float(min(2**attempt, 600))


def _clean(*, url=None, events=None, secret=None, description=None) -> dict:
    errors: dict[str, list[str]] = {}
    clean: dict = {}
    if url is not None:
        try:
            if not isinstance(url, str) or len(url) > 2000:
                raise ValidationError("bad")
            URLValidator(schemes=["http", "https"])(url)
            clean["url"] = url
        except ValidationError:
            errors["url"] = ["Give an http(s) URL of at most 2000 characters."]
    if events is not None:
        if (
            not isinstance(events, list)
            or not events
            or not all(isinstance(e, str) and e in EVENT_TYPES for e in events)
        ):
            errors["events"] = [f"Give a non-empty list of: {', '.join(EVENT_TYPES)}."]
        else:
            clean["events"] = sorted(set(events), key=EVENT_TYPES.index)
    if secret is not None:
        if not isinstance(secret, str) or not MIN_SECRET <= len(secret) <= 200:
            errors["secret"] = [f"Give {MIN_SECRET} to 200 characters, or leave it out."]
        else:
            clean["secret"] = secret
    if description is not None:
        clean["description"] = str(description)[:200]
    if errors:
        raise ValidationError(errors)
    return clean


def webhook_validate(**fields) -> dict:
    """The rules of a subscription's fields (url, events, secret, description), for the
    forms that write through the services below; raises ValidationError by field."""
    return _clean(**fields)


def _history(obj, user, reason: str) -> None:
    obj._history_user = user
    obj._change_reason = reason


def webhook_create(
    *, tenant, user: User, url: str, events: list, secret: str | None = None, description=""
) -> tuple[WebhookSubscription, str]:
    """Subscribe a URL; returns it with its secret (generated when not given), shown once."""
    clean = _clean(url=url, events=events, secret=secret, description=description)
    plain = clean.pop("secret", None) or "whsec_" + token_secrets.token_urlsafe(32)
    subscription = WebhookSubscription(tenant=tenant, created_by=user, **clean)
    subscription.secret = plain
    _history(subscription, user, "webhook created")
    subscription.save()
    return subscription, plain


def webhook_update(
    *, subscription: WebhookSubscription, user: User, **fields
) -> WebhookSubscription:
    """Change the URL, events, description, or pause it (`is_active`); a new `secret` too."""
    is_active = fields.pop("is_active", None)
    clean = _clean(**fields)
    plain = clean.pop("secret", None)
    for key, value in clean.items():
        setattr(subscription, key, value)
    if plain is not None:
        subscription.secret = plain
    if is_active is not None:
        subscription.is_active = bool(is_active)
    _history(subscription, user, "webhook changed")
    subscription.save()
    return subscription


def webhook_delete(*, subscription: WebhookSubscription, user: User) -> None:
    _history(subscription, user, "webhook deleted")
    subscription.delete()


# --------------------------------------------------------------------------- events


def _send_on_commit(delivery_ids: list[int]) -> None:
    from celery import current_app as app

    def send():
        for pk in delivery_ids:
            app.send_task(TASK, args=[pk])

    transaction.on_commit(send)


def webhook_event(*, tenant, event_type: str, stream: str, data) -> int:
    """Report an event of a tenant: one delivery per active subscription to its type, sent
    after the caller's transaction commits. `data` is the event's data, or a function that
    makes it (called only when someone subscribed). Returns how many deliveries were made."""
    tenant_id = getattr(tenant, "pk", tenant)
    subscriptions = [
        s
        for s in WebhookSubscription.objects.filter(tenant_id=tenant_id, is_active=True).only(
            "pk", "events"
        )
        if event_type in (s.events or [])
    ]
    if not subscriptions:
        return 0
    from accounts.models import Tenant

    slug = Tenant.objects.filter(pk=tenant_id).values_list("slug", flat=True).first()
    if callable(data):
        data = data()
    event_id = uuid.uuid4()
    body = json.dumps(
        {
            "id": str(event_id),
            "type": event_type,
            "occurred_at": timezone.now().isoformat(),
            "tenant": slug,
            "data": data,
        },
        cls=DjangoJSONEncoder,
        separators=(",", ":"),
    )
    rows = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                tenant_id=tenant_id,
                subscription=s,
                event_id=event_id,
                event_type=event_type,
                stream=stream[:64],
                body=body,
            )
            for s in subscriptions
        ]
    )
    _send_on_commit([row.pk for row in rows])
    return len(rows)


# --------------------------------------------------------------------------- delivery


def _claim(delivery_id: int) -> WebhookDelivery | None:
    now = timezone.now()
    claimable = Q(status="pending") | Q(status="sending", claimed_at__lt=now - CLAIM_TIMEOUT)
    if not WebhookDelivery.objects.filter(claimable, pk=delivery_id).update(
        status="sending", claimed_at=now
    ):
        return None
    return WebhookDelivery.objects.select_related("subscription").get(pk=delivery_id)


def _earlier_open(delivery: WebhookDelivery) -> bool:
    return WebhookDelivery.objects.filter(
        subscription_id=delivery.subscription_id,
        stream=delivery.stream,
        pk__lt=delivery.pk,
        status__in=("pending", "sending"),
    ).exists()


def _next_in_stream(delivery: WebhookDelivery) -> list[int]:
    return list(
        WebhookDelivery.objects.filter(
            subscription_id=delivery.subscription_id,
            stream=delivery.stream,
            pk__gt=delivery.pk,
            status="pending",
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:1]
    )


def _post(delivery: WebhookDelivery) -> tuple[int | None, str]:
    """POST the stored body, signed; (status code, error). Network policy refusals are errors."""
    import httpx

    from flows.datasources import netpolicy, pinned_http

    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Tributary-Webhooks/1",
        SIGNATURE_HEADER: signature(delivery.subscription.secret, body),
        EVENT_HEADER: delivery.event_type,
        DELIVERY_HEADER: str(delivery.pk),
    }
    try:
        # Each hop is checked by the outbound policy and sent to the address it checked.
        with pinned_http.PinnedClient(timeout=TIMEOUT_S) as client:
            reply = client.request(
                "POST", delivery.subscription.url, body=body, headers=headers, body_limit=1024
            )
        return reply.status, "" if 200 <= reply.status < 300 else f"HTTP {reply.status}"
    except netpolicy.NetworkPolicyError as exc:
        return None, f"refused by the outbound policy: {exc}"[:500]
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]


def delivery_send(delivery_id: int) -> float | None:
    """Send one delivery if it is its stream's turn (the task's body).

    Returns seconds after which the task should run again (the stream is busy, or the POST
    failed and attempts remain), or None when there is nothing more to do.
    """
    delivery = _claim(delivery_id)
    if delivery is None:
        return None
    if not delivery.subscription.is_active:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status="failed", last_error="the subscription is paused"
        )
        return None
    if _earlier_open(delivery):
        WebhookDelivery.objects.filter(pk=delivery.pk, status="sending").update(status="pending")
        return ORDER_WAIT_S
    started = time.monotonic()
    code, error = _post(delivery)
    number = delivery.attempts + 1
    WebhookAttempt.objects.create(
        tenant_id=delivery.tenant_id,
        delivery=delivery,
        number=number,
        status_code=code,
        error=error,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    now = timezone.now()
    fields = {"attempts": number, "last_status_code": code, "last_error": error}
    if not error:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status="delivered", delivered_at=now, next_attempt_at=None, **fields
        )
        # The stream's next event need not wait for its own retry timer.
        _send_on_commit(_next_in_stream(delivery))
        return None
    if number >= MAX_ATTEMPTS:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status="failed", next_attempt_at=None, **fields
        )
        _send_on_commit(_next_in_stream(delivery))
        return None
    delay = backoff(number)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status="pending", next_attempt_at=now + timedelta(seconds=delay), **fields
    )
    return delay


def delivery_resend(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again (the same id and body; its attempts go on counting)."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status="pending", next_attempt_at=None, claimed_at=None
    )
    _send_on_commit([delivery.pk])
    delivery.refresh_from_db()
    return delivery
