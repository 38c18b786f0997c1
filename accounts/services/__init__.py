"""Writes for accounts: tenants, memberships, people's accounts, service accounts, API tokens.

Who may change what (README "Who may grant what"): the platform superuser creates tenants,
adds existing users to tenants and changes accounts (username, e-mail, password, active,
staff, superuser); a tenant admin adds new people and service accounts to their tenant and
manages memberships (role, active in this tenant), never an account; a user changes their
own password and manages their own tokens. Each function validates and saves atomically.
"""

from .members import (
    active_admin_pks,
    check_last_admin,
    check_may_add_existing_user,
    member_add,
    member_add_existing,
    member_remove,
    member_update,
    tenant_create,
    tenant_set_limits,
)
from .service_accounts import (
    service_account_create,
    service_account_update,
    service_account_username,
)
from .tokens import (
    TOKEN_PREFIX,
    token_digest,
    token_issue,
    token_mark_used,
    token_revoke,
    token_sign_in,
    tokens_revoke_all,
)
from .users import user_account_save, user_credentials_save, user_password_change

__all__ = [
    "TOKEN_PREFIX",
    "active_admin_pks",
    "check_last_admin",
    "check_may_add_existing_user",
    "member_add",
    "member_add_existing",
    "member_remove",
    "member_update",
    "service_account_create",
    "service_account_update",
    "service_account_username",
    "tenant_create",
    "tenant_set_limits",
    "token_digest",
    "token_issue",
    "token_mark_used",
    "token_revoke",
    "token_sign_in",
    "tokens_revoke_all",
    "user_account_save",
    "user_credentials_save",
    "user_password_change",
]
