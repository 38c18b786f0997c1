"""The console's webhooks page; it reads and writes through /api/v1/webhooks/ (same rights:
tenant admins manage, auditors read, everyone else is refused)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.views import tenant_required

from . import EVENT_TYPES, selectors


@tenant_required
@require_GET
def webhook_list(request, *, ctx):
    """Subscriptions with their deliveries; admins add, pause, delete and redeliver."""
    if not selectors.can_read(ctx):
        raise PermissionDenied("Only a tenant admin can manage webhooks.")
    manage = selectors.can_manage(ctx)
    return render(
        request,
        "flows/webhook_list.html",
        {
            "can_manage": manage,
            "event_types": EVENT_TYPES,
            "page_data": {"can_manage": manage},
        },
    )
