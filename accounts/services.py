"""Writes for accounts: tenants, memberships, people's accounts, service accounts, API tokens.

Who may change what (README "Who may grant what"): the platform superuser creates tenants,
adds existing users to tenants and changes accounts (username, e-mail, password, active,
staff, superuser); a tenant admin adds new people and service accounts to their tenant and
manages memberships (role, active in this tenant), never an account; a user changes their
own password and manages their own tokens. Each function validates and saves atomically.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from .choices import ALL_SCOPES, Role
from .models import ApiToken, Membership, ServiceAccount, Tenant, User

TOKEN_PREFIX = "trb_"
SERVICE_ACCOUNT_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}\Z")


def _set_history(obj, user, reason: str) -> None:
    obj._history_user = user
    obj._change_reason = reason


def _require_operator(actor: User, what: str) -> None:
    if not (actor and actor.is_superuser):
        raise PermissionDenied(f"Only the platform operator {what}.")


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
        _set_history(tenant, actor, "tenant created")
        tenant.save()
    return tenant


# --------------------------------------------------------------------------- memberships


def _validate_role(role: str) -> None:
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


def _membership_create(*, tenant: Tenant, actor: User, user: User, role: str) -> Membership:
    if Membership.objects.filter(user=user, tenant=tenant).exists():
        raise ValidationError(
            {"username": [f"'{user.username}' is already a member of this tenant."]}
        )
    membership = Membership(user=user, tenant=tenant, role=role)
    _set_history(membership, actor, "member added")
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
        return _membership_create(tenant=tenant, actor=actor, user=user, role=role)


def member_add_existing(*, tenant: Tenant, actor: User, user: User, role: str) -> Membership:
    """Add an existing account to a tenant (the Django admin's membership form): operator only."""
    _validate_role(role)
    check_may_add_existing_user(actor=actor, user=user, field="user")
    with transaction.atomic():
        return _membership_create(tenant=tenant, actor=actor, user=user, role=role)


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
        _validate_role(role)
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
        _set_history(membership, actor, "member updated")
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
        _set_history(membership, actor, "member removed")
        membership.delete()


# --------------------------------------------------------------------------- accounts


def user_password_change(*, user: User, old_password: str, new_password: str) -> int:
    """The user changes their own password; every API token of theirs is revoked.

    Returns how many tokens were revoked.
    """
    if not user.check_password(old_password):
        raise ValidationError({"old_password": ["Your current password is not correct."]})
    try:
        validate_password(new_password, user)
    except ValidationError as exc:
        raise ValidationError({"new_password": list(exc.messages)}) from exc
    with transaction.atomic():
        user.set_password(new_password)
        _set_history(user, user, "password changed")
        user.save()
        return tokens_revoke_all(user=user, actor=user, reason="password changed")


def user_credentials_save(*, user: User) -> int:
    """Save a password the operator just set on `user` (the Django admin's password form, which
    only the superuser reaches); every API token of theirs is revoked."""
    with transaction.atomic():
        # The history user comes from the request (simple-history's middleware).
        user._change_reason = "password set by the operator"
        user.save()
        return tokens_revoke_all(user=user, actor=None, reason="password changed")


def user_account_save(*, actor: User, user: User, was_active: bool) -> User:
    """Save an account changed in the Django admin (operator only); deactivating revokes tokens."""
    _require_operator(actor, "changes accounts")
    with transaction.atomic():
        _set_history(user, actor, "account changed")
        user.save()
        if was_active and not user.is_active:
            tokens_revoke_all(user=user, actor=actor, reason="account deactivated")
    return user


# --------------------------------------------------------------------------- API tokens


def token_digest(key: str) -> str:
    """What is stored of a token: its SHA-256 (the key is 256 random bits, so no slow hash)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _validate_token_request(
    *, name: str, scopes, expires_at: datetime | None, via: ApiToken | None
) -> tuple[str, list[str], datetime]:
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name or len(name) > 100:
        errors["name"] = ["Give the token a name of 1 to 100 characters."]
    if not isinstance(scopes, list | tuple) or not scopes:
        errors["scopes"] = [f"Give at least one scope: {', '.join(ALL_SCOPES)}."]
        scopes = []
    else:
        unknown = [str(s) for s in scopes if s not in ALL_SCOPES]
        if unknown:
            errors["scopes"] = [
                f"Unknown scope {', '.join(unknown)}; choose from {', '.join(ALL_SCOPES)}."
            ]
        elif via is not None and not set(scopes) <= set(via.scopes):
            extra = sorted(set(scopes) - set(via.scopes))
            errors["scopes"] = [
                f"A token can only issue tokens with its own scopes; this one lacks "
                f"{', '.join(extra)}."
            ]
    now = timezone.now()
    longest = now + settings.API_TOKEN_MAX_LIFETIME
    if expires_at is None:
        expires_at = now + settings.API_TOKEN_LIFETIME
    if expires_at <= now:
        errors["expires_at"] = ["Give a moment in the future."]
    elif expires_at > longest:
        days = settings.API_TOKEN_MAX_LIFETIME.days
        errors["expires_at"] = [f"A token lives at most {days} days: give an earlier moment."]
    if via is not None and expires_at > via.expires_at:
        # Otherwise a token could keep itself alive for ever through its successors.
        expires_at = via.expires_at
    if errors:
        raise ValidationError(errors)
    return name, sorted(set(scopes), key=ALL_SCOPES.index), expires_at


def token_issue(
    *,
    user: User,
    actor: User,
    name: str,
    scopes,
    expires_at: datetime | None = None,
    via: ApiToken | None = None,
) -> tuple[ApiToken, str]:
    """Issue a token for `user` (a person, or a service account by its tenant admin).

    Returns the row and the secret, which is shown once and never stored. `via` is the token
    the request came with, if any: a token only issues tokens with a subset of its scopes
    that expire no later than itself.
    """
    if not user.is_active:
        raise ValidationError({"detail": ["This account is deactivated."]})
    name, scopes, expires_at = _validate_token_request(
        name=name, scopes=scopes, expires_at=expires_at, via=via
    )
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    service = ServiceAccount.objects.filter(user=user).only("tenant_id").first()
    token = ApiToken.objects.create(
        user=user,
        tenant_id=service.tenant_id if service else None,
        name=name,
        key_hash=token_digest(key),
        prefix=key[: len(TOKEN_PREFIX) + 6],
        scopes=scopes,
        created_by=actor,
        expires_at=expires_at,
    )
    return token, key


def token_sign_in(*, user: User) -> tuple[ApiToken, str]:
    """The token POST /api/v1/auth/token/ returns: every scope, the default lifetime."""
    stamp = timezone.now().strftime("%Y-%m-%d %H:%M UTC")
    return token_issue(user=user, actor=user, name=f"sign-in {stamp}", scopes=list(ALL_SCOPES))


def token_revoke(*, token: ApiToken, actor: User, reason: str = "revoked") -> ApiToken:
    """Revoke one token (idempotent: a revoked token stays revoked as it was)."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.revoked_by = actor
        token.revoked_reason = reason
        token.save(update_fields=["revoked_at", "revoked_by", "revoked_reason"])
    return token


def tokens_revoke_all(*, user: User, actor: User | None, reason: str) -> int:
    """Revoke every live token of `user` (password change, deactivation)."""
    # ApiToken carries no history table, so one UPDATE is fine here.
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_by=actor, revoked_reason=reason
    )


def token_mark_used(*, token: ApiToken, now: datetime) -> None:
    """Record a token's last use, at most once a minute (one UPDATE, not one per request)."""
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() >= 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


# --------------------------------------------------------------------------- service accounts


def service_account_username(*, tenant: Tenant, name: str) -> str:
    """The account's user name, as the audit trail shows it: `<name>@<tenant>.svc`."""
    return f"{name}@{tenant.slug}.svc"


def service_account_create(
    *, tenant: Tenant, actor: User, name: str, role: str = Role.MEMBER, description: str = ""
) -> ServiceAccount:
    """A tenant admin creates a service account: a user that cannot sign in, with a role."""
    _validate_role(role)
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
        _set_history(user, actor, "service account created")
        user.save()
        account = ServiceAccount(
            tenant=tenant, user=user, name=name, description=description, created_by=actor
        )
        _set_history(account, actor, "service account created")
        account.save()
        _membership_create(tenant=tenant, actor=actor, user=user, role=role)
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
            _set_history(service_account, actor, "service account changed")
            service_account.save()
    return service_account
