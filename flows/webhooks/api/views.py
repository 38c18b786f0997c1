"""/api/v1/webhooks/: tenant admins subscribe URLs to events (auditors read them);
/webhooks/{id}/deliveries/ lists every delivery with its attempts, and one can be sent again."""

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from accounts.api.base import TenantViewSet
from accounts.api.pagination import Pagination
from flows.models import WebhookDelivery, WebhookSubscription

from .. import selectors, services
from .serializers import (
    WebhookCreatedSerializer,
    WebhookDeliverySerializer,
    WebhookSerializer,
    WebhookWriteSerializer,
)


def _require_manager(ctx) -> None:
    if not selectors.can_manage(ctx):
        raise PermissionDenied("Only a tenant admin can manage webhooks.")


class WebhookViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Webhook subscriptions of the tenant (admins manage, auditors read)."""

    serializer_class = WebhookSerializer
    queryset = WebhookSubscription.objects.none()
    filter_backends: list = []
    lookup_value_regex = r"[0-9]+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def scoped_queryset(self):
        if not selectors.can_read(self.ctx):
            raise PermissionDenied("Only a tenant admin can manage webhooks.")
        return selectors.webhook_list(ctx=self.ctx)

    @extend_schema(request=WebhookWriteSerializer, responses={201: WebhookCreatedSerializer})
    def create(self, request):
        _require_manager(self.ctx)
        body = WebhookWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        data.pop("is_active", None)
        subscription, secret = services.webhook_create(
            tenant=self.ctx.tenant, user=request.user, **data
        )
        shown = WebhookCreatedSerializer(subscription).data
        shown["secret"] = secret
        return Response(shown, status=status.HTTP_201_CREATED)

    @extend_schema(request=WebhookWriteSerializer, responses={200: WebhookSerializer})
    def partial_update(self, request, pk=None):
        subscription = self.get_object()
        _require_manager(self.ctx)
        body = WebhookWriteSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        subscription = services.webhook_update(
            subscription=subscription, user=request.user, **body.validated_data
        )
        return Response(WebhookSerializer(subscription).data)

    def destroy(self, request, pk=None):
        subscription = self.get_object()
        _require_manager(self.ctx)
        services.webhook_delete(subscription=subscription, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: WebhookDeliverySerializer(many=True)})
    @action(detail=True, methods=["get"], pagination_class=Pagination)
    def deliveries(self, request, pk=None):
        """Every delivery of the subscription, newest first, with each attempt."""
        rows = selectors.delivery_list(subscription=self.get_object())
        paginator = Pagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)

    @extend_schema(
        request=None,
        responses={
            202: WebhookDeliverySerializer,
            404: OpenApiResponse(description="No such delivery."),
        },
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"deliveries/(?P<delivery_id>[0-9]+)/redeliver",
        url_name="redeliver",
    )
    def redeliver(self, request, pk=None, delivery_id=None):
        """Send a delivery again (same id and body; its attempts go on counting)."""
        subscription = self.get_object()
        _require_manager(self.ctx)
        delivery = WebhookDelivery.objects.filter(
            subscription=subscription, tenant=self.ctx.tenant, pk=int(delivery_id)
        ).first()
        if delivery is None:
            raise Http404("No such delivery.")
        delivery = services.delivery_resend(delivery=delivery)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
