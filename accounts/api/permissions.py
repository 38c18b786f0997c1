"""The permission classes of the API's base layer (re-exported by accounts/api/base.py).

`ScopedAccess` (DRF's default permission class, and the first half of `IsTenantMember`,
which every tenant endpoint uses) enforces for every route what accounts/api/scopes.py
says it needs: an API token must carry the route's scope (else 403 naming it), and
auditors (read-only roles) never get a request that writes. Both checks live here only;
views keep their role and object checks.

This module imports nothing of DRF's views: DRF loads the default permission classes
while rest_framework.views itself is being imported.
"""

from rest_framework import permissions
from rest_framework.exceptions import PermissionDenied

from accounts.api import scopes
from accounts.models import ApiToken
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


def request_token(request) -> ApiToken | None:
    """The API token the request authenticated with, or None (session, forced in tests)."""
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, ApiToken) else None


def route_need(request) -> scopes.Need | None:
    match = getattr(request, "resolver_match", None)
    return scopes.need_for(match.url_name if match else None, request.method)


def check_route_access(request) -> None:
    """The token's scopes and the role's read-only-ness allow this route and method."""
    need = route_need(request)
    token = request_token(request)
    if need is None:
        if token is not None:
            # Fail closed: a route nobody placed in the scope table takes no token.
            raise PermissionDenied("This endpoint cannot be used with an API token.")
        need = scopes.Need(None, writes=request.method not in permissions.SAFE_METHODS)
    if token is not None and need.scope is not None and need.scope not in token.scopes:
        raise PermissionDenied(
            {
                "detail": f"This token lacks the '{need.scope}' scope that this request needs.",
                "required_scope": need.scope,
            }
        )
    if need.writes and need.tenant and resolve_request_tenant(request).read_only:
        raise PermissionDenied("Auditors have read-only access: they change nothing.")


class ScopedAccess(permissions.BasePermission):
    """Signed in, and the route's token scope and write rule allow the request."""

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        check_route_access(request)
        return True


class IsTenantMember(ScopedAccess):
    """ScopedAccess, and an active member of the request's tenant (or the platform superuser)."""

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        resolve_request_tenant(request)
        return True


class AccountAccess(ScopedAccess):
    """The requester's own account (me/…): ScopedAccess, and a tenant named in X-Tenant must be
    one the user is an active member of, as on every tenant route."""

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        if request.headers.get("X-Tenant"):
            resolve_request_tenant(request)
        return True
