"""Writes for accounts: tenants, members, roles. Each validates and saves atomically."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from .choices import Role
from .models import Membership, Tenant, User


def _set_history(obj, user, reason: str) -> None:
    obj._history_user = user
    obj._change_reason = reason


def tenant_create(*, actor: User, name: str, slug: str) -> Tenant:
    """Create a tenant (platform superuser only)."""
    if not actor.is_superuser:
        raise ValidationError({"detail": ["Only the platform operator creates tenants."]})
    tenant = Tenant(name=name, slug=slug)
    if Tenant.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": [f"A tenant with slug '{slug}' already exists."]})
    tenant.full_clean()
    with transaction.atomic():
        _set_history(tenant, actor, "tenant created")
        tenant.save()
    return tenant


def _validate_role(role: str) -> None:
    if role not in Role.values:
        raise ValidationError(
            {"role": [f"Unknown role '{role}'; choose one of {', '.join(Role.values)}."]}
        )


def member_add(
    *,
    tenant: Tenant,
    actor: User,
    username: str,
    role: str = Role.MEMBER,
    email: str = "",
    password: str | None = None,
) -> Membership:
    """Add a user to the tenant, creating the user if needed; never grants superuser."""
    _validate_role(role)
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
            _set_history(user, actor, "user created")
            user.save()
        elif Membership.objects.filter(user=user, tenant=tenant).exists():
            raise ValidationError(
                {"username": [f"'{username}' is already a member of this tenant."]}
            )
        elif not actor.is_superuser and Membership.objects.filter(user=user).exists():
            # A tenant admin must not pull another tenant's user in (and so read their email
            # or hand them flows): only the platform operator links existing users.
            raise ValidationError(
                {
                    "username": [
                        f"The username '{username}' is taken: choose another one, or ask the "
                        "platform operator to add that existing user."
                    ]
                }
            )
        membership = Membership(user=user, tenant=tenant, role=role)
        _set_history(membership, actor, "member added")
        membership.save()
    return membership


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


def active_admin_pks(*, tenant_id: int) -> list[int]:
    """Primary keys of the tenant's active admin memberships."""
    return list(
        Membership.objects.filter(tenant_id=tenant_id, role=Role.ADMIN, is_active=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def member_update(
    *, membership: Membership, actor: User, role: str | None = None, is_active: bool | None = None
) -> Membership:
    """Change a member's role or active flag; the last active admin is protected."""
    if role is not None:
        _validate_role(role)
    with transaction.atomic():
        # Lock the tenant's admin memberships so two demotions cannot both pass the check.
        admins = list(
            Membership.objects.select_for_update()
            .filter(tenant_id=membership.tenant_id, role=Role.ADMIN, is_active=True)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        membership = Membership.objects.select_for_update().get(pk=membership.pk)
        new_role = role if role is not None else membership.role
        new_active = is_active if is_active is not None else membership.is_active
        check_last_admin(
            membership_pk=membership.pk, admin_pks=admins, new_role=new_role, new_active=new_active
        )
        membership.role = new_role
        membership.is_active = new_active
        _set_history(membership, actor, "member updated")
        membership.save()
    return membership
