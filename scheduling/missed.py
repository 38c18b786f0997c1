"""Missed fire times reported to webhooks (`schedule.missed`): a fire time GRACE old that
fired no run (beat down, flow frozen) is reported once, to the tenants subscribed to it."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone as djtz

from flows.models import WebhookDelivery, WebhookSubscription
from flows.webhooks.services import webhook_event

from .models import Schedule
from .selectors import missed_fire_times
from .services import GRACE

# How far back past GRACE the missed-fire-time report looks (a sweep that was late or down
# for a while still reports what it missed meanwhile).
MISSED_LOOKBACK = timedelta(minutes=10)


def schedules_report_missed(*, now: datetime | None = None) -> int:
    """Report each fire time that became missed (GRACE old, never fired) as a
    `schedule.missed` webhook event, once: only tenants subscribed to it are looked at.
    Returns how many events were reported."""
    subscriptions: dict[int, list[int]] = {}
    for s in WebhookSubscription.objects.filter(is_active=True).only("tenant_id", "events"):
        if "schedule.missed" in (s.events or []):
            subscriptions.setdefault(s.tenant_id, []).append(s.pk)
    tenants = set(subscriptions)
    if not tenants:
        return 0
    now = now or djtz.now()
    reported = 0
    schedules = (
        Schedule.objects.filter(
            tenant_id__in=tenants,
            published__enabled=True,
            flow__published_version__isnull=False,
        )
        .select_related("flow")
        .order_by("pk")
    )
    for schedule in schedules:
        times = missed_fire_times(
            flow=schedule.flow, since=now - GRACE - MISSED_LOOKBACK, until=now, now=now
        )
        for fire_time in times:
            stream = f"schedule:{schedule.pk}:{int(fire_time.timestamp())}"
            reported_before = WebhookDelivery.objects.filter(
                subscription_id__in=subscriptions[schedule.tenant_id], stream=stream
            )
            if reported_before.exists():
                continue
            with transaction.atomic():
                reported += bool(
                    webhook_event(
                        tenant=schedule.tenant_id,
                        event_type="schedule.missed",
                        stream=stream,
                        data={
                            "schedule": {
                                "id": schedule.pk,
                                "flow": schedule.flow_id,
                                "flow_name": schedule.flow.name,
                                # The schedule that fires (published), not the draft.
                                "cron": schedule.published.get("cron"),
                                "timezone": schedule.published.get("timezone"),
                            },
                            "fire_time": fire_time,
                            "frozen": schedule.flow.is_frozen,
                        },
                    )
                )
    return reported
