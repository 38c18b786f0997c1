"""One audit timeline over several simple-history tables, paginated in SQL.

A UNION ALL of (at, history id, source) rows is ordered and sliced by the database; the
page's rows are then read per source with their predecessors, so a page costs a fixed
number of queries however long the history is.

Apps built on flows add tables of their own through the `audit_sources` hook (operations:
the O&M actions): such a source has an `entries` reader that turns a page's ids into entries.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import Permission
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import CharField, F, OuterRef, Q, QuerySet, Subquery, Value

from accounts.choices import Role
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
# How each source's rows name their flow (for the audit's flow filter).
FLOW_FIELD = {
    "flow": "id",
    "node": "flow_id",
    "edge": "flow_id",
    "grant": "content_object_id",
    "version": "flow_id",
    "schedule": "flow_id",
}
SKIP_FIELDS = {"id", "tenant", "created_at", "updated_at", "content_object", "flow"}


@dataclass(frozen=True)
class Source:
    """One table feeding the timeline: a historical model, FlowVersion, or a table with an
    `entries` reader ({id: entry without username} for a page's ids; `at`, `id`, `user_id`)."""

    tag: str
    model: Any
    where: Q
    historical: bool = True
    entries: Callable[[list[int]], dict[int, dict]] | None = None
    # How its rows name their flow, for a source FLOW_FIELD does not know (the flow filter).
    flow_field: str | None = None

    @property
    def date_field(self) -> str:
        if self.entries is not None:
            return "at"
        return "history_date" if self.historical else "created_at"

    @property
    def pk_field(self) -> str:
        return "history_id" if self.historical else "id"

    @property
    def user_field(self) -> str:
        if self.entries is not None:
            return "user_id"
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
    sources.extend(hooks.audit_sources(tenant_id=tenant_id))
    return sources


def audit_object_types() -> list[str]:
    """The `object_type` values of the tenant audit trail (its sources' tags, hooks' included)."""
    return [source.tag for source in tenant_sources(0)]


def timeline_queryset(
    sources: list[Source],
    *,
    user_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    object_types: set[str] | None = None,
    flow_id: int | None = None,
) -> QuerySet:
    """(at, hid, src) rows of every source, newest first, as one UNION ALL queryset."""
    parts = []
    for source in sources:
        if object_types and source.tag not in object_types:
            continue
        flow_field = FLOW_FIELD.get(source.tag) or source.flow_field
        if flow_id is not None and flow_field is None:
            continue  # members, data sources, secrets belong to no flow
        qs = source.model.objects.filter(source.where)
        if flow_id is not None:
            qs = qs.filter(**{flow_field: flow_id})
        if user_id is not None:
            qs = qs.filter(**{source.user_field: user_id})
        if since is not None:
            qs = qs.filter(**{f"{source.date_field}__gte": since})
        if until is not None:
            qs = qs.filter(**{f"{source.date_field}__lte": until})
        columns = {
            "hid": F(source.pk_field),
            "src": Value(source.tag, output_field=CharField()),
        }
        if source.date_field != "at":  # a table whose date is `at` already names it so
            columns["at"] = F(source.date_field)
        parts.append(qs.order_by().annotate(**columns).values_list("at", "hid", "src"))
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
    read: dict[tuple[str, int], dict] = {}  # entries of the sources that read their own
    for tag, ids in wanted.items():
        source = by_tag[tag]
        if source.entries is not None:
            for pk, entry in source.entries(ids).items():
                read[(tag, pk)] = entry
            continue
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

    user_ids = {entry["user"] for entry in read.values() if entry["user"]}
    for (tag, _hid), row in loaded.items():
        uid = getattr(row, by_tag[tag].user_field)
        if uid:
            user_ids.add(uid)
    usernames = (
        dict(User.objects.filter(pk__in=user_ids).values_list("pk", "username")) if user_ids else {}
    )

    entries = []
    for at, hid, tag in rows:
        if (tag, hid) in read:
            entry = read[(tag, hid)]
            entries.append({"at": at, **entry, "username": usernames.get(entry["user"])})
            continue
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
        refs: dict[str, Any] = {}
        if tag == "edge":
            refs["_node_refs"] = (row.upstream_id, row.downstream_id)
        elif tag == "grant":
            refs["_user_ref"] = row.user_id
            refs["_codename"] = codenames.get(row.permission_id, row.permission_id)
        elif tag == "membership":
            refs["_user_ref"] = row.user_id
            refs["_role"] = row.role
        entries.append(
            {
                **refs,
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
    return entries_in_words(entries)


# --------------------------------------------------------------------------- in words
# The audit page and its CSV read entries as people do: names instead of row ids, version
# numbers instead of version rows, a sentence per entry and each field with a label.

OBJECT_WORDS = {
    "flow": "task flow",
    "node": "node",
    "edge": "connection",
    "grant": "stakeholder right",
    "version": "version",
    "schedule": "schedule",
    "membership": "membership",
    "datasource": "data source",
    "secret": "secret",
}
ACTION_WORDS = {"created": "created", "changed": "changed", "deleted": "deleted"}
ROLE_WORDS = dict(Role.choices)
PERMISSION_WORDS = {
    "view_taskflow": "may see the flow",
    "change_taskflow": "may change the flow",
    "delete_taskflow": "may delete the flow",
    "add_taskflow": "may add flows",
    "operate_taskflow": "may test-run the flow and operate its runs",
}
USER_FIELDS = {"owner", "created_by", "user"}
FIELD_WORDS = {
    "business_scenario": "business scenario",
    "error_policy": "error handling policy",
    "concurrency_policy": "concurrency control policy",
    "is_public": "public",
    "is_frozen": "frozen",
    "published_version": "published version",
    "retry_interval": "retry interval (s)",
    "timeout": "timeout (s)",
    "upstream": "from",
    "downstream": "to",
    "start_date": "effective from",
    "end_date": "until",
    "timezone": "time zone",
    "is_active": "active",
    "created_by": "created by",
}


def _latest_names(model, ids: set[int]) -> dict[int, str]:
    """The latest name each object had (deleted ones too), from its history table."""
    if not ids:
        return {}
    out: dict[int, str] = {}
    rows = model.objects.filter(id__in=ids).order_by("id", "-history_id").values_list("id", "name")
    for pk, name in rows:
        out.setdefault(pk, name)
    return out


def _show(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def entries_in_words(entries: list[dict]) -> list[dict]:
    """Add `summary`, `object_name`, `flow_name`, `version` (for a diff link) and, per change,
    `label`, `old_display` and `new_display` to timeline entries (a fixed number of queries)."""
    flow_ids, node_ids, user_ids, version_pks = set(), set(), set(), set()
    for e in entries:
        if e["flow"]:
            flow_ids.add(e["flow"])
        if e["user"]:
            user_ids.add(e["user"])
        for c in e["changes"]:
            for v in (c["old"], c["new"]):
                if not isinstance(v, int) or isinstance(v, bool):
                    continue
                if c["field"] in ("upstream", "downstream"):
                    node_ids.add(v)
                elif c["field"] in USER_FIELDS:
                    user_ids.add(v)
                elif c["field"] == "published_version":
                    version_pks.add(v)
    user_ids |= {e["_user_ref"] for e in entries if e.get("_user_ref")}
    for e in entries:
        node_ids |= set(e.get("_node_refs", ()))
    flows = _latest_names(TaskFlow.history.model, flow_ids)
    nodes = _latest_names(TaskNode.history.model, node_ids)
    users = (
        dict(User.objects.filter(pk__in=user_ids).values_list("pk", "username")) if user_ids else {}
    )
    versions = (
        dict(FlowVersion.objects.filter(pk__in=version_pks).values_list("pk", "number"))
        if version_pks
        else {}
    )

    def display(field: str, value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            if field in ("upstream", "downstream"):
                return nodes.get(value, f"a deleted node (#{value})")
            if field in USER_FIELDS:
                return users.get(value, f"a removed person (#{value})")
            if field == "published_version":
                return f"version {versions[value]}" if value in versions else "a removed version"
        if field == "permission" and value in PERMISSION_WORDS:
            return PERMISSION_WORDS[value]
        return _show(value)

    for e in entries:
        tag = e["object_type"]
        name = e["object_repr"]
        if tag == "edge":
            refs = e.pop("_node_refs", (None, None))
            name = " → ".join(nodes.get(r, f"#{r}") for r in refs)
        elif tag in ("grant", "membership"):
            who = users.get(e.pop("_user_ref", None), "someone")
            if tag == "grant":
                name = f"{who}: {display('permission', e.pop('_codename', ''))}"
            else:
                role = e.pop("_role", "")
                name = f"{who} as {ROLE_WORDS.get(role, role)}"
        e.pop("_node_refs", None)
        e.pop("_user_ref", None)
        e.pop("_codename", None)
        e.pop("_role", None)
        e["object_name"] = name
        e["flow_name"] = flows.get(e["flow"]) if e["flow"] else None
        e["version"] = None
        for c in e["changes"]:
            c["label"] = FIELD_WORDS.get(c["field"], c["field"].replace("_", " "))
            c["old_display"] = display(c["field"], c["old"])
            c["new_display"] = display(c["field"], c["new"])
        if tag == "version":
            e["version"] = e["object_id"]
            e["changes"] = [c for c in e["changes"] if c["field"] != "number"]
        for c in e["changes"]:
            if c["field"] == "published_version" and c["new"] in versions:
                e["version"] = versions[c["new"]]
        who = e["username"] or "The platform"
        what = OBJECT_WORDS.get(tag, tag)
        where = (
            f" in “{e['flow_name']}”" if e["flow_name"] and tag not in ("flow", "version") else ""
        )
        if tag == "version":
            e["summary"] = f"{who} published version {e['version']} of “{e['flow_name']}”"
        elif e.get("_summary"):
            # A source of another app says what happened itself; {who} and {flow} are names.
            flow_name = e["flow_name"] or "a deleted task flow"
            e["summary"] = e["_summary"].replace("{flow}", flow_name).replace("{who}", who)
        else:
            e["summary"] = (
                f"{who} {ACTION_WORDS.get(e['action'], e['action'])} the {what} “{name}”{where}"
            )
        e.pop("_summary", None)
    return entries
