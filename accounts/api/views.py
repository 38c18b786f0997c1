"""Thin API views for tenants, members, me and the sign-in token."""

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.api.base import AccountAccess, ScopedAccess, TenantViewSet, resolve_request_tenant
from accounts.models import Membership, Tenant

from .serializers import (
    MemberCreateSerializer,
    MembershipSerializer,
    MemberUpdateSerializer,
    MeSerializer,
    TenantDetailSerializer,
    TenantSerializer,
    TenantUpdateSerializer,
    TokenRequestSerializer,
    TokenResponseSerializer,
)


class IsSuperuser(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_superuser)


class TenantAPIViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Tenants: the platform superuser lists, creates them and sets their limits; a tenant's
    admins and auditors read their own tenant (its limits and current use)."""

    serializer_class = TenantSerializer
    permission_classes = [permissions.IsAuthenticated, ScopedAccess, IsSuperuser]
    queryset = Tenant.objects.none()
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_permissions(self):
        if self.action == "retrieve":
            return [permissions.IsAuthenticated(), ScopedAccess()]
        return super().get_permissions()

    def get_serializer_class(self):
        if self.action in ("retrieve", "partial_update"):
            return TenantDetailSerializer
        return TenantSerializer

    def get_queryset(self):
        if self.action == "retrieve":
            user = self.request.user
            if user.is_superuser:
                return selectors.tenant_list(user=user)
            # A tenant route for everyone else: a member of the request's tenant (else 403)
            # who reads its audit trail (admins, auditors; else 403) sees that tenant only.
            ctx = resolve_request_tenant(self.request)
            if not ctx.can_read_audit:
                raise PermissionDenied("Only the tenant's admins and auditors read its limits.")
            return selectors.tenant_readable(user=user).filter(pk=ctx.tenant.pk)
        return selectors.tenant_list(user=self.request.user)

    def create(self, request):
        serializer = TenantSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tenant = services.tenant_create(actor=request.user, **serializer.validated_data)
        return Response(TenantSerializer(tenant).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TenantUpdateSerializer, responses={200: TenantDetailSerializer})
    def partial_update(self, request, pk=None):
        tenant = self.get_object()
        serializer = TenantUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tenant = services.tenant_set_limits(
            tenant=tenant, actor=request.user, limits=serializer.validated_data["limits"]
        )
        return Response(TenantDetailSerializer(tenant).data)


class MemberViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Members of the request's tenant; tenant admins add and change them."""

    serializer_class = MembershipSerializer
    queryset = Membership.objects.none()
    filterset_fields = ["role", "is_active"]
    search_fields = ["user__username", "user__email"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def scoped_queryset(self):
        return selectors.membership_list(tenant=self.ctx.tenant)

    def _require_admin(self):
        if not self.ctx.is_admin:
            raise PermissionDenied("Only a tenant admin can manage members.")

    @extend_schema(request=MemberCreateSerializer, responses={201: MembershipSerializer})
    def create(self, request):
        self._require_admin()
        serializer = MemberCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.member_add(
            tenant=self.ctx.tenant, actor=request.user, **serializer.validated_data
        )
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=MemberUpdateSerializer, responses={200: MembershipSerializer})
    def partial_update(self, request, pk=None):
        membership = self.get_object()
        self._require_admin()
        serializer = MemberUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.member_update(
            membership=membership, actor=request.user, **serializer.validated_data
        )
        return Response(MembershipSerializer(membership).data)


class MeView(APIView):
    """Who am I, in which tenant, with which role."""

    permission_classes = [permissions.IsAuthenticated, AccountAccess]

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        memberships = [
            {"tenant": m.tenant.slug, "role": m.role}
            for m in selectors.active_memberships(user=request.user)
        ]
        try:
            ctx = resolve_request_tenant(request)
        except PermissionDenied:
            if request.headers.get("X-Tenant"):
                raise
            ctx = None
        body = {
            "id": request.user.id,
            "username": request.user.username,
            "tenant": {"slug": ctx.tenant.slug, "name": ctx.tenant.name} if ctx else None,
            "role": ctx.role if ctx else None,
            "memberships": memberships,
        }
        return Response(body)


class TokenView(APIView):
    """Exchange a username and password for an API token with every scope, which expires.

    Each call issues a new token (only a digest is stored, so none can be shown again);
    list and revoke them under /api/v1/me/tokens/.
    """

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "token"

    @extend_schema(request=TokenRequestSerializer, responses={200: TokenResponseSerializer})
    def post(self, request):
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(request=request._request, **serializer.validated_data)
        if user is None or not user.is_active:
            return Response(
                {"non_field_errors": ["Unable to log in with the provided credentials."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        token, key = services.token_sign_in(user=user)
        return Response({"token": key, "expires_at": token.expires_at})
