"""Data source API: CRUD, a connection test and the audit trail; the password is write-only."""

from django.db.models import BooleanField, ExpressionWrapper, Q
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from accounts.api.base import TenantViewSet
from accounts.api.pagination import Pagination

from .. import datasources
from ..choices import Engine
from ..models import DataSource
from ..timeline import timeline_entries
from .serializers import HistoryEntrySerializer


class DataSourceSerializer(serializers.ModelSerializer):
    """A data source as the API shows it: never the password, only whether one is set."""

    engine = serializers.ChoiceField(choices=Engine.choices)
    password = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=datasources.MAX_PASSWORD_LENGTH,
        style={"input_type": "password"},
        help_text="Write-only. Omit to keep the stored password; an empty text clears it.",
    )
    has_password = serializers.SerializerMethodField()
    options = serializers.JSONField(required=False)

    class Meta:
        model = DataSource
        fields = [
            "id",
            "name",
            "engine",
            "host",
            "port",
            "database",
            "username",
            "password",
            "has_password",
            "options",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "has_password", "created_at", "updated_at"]
        # The service checks uniqueness per tenant and names the field.
        extra_kwargs = {"name": {"validators": []}, "port": {"max_value": 65535, "min_value": 1}}

    def get_has_password(self, obj) -> bool:
        flag = getattr(obj, "has_password", None)
        if flag is None:
            return bool(obj.password_encrypted)
        return bool(flag)


class DataSourceTestSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    error = serializers.CharField(required=False)


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
        return datasources.data_source_list(ctx=self.ctx).annotate(has_password=has_password)

    def _require_manager(self):
        if not datasources.can_manage(self.ctx):
            raise PermissionDenied("Only tenant admins and DBAs can manage data sources.")

    def create(self, request):
        self._require_manager()
        serializer = DataSourceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        ds = datasources.data_source_create(ctx=self.ctx, **serializer.validated_data)
        return Response(DataSourceSerializer(ds).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        ds = self.get_object()
        self._require_manager()
        serializer = DataSourceSerializer(ds, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        ds = datasources.data_source_update(
            ctx=self.ctx, datasource=ds, **serializer.validated_data
        )
        return Response(DataSourceSerializer(ds).data)

    def destroy(self, request, pk=None):
        ds = self.get_object()
        self._require_manager()
        datasources.data_source_delete(ctx=self.ctx, datasource=ds)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: DataSourceTestSerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Connect and run SELECT 1; the error, if any, never contains the password."""
        ds = self.get_object()
        return Response(datasources.data_source_test(datasource=ds))

    @extend_schema(responses={200: HistoryEntrySerializer(many=True)})
    @action(detail=True, methods=["get"], pagination_class=Pagination, filter_backends=[])
    def history(self, request, pk=None):
        """Who changed what and when (the password is never recorded)."""
        ds = self.get_object()
        rows, sources = datasources.data_source_history(datasource=ds)
        paginator = Pagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        entries = timeline_entries(list(page), sources)
        return paginator.get_paginated_response(HistoryEntrySerializer(entries, many=True).data)
