"""Writes on a flow itself: create, update, delete, stakeholders, owner."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db import transaction
from guardian.shortcuts import assign_perm, remove_perm

from accounts.models import Tenant, User
from accounts.selectors import tenant_member_users

from .. import hooks
from ..choices import (
    OWNER_PERMS,
    PERM_OPERATE,
    STAKEHOLDER_PERMS,
    ConcurrencyPolicy,
    ErrorPolicy,
)
from ..models import TaskFlow, TaskFlowUserObjectPermission
from ._common import (
    bump_revision,
    history_actor,
    lock_flow,
    set_history,
)
from .validation import definitions_problems, parameter_clashes, parameters_clean

# Fields whose change is a change of the editing version (shown as "unpublished changes").
EDITABLE_FIELDS = (
    "name",
    "business_scenario",
    "description",
    "error_policy",
    "concurrency_policy",
    "is_public",
    "variables",
    "parameters",
    "notifications",
    "deadline",
)
NOTIFICATION_DEFAULTS = {
    "on_failure": True,
    "on_success": False,
    "emails": [],
    "webhooks": [],
    "max_duration_s": None,
    # Node-level alerts while the run carries on: a node failed, or is being retried.
    "on_node_failure": False,
    "on_node_retry": False,
    # Chat robots: incoming-webhook URLs, each sent its own message format.
    "slack": [],
    "dingtalk": [],
    "feishu": [],
    "wecom": [],
}
# Lists of URLs in the notification settings: the generic JSON webhook and the chat robots.
URL_CHANNELS = ("webhooks", "slack", "dingtalk", "feishu", "wecom")
MAX_EMAILS = 50
MAX_WEBHOOKS = 20


def notifications_clean(value) -> dict:
    """The notification settings with defaults filled in; ValidationError naming `notifications`."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ValidationError({"notifications": ["must be an object"]})
    errors: list[str] = []
    unknown = sorted(set(value) - set(NOTIFICATION_DEFAULTS))
    if unknown:
        errors.append(
            f"unknown keys {', '.join(unknown)}; allowed: {', '.join(NOTIFICATION_DEFAULTS)}"
        )
    clean = {
        **NOTIFICATION_DEFAULTS,
        **{k: v for k, v in value.items() if k in NOTIFICATION_DEFAULTS},
    }
    for key in ("on_failure", "on_success", "on_node_failure", "on_node_retry"):
        if not isinstance(clean[key], bool):
            errors.append(f"{key}: must be true or false")
    email_ok, url_ok = EmailValidator(), URLValidator(schemes=["http", "https"])
    lists = [("emails", email_ok, MAX_EMAILS)] + [(k, url_ok, MAX_WEBHOOKS) for k in URL_CHANNELS]
    for key, check, limit in lists:
        items = clean[key]
        if not isinstance(items, list):
            errors.append(f"{key}: must be a list")
            continue
        if len(items) > limit:
            errors.append(f"{key}: at most {limit} entries")
        for i, item in enumerate(items):
            try:
                if not isinstance(item, str) or len(item) > 2000:
                    raise ValidationError("invalid")
                check(item)
            except ValidationError:
                what = "a valid e-mail address" if key == "emails" else "an http(s) URL"
                errors.append(f"{key}[{i}]: {str(item)[:100]!r} is not {what}")
    limit = clean["max_duration_s"]
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
        errors.append("max_duration_s: must be a positive whole number of seconds, or null")
    if errors:
        raise ValidationError({"notifications": errors})
    return clean


# A deadline may lie at most this long after the fire time (a week).
MAX_DEADLINE_S = 7 * 24 * 3600


def deadline_clean(value) -> dict | None:
    """{"after_fire_s": N} or {"at": "HH:MM"} or None; a ValidationError naming `deadline`."""
    if value is None:
        return None
    message = 'use {"after_fire_s": seconds after the fire time}, {"at": "HH:MM"} or null'
    if not isinstance(value, dict) or len(value) != 1:
        raise ValidationError({"deadline": [message]})
    ((key, item),) = value.items()
    if key == "after_fire_s":
        if isinstance(item, bool) or not isinstance(item, int) or not 0 < item <= MAX_DEADLINE_S:
            raise ValidationError(
                {"deadline": [f"after_fire_s: a whole number of seconds, 1 to {MAX_DEADLINE_S}"]}
            )
        return {"after_fire_s": item}
    if key == "at":
        parts = item.split(":") if isinstance(item, str) else []
        if (
            len(parts) != 2
            or not all(len(p) == 2 and p.isascii() and p.isdigit() for p in parts)
            or int(parts[0]) > 23
            or int(parts[1]) > 59
        ):
            raise ValidationError({"deadline": ["at: a wall-clock time HH:MM, 00:00 to 23:59"]})
        return {"at": item}
    raise ValidationError({"deadline": [message]})


def variables_clean(value) -> list:
    """A flow's or a node's variable definitions, or a ValidationError on "variables"."""
    if value is None:
        return []
    errors = definitions_problems(value)
    if errors:
        raise ValidationError({"variables": errors})
    return value


def _check_name(*, tenant_id: int, name: str, exclude_pk: int | None = None) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": ["A flow needs a name."]})
    clash = TaskFlow.objects.filter(tenant_id=tenant_id, name=name)
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise ValidationError({"name": [f"A flow named {name!r} already exists in this tenant."]})
    return name


def flow_fields_clean(flow: TaskFlow, fields: dict) -> dict:
    """Validated copies of editable flow fields; ValidationError naming each bad field."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({k: ["This field cannot be set here."] for k in sorted(unknown)})
    clean = dict(fields)
    if "name" in clean:
        clean["name"] = _check_name(
            tenant_id=flow.tenant_id, name=clean["name"], exclude_pk=flow.pk
        )
    if "variables" in clean:
        clean["variables"] = variables_clean(clean["variables"])
    if "parameters" in clean:
        clean["parameters"] = parameters_clean(clean["parameters"])
    if "notifications" in clean:
        clean["notifications"] = notifications_clean(clean["notifications"])
    if "parameters" in clean or "variables" in clean:
        _refuse_clashes(flow, clean)
    if "deadline" in clean:
        clean["deadline"] = deadline_clean(clean["deadline"])
    if "error_policy" in clean and clean["error_policy"] not in ErrorPolicy.values:
        raise ValidationError({"error_policy": [f"choose one of {', '.join(ErrorPolicy.values)}"]})
    if (
        "concurrency_policy" in clean
        and clean["concurrency_policy"] not in ConcurrencyPolicy.values
    ):
        raise ValidationError(
            {"concurrency_policy": [f"choose one of {', '.join(ConcurrencyPolicy.values)}"]}
        )
    return clean


def _refuse_clashes(flow: TaskFlow, clean: dict) -> None:
    """A parameter may not share its name with a flow or node variable (400 on `parameters`)."""
    parameters = clean.get("parameters", flow.parameters)
    node_variables = []
    if flow.pk and parameters:
        node_variables = [
            (name, variables) for name, variables in flow.nodes.values_list("name", "variables")
        ]
    clashes = parameter_clashes(parameters, clean.get("variables", flow.variables), node_variables)
    if clashes:
        raise ValidationError({"parameters": clashes})


def _grant(flow: TaskFlow, user: User, perms, actor: User) -> None:
    with history_actor(actor):
        for perm in perms:
            assign_perm(perm, user, flow)


def _revoke(flow: TaskFlow, user: User, perms, actor: User) -> None:
    with history_actor(actor):
        for perm in perms:
            remove_perm(perm, user, flow)


def flow_create(*, tenant: Tenant, user: User, name: str, **fields) -> TaskFlow:
    """Create a flow owned by `user`, who gets the owner's view/change/operate grants."""
    flow = TaskFlow(tenant=tenant, owner=user, created_by=user)
    clean = flow_fields_clean(flow, {"name": name, **fields})
    clean.setdefault("notifications", notifications_clean({}))
    for key, value in clean.items():
        setattr(flow, key, value)
    flow.full_clean(
        exclude=["owner", "created_by", "published_version", "tenant"], validate_unique=False
    )
    with transaction.atomic():
        set_history(flow, user, "flow created")
        flow.save()
        _grant(flow, user, OWNER_PERMS, user)
    return flow


def flow_update(*, flow: TaskFlow, user: User, **fields) -> TaskFlow:
    """Change a flow's configuration; a real change marks the editing version changed."""
    clean = flow_fields_clean(flow, fields)
    with transaction.atomic():
        locked = lock_flow(flow)
        changed = {k: v for k, v in clean.items() if getattr(locked, k) != v}
        if not changed:
            return locked
        for key, value in changed.items():
            setattr(locked, key, value)
        locked.full_clean(
            exclude=["owner", "created_by", "published_version", "tenant"], validate_unique=False
        )
        locked.edit_revision += 1
        set_history(locked, user, "flow updated")
        locked.save()
    return locked


def flow_delete(*, flow: TaskFlow, user: User) -> None:
    """Delete a flow with its nodes, edges and versions; its schedule and beat entry go first."""
    with transaction.atomic():
        locked = lock_flow(flow)
        hooks.schedule_delete_for_flow(flow=locked, user=user)
        # Per object so every node and edge leaves a "deleted" history row with the actor.
        for edge in locked.edges.all():
            set_history(edge, user, "flow deleted")
            edge.delete()
        for node in locked.nodes.all():
            set_history(node, user, "flow deleted")
            node.delete()
        with history_actor(user):
            set_history(locked, user, "flow deleted")
            locked.delete()


def stakeholder_ids(flow: TaskFlow) -> list[int]:
    """User ids holding the stakeholder grant, owner excluded."""
    return sorted(
        TaskFlowUserObjectPermission.objects.filter(
            content_object_id=flow.pk, permission__codename=PERM_OPERATE
        )
        .exclude(user_id=flow.owner_id)
        .values_list("user_id", flat=True)
    )


def _members(tenant: Tenant, ids) -> dict[int, User]:
    return {u.pk: u for u in tenant_member_users(tenant=tenant).filter(pk__in=ids).distinct()}


def flow_stakeholders_set(*, flow: TaskFlow, user: User, users: list[int]) -> list[int]:
    """Make exactly `users` the flow's stakeholders (view + operate grants)."""
    wanted = list(dict.fromkeys(users))
    with transaction.atomic():
        locked = lock_flow(flow)
        members = _members(locked.tenant, wanted)
        # Same answer for unknown ids and other tenants' users: nothing is revealed.
        bad = [str(pk) for pk in wanted if pk not in members]
        if bad:
            raise ValidationError(
                {"users": [f"Not active members of this tenant: {', '.join(bad)}."]}
            )
        wanted_set = set(wanted) - {locked.owner_id}
        current = set(stakeholder_ids(locked))
        for pk in sorted(current - wanted_set):
            gone = User.objects.get(pk=pk)
            _revoke(locked, gone, STAKEHOLDER_PERMS, user)
        for pk in sorted(wanted_set - current):
            _grant(locked, members[pk], STAKEHOLDER_PERMS, user)
    return sorted(wanted_set)


def flow_owner_change(*, flow: TaskFlow, user: User, owner: int) -> TaskFlow:
    """Hand the flow to another active member; the published version keeps its owner until republished."""
    with transaction.atomic():
        locked = lock_flow(flow)
        members = _members(locked.tenant, [owner])
        new_owner = members.get(owner)
        if new_owner is None:
            raise ValidationError(
                {"owner": ["The new owner must be an active member of this tenant."]}
            )
        if new_owner.pk == locked.owner_id:
            return locked
        _revoke(locked, locked.owner, OWNER_PERMS, user)
        _grant(locked, new_owner, OWNER_PERMS, user)
        locked.owner = new_owner
        locked.edit_revision += 1
        set_history(locked, user, "owner changed")
        locked.save()
    flow.owner = locked.owner
    flow.owner_id = locked.owner_id
    flow.edit_revision = locked.edit_revision
    return locked


def flow_touch(*, flow: TaskFlow) -> None:
    """Mark the editing version changed (e.g. its schedule was edited); no history row."""
    bump_revision(flow)
