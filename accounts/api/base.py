"""The one permission layer every API endpoint inherits.

Every view runs `ScopedAccess` (the default permission class) or `IsTenantMember` (tenant
endpoints, through `TenantViewSet`): token scopes and the auditors' read-only rule, by
route (accounts/api/permissions.py, accounts/api/scopes.py).

`TenantViewSet.get_queryset()` asks the subclass's selector for what the user may see and
then scopes it to the request's tenant again, so no endpoint can build an unrestricted
queryset; objects outside it answer 404. Methods a viewset does not map answer 405.
"""

from rest_framework import permissions, viewsets

from accounts.api.permissions import (
    AccountAccess,
    IsTenantMember,
    ScopedAccess,
    check_route_access,
    request_token,
    resolve_request_tenant,
)
from accounts.selectors import TenantContext

__all__ = [
    "AccountAccess",
    "IsTenantMember",
    "ScopedAccess",
    "TenantViewSet",
    "check_route_access",
    "request_token",
    "resolve_request_tenant",
]


class TenantViewSet(viewsets.GenericViewSet):
    """Base of every tenant endpoint: selector first, tenant scope always."""

    permission_classes = [permissions.IsAuthenticated, IsTenantMember]

    @property
    def ctx(self) -> TenantContext:
        return resolve_request_tenant(self.request)

    def scoped_queryset(self):
        """Subclasses return the selector's queryset for `self.ctx` (user and tenant)."""
        raise NotImplementedError

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset.none() if self.queryset is not None else None
        return self.scoped_queryset().filter(tenant=self.ctx.tenant)
