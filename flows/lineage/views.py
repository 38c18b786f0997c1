"""The lineage page of a flow: its graph of upstream and downstream flows, drawn from
GET /api/v1/flows/{id}/lineage/, and a table lookup (GET /api/v1/lineage/?table=)."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.views import tenant_required

from .. import selectors


@tenant_required
@require_GET
def flow_lineage(request, pk: int, *, ctx):
    """404 unless the flow is visible; the graph itself comes from the API."""
    flow = selectors.flow_get(ctx=ctx, flow_id=pk)
    page_data = {"flow_id": flow.pk, "flow_name": flow.name, "table": request.GET.get("table", "")}
    return render(request, "flows/flow_lineage.html", {"flow": flow, "page_data": page_data})
