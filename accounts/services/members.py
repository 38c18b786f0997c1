"""Tenants and memberships: who is in which tenant with which role."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from .. import hooks
from ..choices import Role
from ..models import Membership, ServiceAccount, Tenant, User
from ._common import set_history
from .tokens import tokens_revoke_all

# --------------------------------------------------------------------------- tenants


def tenant_create(*, actor: User, name: str, slug: str) -> Tenant:
    """Create a tenant (platform superuser only)."""
    if not actor.is_superuser:
        raise ValidationError({"detail": ["Only the platform operator creates tenants."]})
    tenant = Tenant(name=name, slug=slug)
    if Tenant.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": [f"A tenant with slug '{slug}' already exists."]})
    tenant.full_clean()
    with transaction.atomic():
        set_history(tenant, actor, "tenant created")
        tenant.save()
    return tenant


def tenant_set_limits(*, tenant: Tenant, actor: User, limits: dict) -> Tenant:
    """Set a tenant's fair-share limits (platform superuser only); null returns to the default.

    `limits` may hold `running_nodes` and `active_runs` (a whole number >= 1, or None).
    Lowering a limit stops nothing: running nodes finish and new ones wait.
    """
    if not actor.is_superuser:
        raise ValidationError({"limits": ["Only the platform operator sets a tenant's limits."]})
    fields = {"running_nodes": "max_running_nodes", "active_runs": "max_active_runs"}
    unknown = sorted(set(limits) - set(fields))
    if unknown:
        raise ValidationError(
            {"limits": [f"Unknown limit {', '.join(unknown)}: use running_nodes, active_runs."]}
        )
    for key, value in limits.items():
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValidationError(
                {"limits": [f"{key} must be a whole number of at least 1, or null (default)."]}
            )
        setattr(tenant, fields[key], value)
    with transaction.atomic():
        set_history(tenant, actor, "tenant limits changed")
        tenant.save(update_fields=[fields[key] for key in limits])
        hooks.limits_changed()
    return tenant


# --------------------------------------------------------------------------- memberships


def validate_role(role: str) -> None:
    if role not in Role.values:
        raise ValidationError(
            {"role": [f"Unknown role '{role}'; choose one of {', '.join(Role.values)}."]}
        )


def check_may_add_existing_user(*, actor: User, user: User, field: str = "username") -> None:
    """Only the platform operator links an existing account to a tenant.

    A tenant admin who could add an existing user (the superuser, another tenant's person)
    would, as their tenant's admin, then reach that account; so a tenant admin only ever
    creates new people. Service accounts belong to the one tenant that created them.
    """
    if not actor.is_superuser:
        raise ValidationError(
            {
                field: [
                    f"The username '{user.username}' is taken: choose another one, or ask the "
                    "platform operator to add that existing user."
                ]
            }
        )
    if hasattr(user, "service_account"):
        raise ValidationError({field: ["A service account belongs to its own tenant only."]})


def membership_create(*, tenant: Tenant, actor: User, user: User, role: str) -> Membership:
    if Membership.objects.filter(user=user, tenant=tenant).exists():
        raise ValidationError(
            {"username": [f"'{user.username}' is already a member of this tenant."]}
        )
    membership = Membership(user=user, tenant=tenant, role=role)
    set_history(membership, actor, "member added")
    membership.save()
    return membership


def member_add(
    *,
    tenant: Tenant,
    actor: User,
    username: str,
    role: str = Role.MEMBER,
    email: str = "",
    password: str | None = None,
) -> Membership:
    """Add a new person to the tenant (a tenant admin), or an existing one (the operator)."""
    validate_role(role)
    with transaction.atomic():
        user = User.objects.select_for_update().filter(username=username).first()
        if user is None:
            if not password:
                raise ValidationError({"password": ["A password is required for a new user."]})
            user = User(username=username, email=email or "")
            try:
                validate_password(password, user)
            except ValidationError as exc:
                raise ValidationError({"password": list(exc.messages)}) from exc
            user.set_password(password)
            user.full_clean(exclude=["password"])
            set_history(user, actor, "user created")
            user.save()
        else:
            if Membership.objects.filter(user=user, tenant=tenant).exists():
                raise ValidationError(
                    {"username": [f"'{username}' is already a member of this tenant."]}
                )
            check_may_add_existing_user(actor=actor, user=user)
            if password:
                # An existing account's password is its owner's (or the operator's, in the admin).
                raise ValidationError(
                    {"password": ["Only for a new user: this account already has a password."]}
                )
        return membership_create(tenant=tenant, actor=actor, user=user, role=role)


def member_add_existing(*, tenant: Tenant, actor: User, user: User, role: str) -> Membership:
    """Add an existing account to a tenant (the Django admin's membership form): operator only."""
    validate_role(role)
    check_may_add_existing_user(actor=actor, user=user, field="user")
    with transaction.atomic():
        return membership_create(tenant=tenant, actor=actor, user=user, role=role)


def check_last_admin(
    *, membership_pk: int, admin_pks: list[int], new_role: str, new_active: bool
) -> None:
    """Refuse a change that would leave the tenant without an active admin."""
    loses_admin = membership_pk in admin_pks and (new_role != Role.ADMIN or not new_active)
    if loses_admin and len(admin_pks) == 1:
        field = "role" if new_role != Role.ADMIN else "is_active"
        raise ValidationError(
            {field: ["This is the tenant's last active admin: promote another admin first."]}
        )


def active_admin_pks(*, tenant_id: int, lock: bool = False) -> list[int]:
    """Primary keys of the tenant's active admin memberships held by people.

    A service account with the admin role does not count: a tenant must keep a person who
    can sign in to manage it.
    """
    qs = Membership.objects.filter(
        tenant_id=tenant_id, role=Role.ADMIN, is_active=True, user__service_account__isnull=True
    ).order_by("pk")
    if lock:
        qs = qs.select_for_update(of=("self",))
    return list(qs.values_list("pk", flat=True))


def member_update(
    *, membership: Membership, actor: User, role: str | None = None, is_active: bool | None = None
) -> Membership:
    """Change a member's role or active flag; the last active admin is protected.

    Deactivating a service account's membership also revokes its tokens.
    """
    if role is not None:
        validate_role(role)
    with transaction.atomic():
        # Lock the tenant's admin memberships so two demotions cannot both pass the check.
        admins = active_admin_pks(tenant_id=membership.tenant_id, lock=True)
        membership = Membership.objects.select_for_update().get(pk=membership.pk)
        new_role = role if role is not None else membership.role
        new_active = is_active if is_active is not None else membership.is_active
        check_last_admin(
            membership_pk=membership.pk, admin_pks=admins, new_role=new_role, new_active=new_active
        )
        deactivated = membership.is_active and not new_active
        membership.role = new_role
        membership.is_active = new_active
        set_history(membership, actor, "member updated")
        membership.save()
        if deactivated and ServiceAccount.objects.filter(user_id=membership.user_id).exists():
            tokens_revoke_all(
                user=membership.user, actor=actor, reason="service account deactivated"
            )
    return membership


def member_remove(*, membership: Membership, actor: User) -> None:
    """Delete a membership (the Django admin's delete); the last active admin is protected."""
    with transaction.atomic():
        admins = active_admin_pks(tenant_id=membership.tenant_id, lock=True)
        membership = Membership.objects.select_for_update().get(pk=membership.pk)
        check_last_admin(
            membership_pk=membership.pk, admin_pks=admins, new_role=Role.MEMBER, new_active=False
        )
        if ServiceAccount.objects.filter(user_id=membership.user_id).exists():
            tokens_revoke_all(user=membership.user, actor=actor, reason="service account removed")
        set_history(membership, actor, "member removed")
        membership.delete()
