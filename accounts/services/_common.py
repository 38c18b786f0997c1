"""Shared helpers of the account services."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from ..models import User


def set_history(obj, user, reason: str) -> None:
    obj._history_user = user
    obj._change_reason = reason


def require_operator(actor: User, what: str) -> None:
    if not (actor and actor.is_superuser):
        raise PermissionDenied(f"Only the platform operator {what}.")
