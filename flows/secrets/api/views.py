"""/api/v1/secrets/: names and scopes for every member, writes for admins and DBAs;
the value is write-only and no response ever holds it."""

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from accounts.api.base import TenantViewSet
from accounts.api.pagination import Pagination
from accounts.api.query import IdFilter
from flows.api.serializers import HistoryEntrySerializer
from flows.models import Secret
from flows.timeline import timeline_entries

from .. import selectors, services
from .serializers import SecretSerializer


class SecretFilter(django_filters.FilterSet):
    # By id (never a choice of flows): another tenant's flow id answers like a missing one.
    flow = IdFilter(field_name="flow_id")
    tenant_wide = django_filters.BooleanFilter(field_name="flow", lookup_expr="isnull")
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Secret
        fields = ["flow", "tenant_wide", "name"]


class SecretViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Every member lists the secrets they may reference; tenant admins and DBAs manage them."""

    serializer_class = SecretSerializer
    queryset = Secret.objects.none()
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    filterset_class = SecretFilter
    ordering_fields = ["name", "id", "created_at"]
    ordering = ["name", "id"]

    def scoped_queryset(self):
        return selectors.secret_list(ctx=self.ctx)

    def _require_manager(self):
        if not selectors.can_manage(self.ctx):
            raise PermissionDenied("Only tenant admins and DBAs can manage secrets.")

    def create(self, request):
        self._require_manager()
        body = SecretSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        secret = services.secret_create(ctx=self.ctx, **body.service_fields())
        return Response(SecretSerializer(secret).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        secret = self.get_object()
        self._require_manager()
        body = SecretSerializer(secret, data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        secret = services.secret_update(ctx=self.ctx, secret=secret, **body.service_fields())
        return Response(SecretSerializer(secret).data)

    def destroy(self, request, pk=None):
        secret = self.get_object()
        self._require_manager()
        services.secret_delete(ctx=self.ctx, secret=secret)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: HistoryEntrySerializer(many=True)})
    @action(detail=True, methods=["get"], pagination_class=Pagination, filter_backends=[])
    def history(self, request, pk=None):
        """Who created, renamed, changed or deleted it, and when (never the value)."""
        secret = self.get_object()
        rows, sources = selectors.secret_history(secret=secret)
        paginator = Pagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        entries = timeline_entries(list(page), sources)
        return paginator.get_paginated_response(HistoryEntrySerializer(entries, many=True).data)
