"""Data sources: services (create, update, delete, test) and the selector every reader uses.

The password is write-only: services accept it, nothing here ever returns it, and errors
are scrubbed of it. Who may manage data sources: tenant admins and DBAs write, every
member reads.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet

from accounts.errors import ConflictError
from accounts.selectors import TenantContext

from . import connectors, netpolicy
from .choices import Engine
from .models import DataSource, FlowVersion, TaskFlow, TaskNode

FIELDS = ("name", "engine", "host", "port", "database", "username", "options")
TEST_TIMEOUT = 10.0
MAX_PASSWORD_LENGTH = 1024


# --------------------------------------------------------------------------- selectors


def data_source_list(*, ctx: TenantContext) -> QuerySet[DataSource]:
    """Data sources of the request's tenant (every member may list them; no secret is read)."""
    return DataSource.objects.filter(tenant=ctx.tenant).defer("password_encrypted")


def data_source_get(*, ctx: TenantContext, datasource_id) -> DataSource | None:
    """One data source of the tenant, or None (unknown and foreign ids alike)."""
    try:
        pk = int(datasource_id)
    except (TypeError, ValueError):
        return None
    return DataSource.objects.filter(tenant=ctx.tenant, pk=pk).first()


def can_manage(ctx: TenantContext) -> bool:
    """Tenant admins and DBAs create, change and delete data sources."""
    return ctx.is_privileged


def data_source_references(*, datasource: DataSource) -> list[str]:
    """Names ("flow / node") of nodes that use the data source, in editing or published versions."""
    from .nodes import base as node_types

    types = {name for name, t in node_types.all_types().items() if _refers_to_datasources(t)}
    found: list[str] = []
    nodes = TaskNode.objects.filter(tenant_id=datasource.tenant_id, type__in=types).select_related(
        "flow"
    )
    for node in nodes.only("name", "type", "config", "flow__name"):
        if _uses(node.type, node.config, datasource.pk):
            found.append(f"{node.flow.name} / {node.name}")
    published = TaskFlow.objects.filter(
        tenant_id=datasource.tenant_id, published_version__isnull=False
    ).values_list("published_version_id", flat=True)
    for version in FlowVersion.objects.filter(pk__in=published).select_related("flow"):
        for node in (version.snapshot or {}).get("nodes", []) or []:
            if (
                isinstance(node, dict)
                and node.get("type") in types
                and _uses(node["type"], node.get("config"), datasource.pk)
            ):
                label = f"{version.flow.name} / {node.get('name')} (published v{version.number})"
                if f"{version.flow.name} / {node.get('name')}" not in found:
                    found.append(label)
    return sorted(found)


def _refers_to_datasources(node_type) -> bool:
    from .nodes.base import NodeType

    return type(node_type).references is not NodeType.references


def _uses(type_name: str, config, pk: int) -> bool:
    from .nodes import base as node_types

    node_type = node_types.get(type_name)
    if node_type is None or not isinstance(config, dict):
        return False
    try:
        ids = node_type.references(config).get("datasources", [])
    except Exception:  # noqa: BLE001 - a malformed config simply references nothing
        return False
    return any(str(i) == str(pk) for i in ids)


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
        ds._history_user = ctx.user
        ds._change_reason = "changed"
        ds.save()
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
        if ds is None or not ds.password_encrypted:
            return False
        if _encrypted_with_newest_key(ds.password_encrypted):
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


def _encrypted_with_newest_key(token: str) -> bool:
    from cryptography.fernet import Fernet, InvalidToken
    from django.conf import settings

    key = settings.FIELD_ENCRYPTION_KEYS[0]
    try:
        Fernet(key.encode() if isinstance(key, str) else key).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


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
                netpolicy.check_sqlite_path(ds.database)
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


def data_source_history(*, datasource: DataSource):
    """The data source's audit rows (newest first) and their sources, for the timeline paginator."""
    from django.db.models import Q

    from . import timeline

    sources = [
        timeline.Source(
            "datasource",
            DataSource.history.model,
            Q(id=datasource.pk, tenant_id=datasource.tenant_id),
        )
    ]
    return timeline.timeline_queryset(sources), sources
