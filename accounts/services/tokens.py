"""API tokens: issued (the secret shown once, a digest stored), used, revoked."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from ..choices import ALL_SCOPES
from ..models import ApiToken, ServiceAccount, User

TOKEN_PREFIX = "trb_"


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
