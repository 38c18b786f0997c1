"""Thin API views for one's password and tokens, and for service accounts and their tokens.

`/api/v1/me/password/` and `/api/v1/me/tokens/` act on the requester's own account;
`/api/v1/service-accounts/` and `…/{id}/tokens/` are the tenant admin's (auditors read).
A token's secret is in the answer that issues it and nowhere else, ever.
"""

from django.contrib.auth import update_session_auth_hash
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.api.base import AccountAccess, TenantViewSet, request_token
from accounts.models import ApiToken, ServiceAccount

from .serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenCreateSerializer,
    ApiTokenSerializer,
    PasswordChangedSerializer,
    PasswordChangeSerializer,
    ServiceAccountCreateSerializer,
    ServiceAccountSerializer,
    ServiceAccountUpdateSerializer,
)


def _created(token: ApiToken, key: str) -> Response:
    data = ApiTokenCreatedSerializer(token).data
    data["token"] = key
    return Response(data, status=status.HTTP_201_CREATED)


class PasswordChangeView(APIView):
    """Change your own password; every API token of yours is revoked (sign in again)."""

    permission_classes = [permissions.IsAuthenticated, AccountAccess]

    @extend_schema(request=PasswordChangeSerializer, responses={200: PasswordChangedSerializer})
    def post(self, request):
        body = PasswordChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        revoked = services.user_password_change(user=request.user, **body.validated_data)
        if request_token(request) is None:
            # A browser session stays signed in (Django would end it otherwise).
            update_session_auth_hash(request._request, request.user)
        return Response(
            {"detail": "Your password was changed.", "tokens_revoked": revoked},
            status=status.HTTP_200_OK,
        )


class MyTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Your own API tokens: list (never the secret), issue (shown once), revoke."""

    serializer_class = ApiTokenSerializer
    permission_classes = [permissions.IsAuthenticated, AccountAccess]
    queryset = ApiToken.objects.none()
    filter_backends: list = []
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return selectors.token_list(user=self.request.user)

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: ApiTokenCreatedSerializer})
    def create(self, request):
        body = ApiTokenCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        token, key = services.token_issue(
            user=request.user, actor=request.user, via=request_token(request), **body.validated_data
        )
        return _created(token, key)

    @extend_schema(request=None, responses={204: OpenApiResponse(description="Revoked.")})
    def destroy(self, request, pk=None):
        services.token_revoke(token=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ServiceAccountViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Service accounts of the tenant: API-only accounts with a role (tenant admins manage)."""

    serializer_class = ServiceAccountSerializer
    queryset = ServiceAccount.objects.none()
    filter_backends: list = []
    lookup_value_regex = r"[0-9]+"
    http_method_names = ["get", "post", "patch", "head", "options"]

    def scoped_queryset(self):
        require_admin(self.ctx, write=self.request.method not in permissions.SAFE_METHODS)
        return selectors.service_account_list(tenant=self.ctx.tenant)

    @extend_schema(
        request=ServiceAccountCreateSerializer, responses={201: ServiceAccountSerializer}
    )
    def create(self, request):
        require_admin(self.ctx, write=True)
        body = ServiceAccountCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        account = services.service_account_create(
            tenant=self.ctx.tenant, actor=request.user, **body.validated_data
        )
        return Response(self._shown(account.pk), status=status.HTTP_201_CREATED)

    @extend_schema(
        request=ServiceAccountUpdateSerializer, responses={200: ServiceAccountSerializer}
    )
    def partial_update(self, request, pk=None):
        account = self.get_object()
        body = ServiceAccountUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.service_account_update(
            service_account=account, actor=request.user, **body.validated_data
        )
        return Response(self._shown(account.pk))

    def _shown(self, pk: int) -> dict:
        return ServiceAccountSerializer(self.get_queryset().get(pk=pk)).data


def require_admin(ctx, *, write: bool) -> None:
    """Tenant admins manage service accounts; auditors read them too."""
    if ctx.is_admin or (not write and ctx.can_read_audit):
        return
    raise PermissionDenied("Only a tenant admin can manage service accounts.")


class ServiceAccountTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """A service account's tokens: issued by tenant admins (shown once), listed, revoked."""

    serializer_class = ApiTokenSerializer
    queryset = ApiToken.objects.none()
    filter_backends: list = []

    def account(self) -> ServiceAccount:
        require_admin(self.ctx, write=self.request.method not in permissions.SAFE_METHODS)
        pk = self.kwargs["service_account_id"]
        account = selectors.service_account_list(tenant=self.ctx.tenant).filter(pk=pk).first()
        if account is None:
            raise Http404("No such service account.")
        return account

    def scoped_queryset(self):
        return selectors.service_account_tokens(account=self.account())

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: ApiTokenCreatedSerializer})
    def create(self, request, service_account_id=None):
        account = self.account()
        body = ApiTokenCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if not account.is_active:
            raise PermissionDenied("This service account is deactivated: reactivate it first.")
        token, key = services.token_issue(
            user=account.user, actor=request.user, via=request_token(request), **body.validated_data
        )
        return _created(token, key)

    @extend_schema(request=None, responses={204: OpenApiResponse(description="Revoked.")})
    def destroy(self, request, service_account_id=None, pk=None):
        services.token_revoke(token=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
