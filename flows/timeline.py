"""One audit timeline over several simple-history tables, paginated in SQL.

A UNION ALL of (at, history id, source) rows is ordered and sliced by the database; the
page's rows are then read per source with their predecessors, so a page costs a fixed
number of queries however long the history is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import Permission
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import CharField, F, OuterRef, Q, QuerySet, Subquery, Value

from accounts.models import Membership, User

from . import hooks
from .models import (
    DataSource,
    Edge,
    FlowVersion,
    Secret,
    TaskFlow,
    TaskFlowUserObjectPermission,
    TaskNode,
    WebhookSubscription,
)

ACTIONS = {"+": "created", "~": "changed", "-": "deleted"}
SKIP_FIELDS = {"id", "tenant", "created_at", "updated_at", "content_object", "flow"}


@dataclass(frozen=True)
class Source:
    """One table feeding the timeline; `model` is a historical model, or FlowVersion."""

    tag: str
    model: Any
    where: Q
    historical: bool = True

    @property
    def date_field(self) -> str:
        return "history_date" if self.historical else "created_at"

    @property
    def pk_field(self) -> str:
        return "history_id" if self.historical else "id"

    @property
    def user_field(self) -> str:
        return "history_user_id" if self.historical else "created_by_id"


def _schedule_history():
    return hooks.schedule_history_model()


def flow_sources(flow: TaskFlow) -> list[Source]:
    """Tables whose rows concern one flow: it, its nodes (deleted too), edges, grants, schedule, versions."""
    sources = [
        Source("flow", TaskFlow.history.model, Q(id=flow.pk)),
        Source("node", TaskNode.history.model, Q(flow_id=flow.pk)),
        Source("edge", Edge.history.model, Q(flow_id=flow.pk)),
        Source("grant", TaskFlowUserObjectPermission.history.model, Q(content_object_id=flow.pk)),
        Source("version", FlowVersion, Q(flow_id=flow.pk), historical=False),
    ]
    schedule = _schedule_history()
    if schedule is not None:
        sources.append(Source("schedule", schedule, Q(flow_id=flow.pk)))
    return sources


def tenant_sources(tenant_id: int) -> list[Source]:
    """Every audited table of a tenant: flows, nodes, edges, grants, versions, schedules, members,
    data sources, secrets and webhooks (never their values or signing secrets)."""
    flow_ids = TaskFlow.history.model.objects.filter(tenant_id=tenant_id).values("id")
    sources = [
        Source("flow", TaskFlow.history.model, Q(tenant_id=tenant_id)),
        Source("node", TaskNode.history.model, Q(tenant_id=tenant_id)),
        Source("edge", Edge.history.model, Q(tenant_id=tenant_id)),
        Source(
            "grant", TaskFlowUserObjectPermission.history.model, Q(content_object_id__in=flow_ids)
        ),
        Source("version", FlowVersion, Q(tenant_id=tenant_id), historical=False),
        Source("membership", Membership.history.model, Q(tenant_id=tenant_id)),
        Source("datasource", DataSource.history.model, Q(tenant_id=tenant_id)),
        Source("secret", Secret.history.model, Q(tenant_id=tenant_id)),
        Source("webhook", WebhookSubscription.history.model, Q(tenant_id=tenant_id)),
    ]
    schedule = _schedule_history()
    if schedule is not None:
        sources.append(Source("schedule", schedule, Q(tenant_id=tenant_id)))
    return sources


def timeline_queryset(
    sources: list[Source],
    *,
    user_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    object_types: set[str] | None = None,
) -> QuerySet:
    """(at, hid, src) rows of every source, newest first, as one UNION ALL queryset."""
    parts = []
    for source in sources:
        if object_types and source.tag not in object_types:
            continue
        qs = source.model.objects.filter(source.where)
        if user_id is not None:
            qs = qs.filter(**{source.user_field: user_id})
        if since is not None:
            qs = qs.filter(**{f"{source.date_field}__gte": since})
        if until is not None:
            qs = qs.filter(**{f"{source.date_field}__lte": until})
        parts.append(
            qs.order_by()
            .annotate(
                at=F(source.date_field),
                hid=F(source.pk_field),
                src=Value(source.tag, output_field=CharField()),
            )
            .values_list("at", "hid", "src")
        )
    if not parts:
        return FlowVersion.objects.none().values_list("created_at", "id", "id")
    first, *rest = parts
    qs = first.union(*rest, all=True) if rest else first
    return qs.order_by("-at", "-hid")


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _fields(source: Source) -> list:
    if not source.historical:
        return []
    return [f for f in source.model.tracked_fields if f.name not in SKIP_FIELDS]


def _changes(source: Source, row, prev, codenames: dict) -> list[dict]:
    def value(obj, field):
        raw = getattr(obj, field.attname)
        if source.tag == "grant" and field.name == "permission":
            return codenames.get(raw, raw)
        return raw

    out = []
    for field in _fields(source):
        new = value(row, field)
        if row.history_type == "+":
            if new not in (None, "", [], {}):
                out.append({"field": field.name, "old": None, "new": _jsonable(new)})
        elif row.history_type == "-":
            continue
        else:
            old = value(prev, field) if prev is not None else None
            if old != new:
                out.append({"field": field.name, "old": _jsonable(old), "new": _jsonable(new)})
    return out


def _repr(tag: str, row, codenames: dict) -> str:
    if tag in ("flow", "node", "datasource", "secret"):
        return row.name
    if tag == "edge":
        return f"edge {row.upstream_id} → {row.downstream_id}"
    if tag == "grant":
        return f"{codenames.get(row.permission_id, row.permission_id)} for user {row.user_id}"
    if tag == "membership":
        return f"user {row.user_id} as {row.role}"
    if tag == "version":
        return f"version {row.number}"
    if tag == "webhook":
        return row.url
    return str(getattr(row, "cron", tag))


def _flow_of(tag: str, row) -> int | None:
    if tag == "flow":
        return row.id
    if tag == "grant":
        return row.content_object_id
    return getattr(row, "flow_id", None)


def timeline_entries(rows: list[tuple], sources: list[Source]) -> list[dict]:
    """Entries for one page of (at, hid, src) rows, in the page's order."""
    by_tag = {s.tag: s for s in sources}
    wanted: dict[str, list[int]] = {}
    for _at, hid, tag in rows:
        wanted.setdefault(tag, []).append(hid)

    loaded: dict[tuple[str, int], Any] = {}
    previous: dict[tuple[str, int], Any] = {}
    for tag, ids in wanted.items():
        source = by_tag[tag]
        if not source.historical:
            for version in FlowVersion.objects.filter(pk__in=ids).only(
                "id", "number", "flow_id", "comment", "created_at", "created_by_id", "owner_id"
            ):
                loaded[(tag, version.pk)] = version
            continue
        model = source.model
        prev_id = (
            model.objects.filter(id=OuterRef("id"), history_id__lt=OuterRef("history_id"))
            .order_by("-history_id")
            .values("history_id")[:1]
        )
        page_rows = list(
            model.objects.filter(history_id__in=ids).annotate(prev_hid=Subquery(prev_id))
        )
        prev_ids = [
            r.prev_hid for r in page_rows if r.prev_hid is not None and r.history_type == "~"
        ]
        prev_rows = (
            {r.history_id: r for r in model.objects.filter(history_id__in=prev_ids)}
            if prev_ids
            else {}
        )
        for r in page_rows:
            loaded[(tag, r.history_id)] = r
            previous[(tag, r.history_id)] = prev_rows.get(r.prev_hid)

    codenames: dict = {}
    if "grant" in wanted:
        perm_ids = {
            loaded[("grant", h)].permission_id for h in wanted["grant"] if ("grant", h) in loaded
        }
        codenames = dict(Permission.objects.filter(pk__in=perm_ids).values_list("pk", "codename"))

    user_ids = set()
    for (tag, _hid), row in loaded.items():
        uid = getattr(row, by_tag[tag].user_field)
        if uid:
            user_ids.add(uid)
    usernames = (
        dict(User.objects.filter(pk__in=user_ids).values_list("pk", "username")) if user_ids else {}
    )

    entries = []
    for at, hid, tag in rows:
        row = loaded.get((tag, hid))
        if row is None:
            continue
        source = by_tag[tag]
        uid = getattr(row, source.user_field)
        if source.historical:
            action = ACTIONS.get(row.history_type, "changed")
            changes = _changes(source, row, previous.get((tag, hid)), codenames)
            reason = row.history_change_reason or ""
            object_id = row.id
        else:
            action = "created"
            changes = [{"field": "number", "old": None, "new": row.number}]
            if row.comment:
                changes.append({"field": "comment", "old": None, "new": row.comment})
            reason = f"published version {row.number}"
            object_id = row.number
        entries.append(
            {
                "at": at,
                "user": uid,
                "username": usernames.get(uid),
                "object_type": tag,
                "object_id": object_id,
                "object_repr": _repr(tag, row, codenames),
                "flow": _flow_of(tag, row),
                "action": action,
                "reason": reason,
                "changes": changes,
            }
        )
    return entries
