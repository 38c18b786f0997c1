"""Permission-aware reads of flows: the only place that turns "who asks" into a queryset."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from accounts.selectors import TenantContext

from . import permissions
from .models import TaskFlow


def flow_list(*, ctx: TenantContext, filters: dict | None = None) -> QuerySet[TaskFlow]:
    """Flows of the tenant the user may see, in a constant number of queries."""
    qs = TaskFlow.objects.filter(tenant=ctx.tenant)
    visible = permissions.visibility_filter(ctx)
    if visible is not None:
        qs = qs.filter(visible)
    qs = permissions.annotate_stakeholder(qs, ctx.user.id)
    if filters:
        qs = qs.filter(**filters)
    return qs.select_related("owner", "published_version")


def flow_get(*, ctx: TenantContext, flow_id, action: str = permissions.VIEW, lock: bool = False) -> TaskFlow:
    """The flow if the user may see it (else 404) and do `action` on it (else 403)."""
    try:
        pk = int(flow_id)
    except (TypeError, ValueError):
        raise Http404("No such task flow.") from None
    qs = flow_list(ctx=ctx).filter(pk=pk)
    if lock:
        qs = qs.select_for_update(of=("self",))
    flow = qs.first()
    if flow is None:
        raise Http404("No such task flow.")
    if not permissions.flow_rights(ctx, flow).allows(action):
        raise PermissionDenied(f"You may not {action.replace('_', ' ')} this task flow.")
    return flow
