"""Pages of task flows: list, DAG canvas, history, versions, data sources (thin: selectors only).

Everything a page shows about a flow comes from flows.selectors.flow_get / flow_list and
flows.permissions.flow_rights, the same functions the API uses, so a control the user may
not use is never rendered; the page's JavaScript writes through the REST API, which checks
again. The few JSON helpers here are read-only previews for the editing panels.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.selectors import membership_list
from accounts.views import tenant_required

from . import hooks, permissions, selectors, snapshot, variables
from .choices import ConcurrencyPolicy, Engine, ErrorPolicy
from .datasources import selectors as datasources
from .forms import FlowFilterForm
from .nodes import base as node_base
from .secrets import references as secret_refs
from .secrets.selectors import available_names

PAGE_SIZE = 25
logger = logging.getLogger(__name__)


def node_type_catalog() -> list[dict]:
    """The node type registry as the canvas needs it: type, label, JSON Schema, branches."""
    try:
        types = node_base.all_types()
    except ImportError:
        # A broken node type module must not take the canvas down: show the ones that loaded.
        logger.exception("node type registry failed to load")
        types = dict(node_base.REGISTRY)
    return [
        {
            "type": name,
            "label": getattr(node_type, "label", name),
            "schema": getattr(node_type, "schema", {}),
            "has_branches": bool(getattr(node_type, "has_branches", False)),
        }
        for name, node_type in sorted(types.items())
    ]


def member_choices(ctx) -> list[dict]:
    """Active members of the tenant (owner and stakeholder pickers)."""
    return [
        {"id": m.user_id, "username": m.user.username, "role": m.role}
        for m in membership_list(tenant=ctx.tenant).filter(is_active=True, user__is_active=True)
    ]


def rights_dict(rights: permissions.FlowRights) -> dict:
    return {action: rights.allows(action) for action in permissions.ACTIONS}


@tenant_required
@require_GET
def flow_list(request, *, ctx):
    """All flows the user may see, with search and filters, and the "Create task flow" dialog."""
    members = [m.user for m in membership_list(tenant=ctx.tenant).filter(is_active=True)]
    form = FlowFilterForm(request.GET or None, owners=members)
    qs = selectors.flow_list(ctx=ctx, filters=form.selector_filters() if form.is_bound else None)
    if form.is_bound:
        qs = form.search(qs)
    page = Paginator(qs.order_by("name", "id"), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(flow, permissions.flow_rights(ctx, flow)) for flow in page.object_list]
    scenarios = sorted(
        {s for s in selectors.flow_list(ctx=ctx).values_list("business_scenario", flat=True) if s}
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "flows/flow_list.html",
        {
            "form": form,
            "page": page,
            "rows": rows,
            "scenarios": scenarios,
            "query": query.urlencode(),
            "filtered": form.is_bound and any(form.data.get(k) for k in form.fields),
        },
    )


@tenant_required
@require_GET
def flow_detail(request, pk: int, *, ctx):
    """The DAG canvas with its configuration panel, run buttons and publishing."""
    flow = selectors.flow_get(ctx=ctx, flow_id=pk)
    rights = permissions.flow_rights(ctx, flow)
    latest = selectors.version_list(ctx=ctx, flow_id=flow.pk).only("number").first()
    page = {
        "flow_id": flow.pk,
        "rights": rights_dict(rights),
        "user_id": request.user.pk,
        "latest_version": latest.number if latest else None,
        # What the run dialogs ask for: the published version's declared parameters (the
        # draft's are read from the API when a dialog opens).
        "published_parameters": (
            (flow.published_version.snapshot or {}).get("parameters") or []
            if flow.published_version_id
            else []
        ),
        "flows": list(selectors.flow_list(ctx=ctx).order_by("name").values("id", "name")),
        # The zone the run dialogs read their date-times in (and show business times in).
        "schedule_zone": hooks.schedule_zones(flow_ids=[flow.pk]).get(flow.pk),
        "error_policies": ErrorPolicy.choices,
        "concurrency_policies": ConcurrencyPolicy.choices,
        "urls": {
            "variables_preview": reverse("flow-variables-preview", args=[flow.pk]),
            "runs": f"{reverse('run-list')}?flow={flow.pk}",
        },
    }
    return render(
        request,
        "flows/flow_detail.html",
        {
            "flow": flow,
            "rights": rights,
            "latest_version": latest,
            # The run dialogs offer these versions (newest first; older ones by API).
            "version_numbers": list(
                selectors.version_list(ctx=ctx, flow_id=flow.pk).values_list("number", flat=True)[
                    :50
                ]
            ),
            "page_data": page,
            "node_types": node_type_catalog(),
            "members": member_choices(ctx),
        },
    )


@tenant_required
@require_GET
def flow_history(request, pk: int, *, ctx):
    """The flow's audit timeline (read from the history API by the page)."""
    flow = selectors.flow_get(ctx=ctx, flow_id=pk)
    members = member_choices(ctx)
    return render(
        request,
        "flows/flow_history.html",
        {
            "flow": flow,
            "members": members,
            "page_data": {
                "flow_id": flow.pk,
                "usernames": {m["id"]: m["username"] for m in members},
            },
        },
    )


def _version_snapshot(ctx, flow, ref: str) -> tuple[str, dict]:
    """("version 3", its snapshot) for a version number, or ("editing version", the current one)."""
    if ref in ("", "current", "editing"):
        return "editing version", snapshot.flow_snapshot(flow)
    version = selectors.version_get(ctx=ctx, flow_id=flow.pk, number=ref)
    return f"version {version.number}", version.snapshot


def _shown(value) -> str:
    """A changed value as the page shows it: text as is, anything else as compact JSON."""
    if value is None:
        return "∅"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _display_diff(diff: dict) -> dict:
    """The diff with every old/new value made printable for the template."""

    def rows(changes):
        return [
            {"field": c["field"], "old": _shown(c["old"]), "new": _shown(c["new"])} for c in changes
        ]

    return {
        "configuration": rows(diff["configuration"]),
        "changed": [{**n, "changes": rows(n["changes"])} for n in diff["nodes"]["changed"]],
    }


@tenant_required
@require_GET
def flow_versions(request, pk: int, *, ctx):
    """Published versions, and the difference between any two of them drawn on a canvas."""
    flow = selectors.flow_get(ctx=ctx, flow_id=pk)
    versions = list(
        selectors.version_list(ctx=ctx, flow_id=flow.pk).select_related("owner", "created_by")
    )
    default_a = (
        str(versions[1].number)
        if len(versions) > 1
        else (str(versions[0].number) if versions else "")
    )
    default_b = str(versions[0].number) if len(versions) > 1 else "current"
    a = request.GET.get("a", default_a)
    b = request.GET.get("b", default_b)
    comparison = None
    if a and b:
        label_a, snap_a = _version_snapshot(ctx, flow, a)
        label_b, snap_b = _version_snapshot(ctx, flow, b)
        comparison = {
            "a": {"ref": a, "label": label_a, "snapshot": snap_a},
            "b": {"ref": b, "label": label_b, "snapshot": snap_b},
            "diff": snapshot.snapshot_diff(snap_a, snap_b),
        }
        comparison["display"] = _display_diff(comparison["diff"])
    return render(
        request,
        "flows/flow_versions.html",
        {
            "flow": flow,
            "versions": versions,
            "a": a,
            "b": b,
            "comparison": comparison,
            "node_types": node_type_catalog(),
        },
    )


def _json_body(request) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def _parse_moment(value) -> datetime | None:
    """An ISO 8601 date-time from the page; naive values are read in the server's zone."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


@tenant_required
@require_POST
def variables_preview(request, pk: int, *, ctx):
    """JSON: the values the (possibly unsaved) variable definitions take at a business time."""
    flow = selectors.flow_get(ctx=ctx, flow_id=pk)
    body = _json_body(request)
    definitions = body.get("variables", flow.variables or [])
    business_time = _parse_moment(body.get("business_time"))
    if business_time is None:
        return JsonResponse(
            {"business_time": ["Give a date and time, e.g. 2024-01-15T00:00."]}, status=400
        )
    errors = variables.validate_definitions(definitions)
    if errors:
        return JsonResponse({"variables": errors}, status=400)
    # A node's form previews with its own variables too (they override the flow's).
    node_definitions = body.get("node_variables") or []
    errors = variables.validate_definitions(node_definitions)
    if errors:
        return JsonResponse({"node_variables": errors}, status=400)
    try:
        values = variables.resolve(
            definitions,
            business_time,
            flow_id=flow.pk,
            run_id="<run id>",
            node_definitions=node_definitions,
        )
    except variables.VariableError as exc:
        return JsonResponse({exc.field: [exc.message]}, status=400)
    result: dict = {"values": values}
    if "config" in body:
        # Secrets show as ***: their values never leave the worker.
        secrets = secret_refs.masked(available_names(tenant_id=flow.tenant_id, flow_id=flow.pk))
        try:
            result["rendered"] = variables.render_config(body["config"], {**values, **secrets})
        except variables.VariableError as exc:
            result["render_error"] = exc.message
    return JsonResponse(result)


@tenant_required
@require_GET
def datasource_list(request, *, ctx):
    """The tenant's data sources (the page reads and writes them through the API)."""
    return render(
        request,
        "flows/datasource_list.html",
        {
            "can_manage": datasources.can_manage(ctx),
            "page_data": {"engines": Engine.choices, "can_manage": datasources.can_manage(ctx)},
        },
    )


# --------------------------------------------------------------------------- audit

AUDIT_EXPORT_MAX = 10_000
AUDIT_KINDS = [
    ("flow", "Task flow configuration"),
    ("node", "Nodes"),
    ("edge", "Connections"),
    ("grant", "Owner and stakeholders"),
    ("schedule", "Schedules"),
    ("version", "Published versions"),
    ("membership", "Members and roles"),
    ("datasource", "Data sources"),
    ("secret", "Secrets (names only)"),
    ("run", "O&M actions on runs"),
]


def _audit_query(request, ctx):
    """The audit filters of a request, parsed like the API's (a wrong one is a 400 naming it)."""
    from .api.serializers import AuditQuerySerializer

    query = AuditQuerySerializer(data=request.GET)
    if not query.is_valid():
        return None, query.errors
    q = query.validated_data
    types = q.get("object_type")
    rows, sources = selectors.tenant_audit(
        ctx=ctx,
        user_id=q.get("user"),
        since=q.get("since"),
        until=q.get("until"),
        object_types=types,
        flow_id=q.get("flow"),
    )
    return (rows, sources), None


@tenant_required
@require_GET
def audit(request, *, ctx):
    """The tenant-wide audit trail for people (tenant admins and auditors; others 403, as the API)."""
    if not ctx.can_read_audit:
        raise PermissionDenied("Only tenant admins and auditors read the tenant's audit trail.")
    members = [
        {"id": m.user_id, "username": m.user.username}
        for m in membership_list(tenant=ctx.tenant).select_related("user")
    ]
    flows = list(selectors.flow_list(ctx=ctx).order_by("name").values("id", "name"))
    return render(
        request,
        "flows/audit.html",
        {
            "members": sorted(members, key=lambda m: m["username"]),
            "flows": flows,
            "kinds": AUDIT_KINDS,
            "page_data": {"api": reverse("v1:audit"), "audit": True},
        },
    )


@tenant_required
@require_GET
def audit_export(request, *, ctx):
    """The audit trail under the page's filters as CSV (newest first, at most 10,000 entries)."""
    import csv

    from django.http import HttpResponse

    from .timeline import timeline_entries

    if not ctx.can_read_audit:
        raise PermissionDenied("Only tenant admins and auditors read the tenant's audit trail.")
    found, errors = _audit_query(request, ctx)
    if errors:
        return JsonResponse(errors, status=400)
    rows, sources = found
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="audit-{ctx.tenant.slug}-{timezone.now():%Y%m%d-%H%M}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(
        [
            "time (UTC)",
            "who",
            "action",
            "kind",
            "what",
            "task flow",
            "version",
            "summary",
            "field",
            "before",
            "after",
            "reason",
        ]
    )
    page = list(rows[:AUDIT_EXPORT_MAX])
    for start in range(0, len(page), 500):
        for e in timeline_entries(page[start : start + 500], sources):
            base = [
                e["at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                e["username"] or "",
                e["action"],
                e["object_type"],
                e["object_name"],
                e["flow_name"] or "",
                e["version"] or "",
                e["summary"],
            ]
            for c in e["changes"] or [None]:
                field = [c["label"], c["old_display"], c["new_display"]] if c else ["", "", ""]
                writer.writerow([*base, *field, e["reason"]])
    return response
