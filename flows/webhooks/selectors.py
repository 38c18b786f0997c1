"""Webhook reads: tenant admins manage subscriptions, auditors read them; secrets never."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.selectors import TenantContext
from flows.models import WebhookDelivery, WebhookSubscription


def can_read(ctx: TenantContext) -> bool:
    return ctx.is_admin or ctx.can_read_audit


def can_manage(ctx: TenantContext) -> bool:
    return ctx.is_admin


def webhook_list(*, ctx: TenantContext) -> QuerySet[WebhookSubscription]:
    """The tenant's subscriptions for admins and auditors; nothing for anyone else."""
    if not can_read(ctx):
        return WebhookSubscription.objects.none()
    return WebhookSubscription.objects.filter(tenant=ctx.tenant).defer("secret_encrypted")


def delivery_list(*, subscription: WebhookSubscription) -> QuerySet[WebhookDelivery]:
    """A subscription's deliveries, newest first, with their attempts."""
    return (
        WebhookDelivery.objects.filter(subscription=subscription, tenant_id=subscription.tenant_id)
        .prefetch_related("tries")
        .order_by("-id")
    )
