"""Data source writes: create, update, delete, the connection test and key rotation.

The password is write-only: services accept it, nothing here ever returns it, and errors
are scrubbed of it. Tenant admins and DBAs write (selectors.can_manage); every member reads.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from accounts import hooks
from accounts.errors import ConflictError
from accounts.selectors import TenantContext
from flows.choices import Engine
from flows.models import DataSource

from . import connectors, netpolicy
from .selectors import can_manage, data_source_references

FIELDS = ("name", "engine", "host", "port", "database", "username", "options", "max_concurrency")
TEST_TIMEOUT = 10.0
MAX_PASSWORD_LENGTH = 1024


# --------------------------------------------------------------------------- services


def data_source_create(
    *, ctx: TenantContext, password: str | None = None, **fields: Any
) -> DataSource:
    """Create a data source in the request's tenant (admins and DBAs)."""
    _require_manager(ctx)
    ds = DataSource(tenant=ctx.tenant)
    _assign(ds, fields)
    if password is not None:
        _check_password(password)
        ds.password = password
    validate_data_source(ds)
    _prepare(ds)
    ds._history_user = ctx.user
    ds._change_reason = "created"
    with transaction.atomic():
        ds.save()
    return ds


def data_source_update(
    *, ctx: TenantContext, datasource: DataSource, password: str | None = None, **fields: Any
) -> DataSource:
    """Change a data source; a password of None keeps the stored one, "" clears it."""
    _require_manager(ctx)
    with transaction.atomic():
        ds = DataSource.objects.select_for_update().get(pk=datasource.pk, tenant=ctx.tenant)
        _assign(ds, fields)
        if password is not None:
            _check_password(password)
            ds.password = password
        validate_data_source(ds)
        _prepare(ds)
        ds._history_user = ctx.user
        ds._change_reason = "changed"
        pool_changed = "max_concurrency" in fields
        ds.save()
        if pool_changed:
            # Nodes waiting on this pool may fit now (operations admits them after commit).
            hooks.limits_changed()
    return ds


def data_source_delete(*, ctx: TenantContext, datasource: DataSource) -> None:
    """Delete a data source nobody uses; 409 with the node names when some node does."""
    _require_manager(ctx)
    with transaction.atomic():
        ds = DataSource.objects.select_for_update().get(pk=datasource.pk, tenant=ctx.tenant)
        users = data_source_references(datasource=ds)
        if users:
            shown = ", ".join(users[:20]) + (
                f" and {len(users) - 20} more" if len(users) > 20 else ""
            )
            raise ConflictError(
                f"Data source '{ds.name}' is used by: {shown}. Change those nodes first."
            )
        ds._history_user = ctx.user
        ds._change_reason = "deleted"
        ds.delete()


def data_source_test(*, datasource: DataSource) -> dict:
    """Connect and run `SELECT 1`: {"ok": True} or {"ok": False, "error": message without secrets}."""
    try:
        with connectors.connect(datasource, timeout=TEST_TIMEOUT) as conn:
            conn.run("SELECT 1", max_rows=1, single=True)
    except connectors.ConnectorError as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": True}


def data_source_rotate_password(*, datasource_id: int) -> bool:
    """Re-encrypt one stored password with the newest key; True when it changed (row-locked)."""
    from . import crypto

    with transaction.atomic():
        # Re-read under the lock: a concurrent password change is never overwritten.
        ds = DataSource.objects.select_for_update().filter(pk=datasource_id).first()
        if ds is None or crypto.is_current(ds.password_encrypted):
            return False
        ds.password_encrypted = crypto.rotate(ds.password_encrypted)
        # The password is not tracked: a rotation is not a change anyone needs to audit.
        ds.skip_history_when_saving = True
        try:
            ds.save(update_fields=["password_encrypted"])
        finally:
            del ds.skip_history_when_saving
    return True


# --------------------------------------------------------------------------- internals


def _prepare(ds: DataSource) -> None:
    """Make the tenant's SQLite folders, so an operator can put files there for it."""
    if ds.engine == Engine.SQLITE:
        netpolicy.tenant_sqlite_dirs(ds.tenant.slug, create=True)


def _require_manager(ctx: TenantContext) -> None:
    if not can_manage(ctx):
        raise PermissionDenied("Only tenant admins and DBAs can manage data sources.")


def _assign(ds: DataSource, fields: dict) -> None:
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValidationError({name: ["Unknown field."] for name in sorted(unknown)})
    for name, value in fields.items():
        if name in ("host", "username", "database") and value is None:
            value = ""
        if name == "options" and value is None:
            value = {}
        setattr(
            ds,
            name,
            value.strip() if name in ("name", "host") and isinstance(value, str) else value,
        )


def _check_password(password) -> None:
    if not isinstance(password, str):
        raise ValidationError({"password": ["Must be a text."]})
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError({"password": [f"At most {MAX_PASSWORD_LENGTH} characters."]})


def validate_data_source(ds: DataSource) -> None:
    """Model validation plus the rules of each engine and the network policy, field by field."""
    errors: dict[str, list[str]] = {}
    try:
        ds.full_clean(exclude=["tenant"], validate_constraints=False)
    except ValidationError as exc:
        errors.update({k: list(v) for k, v in exc.message_dict.items()})
    if "name" not in errors and ds.name:
        clash = DataSource.objects.filter(tenant_id=ds.tenant_id, name=ds.name).exclude(pk=ds.pk)
        if clash.exists():
            errors["name"] = [f"A data source named '{ds.name}' already exists in this tenant."]
    if ds.engine in (Engine.POSTGRESQL, Engine.MYSQL):
        if not ds.host and "host" not in errors:
            errors["host"] = ["A host is required for this engine."]
        if not ds.database and "database" not in errors:
            errors["database"] = ["A database name is required."]
        if ds.port is not None and not 1 <= ds.port <= 65535 and "port" not in errors:
            errors["port"] = ["Must be between 1 and 65535."]
        if ds.host and "host" not in errors:
            try:
                netpolicy.normalize_host(ds.host)
                _policy_precheck(ds)
            except netpolicy.NetworkPolicyError as exc:
                errors["host"] = [str(exc)]
    elif ds.engine == Engine.SQLITE:
        for name in ("host", "port", "username"):
            if getattr(ds, name) and name not in errors:
                errors[name] = [f"SQLite data sources have no {name}; leave it empty."]
        if ds.database and "database" not in errors:
            try:
                netpolicy.check_sqlite_path(ds.database, tenant_slug=ds.tenant.slug)
            except netpolicy.NetworkPolicyError as exc:
                errors["database"] = [str(exc)]
    problems = connectors.validate_options(ds.engine, ds.options)
    if problems and "options" not in errors:
        errors["options"] = problems
    if errors:
        raise ValidationError(errors)


def _policy_precheck(ds: DataSource) -> None:
    """Refuse at save time what the policy will always refuse; DNS failures wait for the run."""
    try:
        netpolicy.check(
            ds.host, ds.port or connectors.default_port(ds.engine), database=ds.database or ""
        )
    except netpolicy.NetworkPolicyError as exc:
        if "cannot be resolved" in str(exc) or "has no address" in str(exc):
            return
        raise
