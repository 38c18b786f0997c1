"""The console's secrets page; it reads and writes through /api/v1/secrets/."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.views import tenant_required

from .selectors import can_manage

# Flows offered as a secret's scope on the page (a bigger tenant types the flow id).
SCOPE_CHOICES = 500


@tenant_required
@require_GET
def secret_list(request, *, ctx):
    """Names and scopes of the secrets the user may reference; admins and DBAs manage them."""
    from flows.selectors import flow_list

    manage = can_manage(ctx)
    flows = list(flow_list(ctx=ctx).order_by("name").values_list("id", "name")[:SCOPE_CHOICES])
    return render(
        request,
        "flows/secret_list.html",
        {"can_manage": manage, "page_data": {"can_manage": manage, "flows": flows}},
    )
