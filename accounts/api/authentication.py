"""`Authorization: Token <key>` against the hashed, expiring, revocable ApiToken rows.

Replaces DRF's authtoken (one plain-text key per user that never expired). DRF's
TokenAuthentication still parses the header; only the lookup is ours: the key's SHA-256
is looked up, then the row must be neither revoked nor expired and its user active.
What a token may do (its scopes) is checked by the permission layer (accounts/api/base.py).
"""

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from accounts import selectors, services


class ApiTokenAuthentication(TokenAuthentication):
    keyword = "Token"

    def authenticate_credentials(self, key):
        token = selectors.token_for_key(digest=services.token_digest(key))
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        now = timezone.now()
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed(_("This token was revoked."))
        if token.expires_at <= now:
            raise exceptions.AuthenticationFailed(_("This token has expired."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        services.token_mark_used(token=token, now=now)
        return token.user, token
