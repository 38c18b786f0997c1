"""Pages of the O&M overviews: the flow-by-date grid and a flow's calendar heat map.

Thin: the pages draw what GET /api/v1/runs/grid/ and /api/v1/schedules/distribution/
answer (the same selectors, the same visibility); the server only checks the flow.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.selectors import tenant_member_users
from accounts.views import tenant_required
from flows import selectors as flow_selectors

from .choices import RunStatus
from .grid import DEFAULT_DAYS, MAX_DAYS, flow_zone


@tenant_required
@require_GET
def run_grid(request, *, ctx):
    """Flows by business date, each date coloured by its latest run; the schedule distribution."""
    flows = list(flow_selectors.flow_list(ctx=ctx).order_by("name").values("id", "name"))
    owners = list(
        tenant_member_users(tenant=ctx.tenant).order_by("username").values("id", "username")
    )
    page_data = {
        "flows": flows,
        "owners": owners,
        "statuses": RunStatus.choices,
        "default_days": DEFAULT_DAYS,
        "max_days": MAX_DAYS,
        "initial": {k: request.GET.get(k, "") for k in ("from", "to", "flow", "owner", "status")},
    }
    return render(request, "operations/run_grid.html", {"page_data": page_data})


@tenant_required
@require_GET
def run_calendar(request, flow_id: int, *, ctx):
    """A year of one flow's business dates as a heat map (404 unless the flow is visible)."""
    flow = flow_selectors.flow_get(ctx=ctx, flow_id=flow_id)
    page_data = {
        "flow_id": flow.pk,
        "flow_name": flow.name,
        "timezone": flow_zone(flow),
        "today": datetime.now(UTC).date().isoformat(),
        "to": request.GET.get("to", ""),
    }
    return render(request, "operations/run_calendar.html", {"flow": flow, "page_data": page_data})
