"""Which token scope every API route needs, and whether it changes tenant data.

One table for the whole API, keyed by URL name and HTTP method, read by the permission
layer (accounts/api/base.py). A token-authenticated request to a route or method missing
here is refused, and tests/accounts/test_token_scopes.py fails for any route of the
URLconf that is not listed, so a new endpoint is placed here the day it is added.

`writes` marks requests that change tenant data: auditors (read-only roles) are refused
them whatever the route's own checks say. `tenant=False` marks routes outside any tenant
(the user's own account, the platform's tenants).
"""

from __future__ import annotations

from dataclasses import dataclass

from accounts.choices import Scope


@dataclass(frozen=True)
class Need:
    """What a request needs: a token scope (None: any valid token) and whether it writes."""

    scope: str | None
    writes: bool
    tenant: bool = True


FR = Need(Scope.FLOWS_READ, writes=False)
FW = Need(Scope.FLOWS_WRITE, writes=True)
RR = Need(Scope.RUNS_READ, writes=False)
RW = Need(Scope.RUNS_WRITE, writes=True)
AR = Need(Scope.ADMIN, writes=False)
AW = Need(Scope.ADMIN, writes=True)
# The requester's own account (password, tokens): any token, and auditors too.
SELF = Need(None, writes=False, tenant=False)
# The platform's tenants (superuser only, by the view's own check).
PLATFORM_READ = Need(Scope.ADMIN, writes=False, tenant=False)
PLATFORM_WRITE = Need(Scope.ADMIN, writes=True, tenant=False)
# No authentication at all (the sign-in endpoint).
PUBLIC = Need(None, writes=False, tenant=False)

ROUTES: dict[str, dict[str, Need]] = {
    # accounts
    "auth-token": {"post": PUBLIC},
    "me": {"get": SELF},
    "me-password": {"post": SELF},
    "me-token-list": {"get": SELF, "post": SELF},
    "me-token-detail": {"get": SELF, "delete": SELF},
    "tenant-list": {"get": PLATFORM_READ, "post": PLATFORM_WRITE},
    # Tenant admins and auditors read their own tenant; the superuser sets its limits.
    "tenant-detail": {"get": PLATFORM_READ, "patch": PLATFORM_WRITE},
    "member-list": {"get": FR, "post": AW},
    "member-detail": {"get": FR, "patch": AW},
    "service-account-list": {"get": AR, "post": AW},
    "service-account-detail": {"get": AR, "patch": AW},
    "service-account-token-list": {"get": AR, "post": AW},
    "service-account-token-detail": {"get": AR, "delete": AW},
    "audit": {"get": AR},
    # event webhooks: tenant admins (auditors read); a redelivery changes nothing but sends
    "webhook-list": {"get": AR, "post": AW},
    "webhook-detail": {"get": AR, "patch": AW, "delete": AW},
    "webhook-deliveries": {"get": AR},
    "webhook-redeliver": {"post": AW},
    # flows
    "flow-list": {"get": FR, "post": FW},
    "flow-import-": {"post": FW},
    "flow-detail": {"get": FR, "patch": FW, "delete": FW},
    "flow-export": {"get": FR},
    "flow-graph": {"get": FR, "put": FW},
    "flow-history": {"get": FR},
    "flow-preview": {"post": FR},
    "flow-stakeholders": {"get": FR, "put": FW},
    "flow-owner": {"post": FW},
    "flow-publish": {"post": FW},
    "flow-unpublish": {"post": FW},
    "flow-freeze": {"post": FW},
    "flow-unfreeze": {"post": FW},
    "flow-node-list": {"get": FR, "post": FW},
    "flow-node-detail": {"get": FR, "patch": FW, "delete": FW},
    "flow-edge-list": {"get": FR, "post": FW},
    "flow-edge-detail": {"get": FR, "delete": FW},
    "flow-version-list": {"get": FR},
    "flow-version-detail": {"get": FR},
    "flow-version-diff": {"get": FR},
    "flow-schedule": {"get": FR, "put": FW},
    "flow-schedule-preview": {"get": FR},
    "flow-schedule-missed": {"get": FR},
    # lineage (tables read and written, flows up- and downstream) and the fire-time spread
    "lineage": {"get": FR},
    "flow-lineage": {"get": FR},
    "schedule-distribution": {"get": FR},
    # data sources: read by every member, written by admins and DBAs; a connection test
    # changes nothing.
    "datasource-list": {"get": FR, "post": FW},
    "datasource-detail": {"get": FR, "patch": FW, "delete": FW},
    "datasource-history": {"get": FR},
    "datasource-test": {"post": FR},
    # secrets: names read by every member, values never; written by admins and DBAs.
    "secret-list": {"get": FR, "post": FW},
    "secret-detail": {"get": FR, "patch": FW, "delete": FW},
    "secret-history": {"get": FR},
    # runs and O&M
    "flow-run-list": {"get": RR, "post": RW},
    "run-list": {"get": RR},
    "run-detail": {"get": RR},
    "run-stop": {"post": RW},
    "run-pause": {"post": RW},
    "run-resume": {"post": RW},
    "run-rerun": {"post": RW},
    "run-restore": {"post": RW},
    "run-bulk": {"post": RW},
    "node-run-detail": {"get": RR},
    "node-run-log": {"get": RR},
    "node-run-mark-success": {"post": RW},
    "node-run-rerun-from": {"post": RW},
    "dashboard": {"get": RR},
    "capacity": {"get": RR},
    "run-grid": {"get": RR},
    "flow-stats": {"get": RR},
}

# OPTIONS (DRF's metadata) and HEAD read nothing a GET would not.
_METADATA = Need(None, writes=False, tenant=False)


def need_for(url_name: str | None, method: str) -> Need | None:
    """The Need of a request, or None when the route or method is not in the table."""
    method = method.lower()
    if method == "options":
        return _METADATA
    if method == "head":
        method = "get"
    return ROUTES.get(url_name or "", {}).get(method)
