"""Permission-aware reads for accounts: who is in which tenant, with which role."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import OuterRef, QuerySet, Subquery

from .choices import ADMIN_SITE_ROLES, AUDIT_ROLES, PRIVILEGED_ROLES, READ_ONLY_ROLES, Role
from .models import ApiToken, Membership, ServiceAccount, Tenant, User


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

    @property
    def read_only(self) -> bool:
        """Auditors: read everything in the tenant, change nothing."""
        return self.role in READ_ONLY_ROLES

    @property
    def sees_every_flow(self) -> bool:
        """Admins, DBAs and auditors see every flow of the tenant, public or not."""
        return self.is_privileged or self.read_only

    @property
    def can_read_audit(self) -> bool:
        """Who reads the tenant-wide audit trail (API, console page): admins and auditors."""
        return self.role in AUDIT_ROLES


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


def member_context(*, tenant_id: int, user_id: int | None) -> TenantContext | None:
    """The context `user_id` would act in inside the tenant (as tenant_context_for resolves
    it), or None when they may not act there: what a flow's owner sees, without a request."""
    if user_id is None:
        return None
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return None
    if user.is_superuser:
        tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
        return None if tenant is None else TenantContext(tenant=tenant, user=user, role=Role.ADMIN)
    membership = active_memberships(user=user).filter(tenant_id=tenant_id).first()
    if membership is None:
        return None
    return TenantContext(
        tenant=membership.tenant, user=user, role=membership.role, membership=membership
    )


def membership_list(*, tenant: Tenant) -> QuerySet[Membership]:
    """Every membership of the tenant (any member may list them)."""
    return Membership.objects.filter(tenant=tenant).select_related("user", "tenant").order_by("id")


def tenant_list(*, user: User) -> QuerySet[Tenant]:
    """All tenants for the platform superuser; nothing for anyone else."""
    if user.is_superuser:
        return Tenant.objects.all()
    return Tenant.objects.none()


def tenant_readable(*, user: User) -> QuerySet[Tenant]:
    """Tenants whose row (limits, use) the user reads: all for the platform superuser, else
    the tenants where they are an active admin or auditor."""
    if user.is_superuser:
        return Tenant.objects.all()
    return Tenant.objects.filter(
        memberships__user=user,
        memberships__is_active=True,
        memberships__role__in=(Role.ADMIN, Role.AUDITOR),
    ).distinct()


def tenant_member_users(*, tenant: Tenant) -> QuerySet[User]:
    """Users who may own or hold a flow: active members of the tenant, auditors excepted.

    Auditors change nothing, so they are never made an owner or a stakeholder.
    """
    return User.objects.filter(
        is_active=True,
        memberships__tenant=tenant,
        memberships__is_active=True,
        memberships__role__in=[r for r in Role.values if r not in READ_ONLY_ROLES],
    )


def admin_site_roles(*, user: User) -> dict[int, str]:
    """{tenant id: role} of the tenants whose Django admin pages the user may use.

    Tenant admins change their tenant's rows there, auditors read them; nobody else
    (is_staff alone opens nothing of a tenant).
    """
    if not user or not user.is_authenticated or not user.is_active:
        return {}
    return dict(
        Membership.objects.filter(
            user=user, role__in=ADMIN_SITE_ROLES, is_active=True, tenant__is_active=True
        ).values_list("tenant_id", "role")
    )


def switchable_tenants(*, user: User) -> list[Tenant]:
    """Tenants the user may switch to in the console: their memberships, or all for the operator."""
    if user.is_superuser:
        return list(Tenant.objects.filter(is_active=True).order_by("slug"))
    return [m.tenant for m in active_memberships(user=user)]


# --------------------------------------------------------------------------- tokens


def token_for_key(*, digest: str) -> ApiToken | None:
    """The token row with this digest, its user loaded (one query), or None."""
    return ApiToken.objects.select_related("user").filter(key_hash=digest).first()


def token_list(*, user: User) -> QuerySet[ApiToken]:
    """A user's own tokens, newest first (never the secret: only its digest is stored)."""
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")


def service_account_list(*, tenant: Tenant) -> QuerySet[ServiceAccount]:
    """The tenant's service accounts, each annotated with its membership's role and flag."""
    membership = Membership.objects.filter(
        user_id=OuterRef("user_id"), tenant_id=OuterRef("tenant_id")
    )
    return (
        ServiceAccount.objects.filter(tenant=tenant)
        .select_related("user", "created_by")
        .annotate(
            role=Subquery(membership.values("role")[:1]),
            is_active=Subquery(membership.values("is_active")[:1]),
        )
        .order_by("id")
    )


def service_account_tokens(*, account: ServiceAccount) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user_id=account.user_id, tenant_id=account.tenant_id).order_by(
        "-created_at", "-id"
    )


def is_service_account(user: User) -> bool:
    return ServiceAccount.objects.filter(user_id=user.pk).exists()
