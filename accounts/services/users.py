"""People's accounts: passwords and the account flags only the operator changes."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from ..models import User
from ._common import require_operator, set_history
from .tokens import tokens_revoke_all

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
        set_history(user, user, "password changed")
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
    require_operator(actor, "changes accounts")
    with transaction.atomic():
        set_history(user, actor, "account changed")
        user.save()
        if was_active and not user.is_active:
            tokens_revoke_all(user=user, actor=actor, reason="account deactivated")
    return user
