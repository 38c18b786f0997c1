"""Service accounts: API-only accounts of one tenant, with a role like a person's."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import transaction

from ..choices import Role
from ..models import Membership, ServiceAccount, Tenant, User
from ._common import set_history
from .members import member_update, membership_create, validate_role

SERVICE_ACCOUNT_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}\Z")


# --------------------------------------------------------------------------- service accounts


def service_account_username(*, tenant: Tenant, name: str) -> str:
    """The account's user name, as the audit trail shows it: `<name>@<tenant>.svc`."""
    return f"{name}@{tenant.slug}.svc"


def service_account_create(
    *, tenant: Tenant, actor: User, name: str, role: str = Role.MEMBER, description: str = ""
) -> ServiceAccount:
    """A tenant admin creates a service account: a user that cannot sign in, with a role."""
    validate_role(role)
    name = (name or "").strip()
    if not SERVICE_ACCOUNT_NAME.match(name):
        raise ValidationError(
            {"name": ["1 to 64 characters: lowercase letters, digits, '.', '_' and '-'."]}
        )
    username = service_account_username(tenant=tenant, name=name)
    with transaction.atomic():
        if (
            ServiceAccount.objects.filter(tenant=tenant, name=name).exists()
            or User.objects.filter(username=username).exists()
        ):
            raise ValidationError({"name": [f"A service account '{name}' already exists."]})
        user = User(username=username)
        user.set_unusable_password()
        set_history(user, actor, "service account created")
        user.save()
        account = ServiceAccount(
            tenant=tenant, user=user, name=name, description=description, created_by=actor
        )
        set_history(account, actor, "service account created")
        account.save()
        membership_create(tenant=tenant, actor=actor, user=user, role=role)
    return account


def service_account_update(
    *,
    service_account: ServiceAccount,
    actor: User,
    role: str | None = None,
    is_active: bool | None = None,
    description: str | None = None,
) -> ServiceAccount:
    """Change a service account's role, description or active flag (off revokes its tokens)."""
    with transaction.atomic():
        membership = Membership.objects.get(
            user_id=service_account.user_id, tenant_id=service_account.tenant_id
        )
        member_update(membership=membership, actor=actor, role=role, is_active=is_active)
        if description is not None and description != service_account.description:
            service_account.description = description
            set_history(service_account, actor, "service account changed")
            service_account.save()
    return service_account
