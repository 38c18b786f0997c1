"""Permission-aware reads for accounts: who is in which tenant, with which role."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from .choices import PRIVILEGED_ROLES, Role
from .models import Membership, Tenant, User


class TenantAccessDenied(Exception):
    """The user may not act in the requested tenant (unknown slug, no active membership)."""


@dataclass(frozen=True)
class TenantContext:
    """The tenant a request acts in, and the acting user's role there."""

    tenant: Tenant
    user: User
    role: str
    membership: Membership | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def is_privileged(self) -> bool:
        """Tenant admins and DBAs: default stakeholders of every flow."""
        return self.role in PRIVILEGED_ROLES


def active_memberships(*, user: User) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(user=user, is_active=True, tenant__is_active=True)
        .select_related("tenant")
        .order_by("tenant__slug")
    )


def tenant_context_for(*, user: User, slug: str | None) -> TenantContext:
    """Resolve the tenant of a request: the named slug, else the user's default or only one."""
    if not user or not user.is_authenticated or not user.is_active:
        raise TenantAccessDenied("Authentication required.")
    if slug:
        if user.is_superuser:
            tenant = Tenant.objects.filter(slug=slug, is_active=True).first()
            if tenant is None:
                raise TenantAccessDenied(f"Unknown tenant '{slug}'.")
            membership = Membership.objects.filter(user=user, tenant=tenant, is_active=True).first()
            return TenantContext(tenant=tenant, user=user, role=Role.ADMIN, membership=membership)
        membership = active_memberships(user=user).filter(tenant__slug=slug).first()
        if membership is None:
            raise TenantAccessDenied(f"You are not an active member of tenant '{slug}'.")
        return TenantContext(
            tenant=membership.tenant, user=user, role=membership.role, membership=membership
        )
    memberships = list(active_memberships(user=user)[:50])
    if not memberships:
        raise TenantAccessDenied("You are not an active member of any tenant.")
    chosen = next((m for m in memberships if m.tenant_id == user.default_tenant_id), None)
    if chosen is None:
        if len(memberships) > 1:
            raise TenantAccessDenied("You belong to several tenants: name one in X-Tenant.")
        chosen = memberships[0]
    return TenantContext(tenant=chosen.tenant, user=user, role=chosen.role, membership=chosen)


def membership_list(*, tenant: Tenant) -> QuerySet[Membership]:
    """Every membership of the tenant (any member may list them)."""
    return Membership.objects.filter(tenant=tenant).select_related("user", "tenant").order_by("id")


def tenant_list(*, user: User) -> QuerySet[Tenant]:
    """All tenants for the platform superuser; nothing for anyone else."""
    if user.is_superuser:
        return Tenant.objects.all()
    return Tenant.objects.none()


def tenant_member_users(*, tenant: Tenant) -> QuerySet[User]:
    """Users who are active members of the tenant."""
    return User.objects.filter(
        is_active=True, memberships__tenant=tenant, memberships__is_active=True
    )


def admin_tenant_ids(*, user: User) -> list[int]:
    """Tenants in which the user is an active admin (used to scope the Django admin)."""
    return list(
        Membership.objects.filter(
            user=user, role=Role.ADMIN, is_active=True, tenant__is_active=True
        ).values_list("tenant_id", flat=True)
    )


def switchable_tenants(*, user: User) -> list[Tenant]:
    """Tenants the user may switch to in the console: their memberships, or all for the operator."""
    if user.is_superuser:
        return list(Tenant.objects.filter(is_active=True).order_by("slug"))
    return [m.tenant for m in active_memberships(user=user)]
