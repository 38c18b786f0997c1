"""Secret reads: names and scopes only; nothing here decrypts a value.

Every member may list the names of the secrets they can reference (tenant-wide ones and
those of flows they can see), to write ``${secret.NAME}`` into their nodes; tenant admins
and DBAs manage them (`can_manage`).
"""

from __future__ import annotations

from django.db.models import F, Q, QuerySet, TextField
from django.db.models.functions import Cast

from accounts.selectors import TenantContext
from flows.models import FlowVersion, Secret, TaskFlow, TaskNode

from .references import variable


def can_manage(ctx: TenantContext) -> bool:
    """Tenant admins and DBAs create, change and delete secrets."""
    return ctx.is_privileged


def secret_list(*, ctx: TenantContext) -> QuerySet[Secret]:
    """The tenant's secrets the user may reference: tenant-wide ones and those of visible flows."""
    from flows.selectors import flow_list

    qs = (
        Secret.objects.filter(tenant=ctx.tenant)
        .defer("value_encrypted")
        .annotate(flow_name=F("flow__name"))
    )
    visible = flow_list(ctx=ctx).order_by().values("pk")
    return qs.filter(Q(flow__isnull=True) | Q(flow__in=visible))


def secret_get(*, ctx: TenantContext, secret_id) -> Secret | None:
    """One secret the user may see, or None (unknown, foreign and hidden ids alike)."""
    try:
        pk = int(secret_id)
    except (TypeError, ValueError):
        return None
    return secret_list(ctx=ctx).filter(pk=pk).first()


def available_names(*, tenant_id: int, flow_id: int | None) -> set[str]:
    """Names a flow's nodes may reference: the tenant's secrets plus the flow's own."""
    scope = Q(flow__isnull=True)
    if flow_id is not None:
        scope |= Q(flow_id=flow_id)
    return set(
        Secret.objects.filter(scope, tenant_id=tenant_id).values_list("name", flat=True).distinct()
    )


def secret_references(*, secret: Secret) -> list[str]:
    """ "flow / node" names that reference the secret, in editing or current published versions.

    A flow with a secret of its own under the same name does not use the tenant-wide one.
    """
    needle = "${" + variable(secret.name) + "}"
    flows = TaskFlow.objects.filter(tenant_id=secret.tenant_id)
    if secret.flow_id is not None:
        flows = flows.filter(pk=secret.flow_id)
    else:
        shadowing = Secret.objects.filter(
            tenant_id=secret.tenant_id, name=secret.name, flow__isnull=False
        ).values("flow_id")
        flows = flows.exclude(pk__in=shadowing)
    found = [
        f"{flow} / {node}"
        for flow, node in TaskNode.objects.filter(flow__in=flows.values("pk"))
        .annotate(text=Cast("config", TextField()))
        .filter(text__contains=needle)
        .values_list("flow__name", "name")
    ]
    published = (
        FlowVersion.objects.filter(pk__in=flows.values("published_version_id"))
        .annotate(text=Cast("snapshot", TextField()))
        .filter(text__contains=needle)
        .select_related("flow")
    )
    for version in published:
        for node in (version.snapshot or {}).get("nodes", []) or []:
            if isinstance(node, dict) and needle in str(node.get("config")):
                label = f"{version.flow.name} / {node.get('name')}"
                if label not in found:
                    found.append(f"{label} (published v{version.number})")
    return sorted(found)


def secret_history(*, secret: Secret):
    """The secret's audit rows (newest first; never its value) and their sources."""
    from flows import timeline

    sources = [
        timeline.Source("secret", Secret.history.model, Q(id=secret.pk, tenant_id=secret.tenant_id))
    ]
    return timeline.timeline_queryset(sources), sources
