"""The one permission layer every tenant endpoint inherits.

`TenantViewSet.get_queryset()` asks the subclass's selector for what the user may see and
then scopes it to the request's tenant again, so no endpoint can build an unrestricted
queryset; objects outside it answer 404. Methods a viewset does not map answer 405.
"""

from rest_framework import permissions, viewsets
from rest_framework.exceptions import PermissionDenied

from accounts.selectors import TenantAccessDenied, TenantContext, tenant_context_for


def resolve_request_tenant(request) -> TenantContext:
    """Attach the request's tenant context (X-Tenant header, else the user's default)."""
    ctx = getattr(request, "tenant_ctx", None)
    if ctx is not None:
        return ctx
    slug = request.headers.get("X-Tenant") or None
    if slug is None:
        session = getattr(request, "session", None)
        slug = session.get("tenant_slug") if session is not None else None
    try:
        ctx = tenant_context_for(user=request.user, slug=slug)
    except TenantAccessDenied as exc:
        raise PermissionDenied(str(exc)) from exc
    request.tenant_ctx = ctx
    request.tenant = ctx.tenant
    # Also on the underlying Django request, so history middleware and pages see it.
    django_request = getattr(request, "_request", None)
    if django_request is not None:
        django_request.tenant_ctx = ctx
    return ctx


class IsTenantMember(permissions.BasePermission):
    """The user is an active member of the request's tenant (or the platform superuser)."""

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        resolve_request_tenant(request)
        return True


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
