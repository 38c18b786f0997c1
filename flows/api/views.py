"""Thin API views for flows: parse, call a selector or service, shape the answer."""

import django_filters
from django.core.exceptions import ValidationError
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from accounts.api.base import TenantViewSet
from accounts.api.pagination import Pagination
from accounts.api.parsers import FormParser, JSONParser, MultiPartParser
from accounts.api.query import IdFilter
from flows import exporting, permissions, selectors, services
from flows.choices import FlowStatus
from flows.models import Edge, FlowVersion, TaskFlow, TaskNode
from flows.timeline import timeline_entries

from . import serializers as s
from .renderers import DocumentJSONRenderer, TextYAMLParser, XYAMLParser, YAMLParser, YAMLRenderer

PROBLEMS = OpenApiResponse(
    s.ProblemsSerializer, description="Every problem, keyed by node name or 'flow'."
)


class FlowFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")
    scenario = django_filters.CharFilter(field_name="business_scenario", lookup_expr="iexact")
    business_scenario = django_filters.CharFilter(lookup_expr="iexact")
    owner = IdFilter(field_name="owner_id")
    status = django_filters.ChoiceFilter(choices=FlowStatus.choices)
    is_public = django_filters.BooleanFilter()  # true or false (accounts/api/query.py)

    class Meta:
        model = TaskFlow
        fields = ["name", "scenario", "business_scenario", "owner", "status", "is_public"]


class FlowProblemsMixin:
    """A refused publish / graph / import answers 400 {"problems": {node: [messages]}}."""

    def handle_exception(self, exc):
        if isinstance(exc, services.FlowProblems):
            return Response({"problems": exc.problems}, status=status.HTTP_400_BAD_REQUEST)
        return super().handle_exception(exc)


class FlowScopedMixin:
    """Sub-resources of /flows/{flow_id}/: every access goes through selectors.flow_get."""

    def flow(self, action: str = permissions.VIEW) -> TaskFlow:
        return selectors.flow_get(ctx=self.ctx, flow_id=self.kwargs["flow_id"], action=action)


class FlowViewSet(FlowProblemsMixin, mixins.ListModelMixin, TenantViewSet):
    """Task flows of the request's tenant, as the permission table allows."""

    queryset = TaskFlow.objects.none()
    serializer_class = s.FlowSerializer
    filterset_class = FlowFilter
    search_fields = ["name", "description", "business_scenario"]
    ordering_fields = ["id", "name", "created_at", "updated_at", "status"]
    lookup_value_regex = r"[0-9]+"

    def scoped_queryset(self):
        return selectors.flow_list_with_stakeholders(ctx=self.ctx)

    def get_flow(self, action: str = permissions.VIEW) -> TaskFlow:
        return selectors.flow_get(ctx=self.ctx, flow_id=self.kwargs["pk"], action=action)

    def _flow_response(self, flow, code=status.HTTP_200_OK):
        return Response(s.FlowSerializer(flow).data, status=code)

    def retrieve(self, request, pk=None):
        return self._flow_response(self.get_flow())

    @extend_schema(request=s.FlowWriteSerializer, responses={201: s.FlowSerializer})
    def create(self, request):
        body = s.FlowWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        flow = services.flow_create(
            tenant=self.ctx.tenant, user=request.user, **body.validated_data
        )
        return self._flow_response(flow, status.HTTP_201_CREATED)

    @extend_schema(request=s.FlowWriteSerializer, responses={200: s.FlowSerializer})
    def partial_update(self, request, pk=None):
        flow = self.get_flow(permissions.EDIT)
        body = s.FlowWriteSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        flow = services.flow_update(flow=flow, user=request.user, **body.validated_data)
        return self._flow_response(flow)

    def destroy(self, request, pk=None):
        services.flow_delete(flow=self.get_flow(permissions.EDIT), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    # ------------------------------------------------------------------ graph

    def _graph(self, flow, keys=None):
        graph = selectors.flow_graph(flow=flow)
        data = s.GraphSerializer({**graph, "keys": keys or {}}).data
        return Response(data)

    @extend_schema(methods=["GET"], request=None, responses={200: s.GraphSerializer})
    @extend_schema(
        methods=["PUT"],
        request=s.GraphInSerializer,
        responses={200: s.GraphSerializer, 400: PROBLEMS},
    )
    @action(detail=True, methods=["get", "put"])
    def graph(self, request, pk=None):
        if request.method == "GET":
            return self._graph(self.get_flow())
        flow = self.get_flow(permissions.EDIT)
        body = s.GraphInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        flow, keys = services.graph_replace(
            flow=flow,
            user=request.user,
            nodes=body.service_nodes(),
            edges=body.validated_data["edges"],
        )
        return self._graph(flow, keys)

    # ------------------------------------------------------------------ people

    @extend_schema(methods=["GET"], request=None, responses={200: s.StakeholdersSerializer})
    @extend_schema(
        methods=["PUT"], request=s.StakeholdersSerializer, responses={200: s.StakeholdersSerializer}
    )
    @action(detail=True, methods=["get", "put"])
    def stakeholders(self, request, pk=None):
        if request.method == "GET":
            return Response({"users": selectors.stakeholders_of(self.get_flow())})
        flow = self.get_flow(permissions.MANAGE_STAKEHOLDERS)
        body = s.StakeholdersSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        users = services.flow_stakeholders_set(
            flow=flow, user=request.user, users=body.validated_data["users"]
        )
        return Response({"users": users})

    @extend_schema(request=s.OwnerSerializer, responses={200: s.FlowSerializer})
    @action(detail=True, methods=["post"])
    def owner(self, request, pk=None):
        flow = self.get_flow(permissions.CHANGE_OWNER)
        body = s.OwnerSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        flow = services.flow_owner_change(
            flow=flow, user=request.user, owner=body.validated_data["owner"]
        )
        return self._flow_response(flow)

    # ------------------------------------------------------------------ lifecycle

    @extend_schema(
        request=s.PublishSerializer, responses={200: s.PublishResultSerializer, 400: PROBLEMS}
    )
    @action(detail=True, methods=["post"])
    def publish(self, request, pk=None):
        flow = self.get_flow(permissions.PUBLISH)
        body = s.PublishSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        version = services.flow_publish(
            flow=flow, user=request.user, comment=body.validated_data.get("comment", "")
        )
        return Response({"version": version.number})

    @extend_schema(request=None, responses={200: s.FlowSerializer})
    @action(detail=True, methods=["post"])
    def unpublish(self, request, pk=None):
        return self._flow_response(
            services.flow_unpublish(flow=self.get_flow(permissions.PUBLISH), user=request.user)
        )

    @extend_schema(request=None, responses={200: s.FlowSerializer})
    @action(detail=True, methods=["post"])
    def freeze(self, request, pk=None):
        return self._flow_response(
            services.flow_freeze(flow=self.get_flow(permissions.PUBLISH), user=request.user)
        )

    @extend_schema(request=None, responses={200: s.FlowSerializer})
    @action(detail=True, methods=["post"])
    def unfreeze(self, request, pk=None):
        return self._flow_response(
            services.flow_unfreeze(flow=self.get_flow(permissions.PUBLISH), user=request.user)
        )

    # ------------------------------------------------------------------ audit

    @extend_schema(
        parameters=[s.HistoryQuerySerializer],
        responses={200: s.HistoryEntrySerializer(many=True)},
    )
    @action(detail=True, methods=["get"], pagination_class=Pagination, filter_backends=[])
    def history(self, request, pk=None):
        flow = self.get_flow()
        query = s.HistoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        rows, sources = selectors.flow_history(
            flow=flow, user_id=q.get("user"), since=q.get("since"), until=q.get("until")
        )
        return paginated_timeline(self, rows, sources)

    # ------------------------------------------------------------------ variables, code

    @extend_schema(request=s.PreviewInSerializer, responses={200: s.PreviewSerializer})
    @action(detail=True, methods=["post"])
    def preview(self, request, pk=None):
        flow = self.get_flow()
        body = s.PreviewInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = selectors.flow_preview(
            flow=flow,
            business_time=body.validated_data["business_time"],
            node_id=body.validated_data.get("node"),
        )
        return Response(s.PreviewSerializer(result).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=["yaml", "json"], description="Default yaml.")
        ],
        responses={
            # The same document either way; YAML is only its spelling.
            (200, "application/yaml"): s.ExportSerializer,
            (200, "application/json"): s.ExportSerializer,
        },
    )
    @action(detail=True, methods=["get"], renderer_classes=[YAMLRenderer, DocumentJSONRenderer])
    def export(self, request, pk=None):
        flow = self.get_flow()
        document = selectors.flow_export(flow=flow)
        fmt = getattr(request.accepted_renderer, "format", "yaml")
        response = Response(document)
        response["Content-Disposition"] = f'attachment; filename="flow-{flow.pk}.{fmt}"'
        return response

    @extend_schema(
        request={
            "application/json": s.ImportSerializer,
            "application/yaml": OpenApiTypes.STR,
            "multipart/form-data": s.ImportSerializer,
        },
        parameters=[
            OpenApiParameter(
                "name", str, description="Name of the new flow (overrides the document's)."
            )
        ],
        responses={201: s.FlowSerializer, 400: PROBLEMS},
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[
            JSONParser,
            YAMLParser,
            TextYAMLParser,
            XYAMLParser,
            MultiPartParser,
            FormParser,
        ],
    )
    def import_(self, request):
        data = request.data
        name = request.query_params.get("name")
        try:
            if hasattr(data, "get") and "document" in data and "nodes" not in data:
                raw = data["document"]
                raw = raw.read() if hasattr(raw, "read") else raw
                if isinstance(raw, dict):  # the document as an object rather than as text
                    document = dict(raw)
                elif isinstance(raw, str | bytes):
                    document = exporting.parse(raw)
                else:
                    raise exporting.DocumentError(
                        ["document: the flow document as YAML or JSON text, or as an object"]
                    )
                name = data.get("name") or name
            elif isinstance(data, dict):
                document = dict(data)
            else:
                raise exporting.DocumentError(
                    ["document: send the flow document as the body or in `document`"]
                )
        except exporting.DocumentError as exc:
            raise ValidationError({"document": exc.errors}) from None
        if name is not None and (not isinstance(name, str) or len(name) > 128):
            raise ValidationError({"name": ["At most 128 characters."]})
        flow = services.flow_import(
            tenant=self.ctx.tenant, user=request.user, document=document, name=name
        )
        return self._flow_response(flow, status.HTTP_201_CREATED)


def paginated_timeline(view, rows, sources):
    paginator = Pagination()
    page = paginator.paginate_queryset(rows, view.request, view=view)
    entries = timeline_entries(list(page), sources)
    return paginator.get_paginated_response(s.HistoryEntrySerializer(entries, many=True).data)


class NodeViewSet(FlowScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Nodes of a flow's editing version."""

    queryset = TaskNode.objects.none()
    serializer_class = s.NodeSerializer
    filter_backends: list = []

    def scoped_queryset(self):
        return selectors.node_list(ctx=self.ctx, flow_id=self.kwargs["flow_id"]).order_by("id")

    def _node(self, action: str):
        flow = self.flow(action)
        node = (
            flow.nodes.filter(pk=self.kwargs["pk"]).first()
            if str(self.kwargs["pk"]).isdigit()
            else None
        )
        if node is None:
            raise Http404("No such node.")
        return node

    @extend_schema(request=s.NodeWriteSerializer, responses={201: s.NodeSerializer})
    def create(self, request, flow_id=None):
        flow = self.flow(permissions.EDIT)
        body = s.NodeWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        node = services.node_create(flow=flow, user=request.user, **body.service_fields())
        return Response(s.NodeSerializer(node).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.NodeWriteSerializer, responses={200: s.NodeSerializer})
    def partial_update(self, request, flow_id=None, pk=None):
        node = self._node(permissions.EDIT)
        body = s.NodeWriteSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        node = services.node_update(node=node, user=request.user, **body.service_fields())
        return Response(s.NodeSerializer(node).data)

    def destroy(self, request, flow_id=None, pk=None):
        services.node_delete(node=self._node(permissions.EDIT), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EdgeViewSet(FlowScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Edges of a flow's editing version (create and delete; no update)."""

    queryset = Edge.objects.none()
    serializer_class = s.EdgeSerializer
    filter_backends: list = []

    def scoped_queryset(self):
        return selectors.edge_list(ctx=self.ctx, flow_id=self.kwargs["flow_id"]).order_by("id")

    @extend_schema(request=s.EdgeWriteSerializer, responses={201: s.EdgeSerializer})
    def create(self, request, flow_id=None):
        flow = self.flow(permissions.EDIT)
        body = s.EdgeWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        edge = services.edge_create(flow=flow, user=request.user, **body.validated_data)
        return Response(s.EdgeSerializer(edge).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, flow_id=None, pk=None):
        flow = self.flow(permissions.EDIT)
        edge = flow.edges.filter(pk=pk).first() if str(pk).isdigit() else None
        if edge is None:
            raise Http404("No such edge.")
        services.edge_delete(edge=edge, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class FlowVersionViewSet(FlowScopedMixin, mixins.ListModelMixin, TenantViewSet):
    """Published versions of a flow (immutable), and their differences."""

    queryset = FlowVersion.objects.none()
    serializer_class = s.FlowVersionSerializer
    filter_backends: list = []

    def scoped_queryset(self):
        return selectors.version_list(ctx=self.ctx, flow_id=self.kwargs["flow_id"])

    @extend_schema(responses={200: s.FlowVersionDetailSerializer})
    def retrieve(self, request, flow_id=None, number=None):
        version = selectors.version_get(ctx=self.ctx, flow_id=flow_id, number=number)
        return Response(s.FlowVersionDetailSerializer(version).data)

    @extend_schema(
        parameters=[s.VersionDiffQuerySerializer], responses={200: s.VersionDiffSerializer}
    )
    def diff(self, request, flow_id=None, number=None):
        query = s.VersionDiffQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        against = query.validated_data["against"]
        return Response(
            selectors.version_diff(ctx=self.ctx, flow_id=flow_id, number=number, against=against)
        )


class AuditViewSet(TenantViewSet):
    """The tenant-wide audit trail (tenant admins and auditors)."""

    queryset = TaskFlow.objects.none()
    serializer_class = s.HistoryEntrySerializer
    filter_backends: list = []
    pagination_class = Pagination

    def scoped_queryset(self):
        # The timeline is not a model queryset; list() reads it from selectors.tenant_audit.
        if not self.ctx.can_read_audit:
            raise PermissionDenied("Only tenant admins and auditors read the tenant's audit trail.")
        return TaskFlow.objects.none()

    @extend_schema(
        parameters=[s.AuditQuerySerializer], responses={200: s.HistoryEntrySerializer(many=True)}
    )
    def list(self, request):
        self.scoped_queryset()  # a member is refused (403) before their query is read
        query = s.AuditQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        types = q.get("object_type")
        rows, sources = selectors.tenant_audit(
            ctx=self.ctx,
            user_id=q.get("user"),
            since=q.get("since"),
            until=q.get("until"),
            object_types=types,
            flow_id=q.get("flow"),
        )
        return paginated_timeline(self, rows, sources)
