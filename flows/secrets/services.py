"""Secret writes: create, change (name or value), delete, and re-encryption with a new key.

Values are write-only: services accept them and never return them. Tenant admins and DBAs
write (selectors.can_manage).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from accounts.errors import ConflictError
from accounts.selectors import TenantContext
from flows.datasources import crypto
from flows.models import Secret, TaskFlow

from .references import NAME_RE
from .selectors import can_manage, secret_references

MIN_VALUE_LENGTH = 4
MAX_VALUE_LENGTH = 10_000
_UNSET = object()


def secret_create(
    *, ctx: TenantContext, name: str, value: str, flow: int | TaskFlow | None = None
) -> Secret:
    """A new secret of the request's tenant, for the whole tenant or for one of its flows."""
    _require_manager(ctx)
    secret = Secret(tenant=ctx.tenant, created_by=ctx.user, flow=_flow_of(ctx, flow), name=name)
    validate_secret(secret, value=value)
    secret.value = value
    secret._history_user = ctx.user
    secret._change_reason = "created"
    try:
        with transaction.atomic():
            secret.save()
    except IntegrityError:  # created by someone else since _check_unique
        raise ValidationError({"name": [f"A secret named '{secret.name}' exists."]}) from None
    return secret


def secret_update(
    *, ctx: TenantContext, secret: Secret, name=_UNSET, value=_UNSET, flow=_UNSET
) -> Secret:
    """Rename a secret or replace its value; its scope (tenant or flow) never changes."""
    _require_manager(ctx)
    with transaction.atomic():
        secret = Secret.objects.select_for_update().get(pk=secret.pk, tenant=ctx.tenant)
        if flow is not _UNSET and _flow_id(flow) != secret.flow_id:
            raise ValidationError(
                {"flow": ["A secret's scope cannot change; create a new secret instead."]}
            )
        if name is not _UNSET:
            secret.name = name
        validate_secret(secret, value=value)
        if value is not _UNSET:
            secret.value = value
        secret._history_user = ctx.user
        secret._change_reason = "changed"
        secret.save()
    return secret


def secret_delete(*, ctx: TenantContext, secret: Secret) -> None:
    """Delete a secret no node references; 409 naming the nodes when some do."""
    _require_manager(ctx)
    with transaction.atomic():
        secret = Secret.objects.select_for_update().get(pk=secret.pk, tenant=ctx.tenant)
        users = secret_references(secret=secret)
        if users:
            shown = ", ".join(users[:20]) + (
                f" and {len(users) - 20} more" if len(users) > 20 else ""
            )
            raise ConflictError(
                f"Secret '{secret.name}' is referenced by: {shown}. Change those nodes first."
            )
        secret._history_user = ctx.user
        secret._change_reason = "deleted"
        secret.delete()


def secret_rotate(*, secret_id: int) -> bool:
    """Re-encrypt one value with the newest key; True when it changed (row-locked)."""
    with transaction.atomic():
        secret = Secret.objects.select_for_update().filter(pk=secret_id).first()
        if secret is None or crypto.is_current(secret.value_encrypted):
            return False
        secret.value_encrypted = crypto.rotate(secret.value_encrypted)
        # The value is not tracked: a rotation is not a change anyone needs to audit.
        secret.skip_history_when_saving = True
        try:
            secret.save(update_fields=["value_encrypted"])
        finally:
            del secret.skip_history_when_saving
    return True


def validate_secret(secret: Secret, *, value=_UNSET) -> None:
    """Every rule on a secret's name (unique in its scope) and value, by field; the name is
    stored stripped."""
    errors: dict[str, list[str]] = {}
    try:
        secret.name = _clean_name(secret.name)
        _check_unique(secret)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if value is not _UNSET:
        try:
            _check_value(value)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)


# --------------------------------------------------------------------------- internals


def _require_manager(ctx: TenantContext) -> None:
    if not can_manage(ctx):
        raise PermissionDenied("Only tenant admins and DBAs can manage secrets.")


def _flow_id(flow) -> int | None:
    if flow is None or flow == "":
        return None
    if isinstance(flow, TaskFlow):
        return flow.pk
    if isinstance(flow, bool):
        return -1
    try:
        return int(flow)
    except (TypeError, ValueError):
        return -1


def _flow_of(ctx: TenantContext, flow) -> TaskFlow | None:
    pk = _flow_id(flow)
    if pk is None:
        return None
    found = TaskFlow.objects.filter(tenant=ctx.tenant, pk=pk).first() if pk > 0 else None
    if found is None:
        raise ValidationError({"flow": [f"No flow {flow} in this tenant."]})
    return found


def _clean_name(name) -> str:
    name = name.strip() if isinstance(name, str) else name
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ValidationError(
            {
                "name": [
                    "Use letters, digits and _ (starting with a letter or _), at most 64 "
                    "characters: nodes reference it as ${secret.NAME}."
                ]
            }
        )
    return name


def _check_unique(secret: Secret) -> None:
    clash = Secret.objects.filter(tenant_id=secret.tenant_id, name=secret.name).exclude(
        pk=secret.pk
    )
    clash = clash.filter(flow_id=secret.flow_id) if secret.flow_id else clash.filter(flow=None)
    if clash.exists():
        where = "this flow" if secret.flow_id else "this tenant"
        raise ValidationError({"name": [f"A secret named '{secret.name}' exists for {where}."]})


def _check_value(value) -> None:
    if not isinstance(value, str):
        raise ValidationError({"value": ["Must be a text."]})
    if len(value) < MIN_VALUE_LENGTH:
        # Redaction replaces the value wherever it appears: a shorter one would hide
        # ordinary text in logs rather than a secret.
        raise ValidationError({"value": [f"At least {MIN_VALUE_LENGTH} characters."]})
    if len(value) > MAX_VALUE_LENGTH:
        raise ValidationError({"value": [f"At most {MAX_VALUE_LENGTH} characters."]})
    if "\x00" in value:
        raise ValidationError({"value": ["Must not contain NUL characters."]})
