"""Data source API: CRUD, a connection test and the audit trail; the password is write-only."""

from django.db.models import BooleanField, ExpressionWrapper, Q
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from accounts.api.base import TenantViewSet
from accounts.api.pagination import Pagination
from flows.api.serializers import HistoryEntrySerializer
from flows.models import DataSource
from flows.timeline import timeline_entries

from .. import selectors, services
from .serializers import DataSourceSerializer, DataSourceTestSerializer


class DataSourceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Every member lists and reads data sources; tenant admins and DBAs manage them."""

    serializer_class = DataSourceSerializer
    queryset = DataSource.objects.none()
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    filterset_fields = ["engine"]
    search_fields = ["name", "host", "database"]
    ordering_fields = ["name", "id", "created_at"]
    ordering = ["name"]

    def scoped_queryset(self):
        has_password = ExpressionWrapper(~Q(password_encrypted=""), output_field=BooleanField())
        return selectors.data_source_list(ctx=self.ctx).annotate(has_password=has_password)

    def _require_manager(self):
        if not selectors.can_manage(self.ctx):
            raise PermissionDenied("Only tenant admins and DBAs can manage data sources.")

    def create(self, request):
        self._require_manager()
        serializer = DataSourceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        ds = services.data_source_create(ctx=self.ctx, **serializer.validated_data)
        return Response(DataSourceSerializer(ds).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        ds = self.get_object()
        self._require_manager()
        serializer = DataSourceSerializer(ds, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        ds = services.data_source_update(ctx=self.ctx, datasource=ds, **serializer.validated_data)
        return Response(DataSourceSerializer(ds).data)

    def destroy(self, request, pk=None):
        ds = self.get_object()
        self._require_manager()
        services.data_source_delete(ctx=self.ctx, datasource=ds)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: DataSourceTestSerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Connect and run SELECT 1; the error, if any, never contains the password."""
        ds = self.get_object()
        return Response(services.data_source_test(datasource=ds))

    @extend_schema(responses={200: HistoryEntrySerializer(many=True)})
    @action(detail=True, methods=["get"], pagination_class=Pagination, filter_backends=[])
    def history(self, request, pk=None):
        """Who changed what and when (the password is never recorded)."""
        ds = self.get_object()
        rows, sources = selectors.data_source_history(datasource=ds)
        paginator = Pagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        entries = timeline_entries(list(page), sources)
        return paginator.get_paginated_response(HistoryEntrySerializer(entries, many=True).data)
