"""Lineage endpoints (thin over flows.lineage.selectors):

- `GET /api/v1/lineage/?table=<name>[&datasource=<id>]`: the nodes that read and write it;
- `GET /api/v1/flows/{id}/lineage/`: the flows upstream and downstream of a flow.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.base import IsTenantMember, resolve_request_tenant
from flows.choices import LineageAccess
from flows.lineage import selectors
from flows.selectors import flow_get

MAX_ID = 2**63 - 1


class TableQuerySerializer(serializers.Serializer):
    table = serializers.CharField(max_length=511, help_text="`name` or `schema.name`.")
    datasource = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)

    def validate_table(self, value):
        _schema, name = selectors.parse_table(value)
        if not name:
            raise serializers.ValidationError("Name a table: `name` or `schema.name`.")
        return value


class TableUseSerializer(serializers.Serializer):
    flow = serializers.IntegerField(source="flow_id")
    flow_name = serializers.CharField(source="flow.name")
    flow_status = serializers.CharField(source="flow.status")
    version = serializers.IntegerField(source="version.number")
    node = serializers.IntegerField(source="node_id")
    node_name = serializers.CharField()
    node_type = serializers.CharField()
    datasource = serializers.IntegerField(source="datasource_id", allow_null=True)
    datasource_name = serializers.CharField(source="datasource.name", default=None, allow_null=True)
    table = serializers.SerializerMethodField()

    def get_table(self, entry) -> str:
        return f"{entry.schema}.{entry.name}" if entry.schema else entry.name


class TableLineageSerializer(serializers.Serializer):
    table = serializers.CharField()
    readers = TableUseSerializer(many=True)
    writers = TableUseSerializer(many=True)


class TableLineageView(APIView):
    """Which nodes read and which write a table, in the latest published version of each
    flow you can see. Names are matched as written and in lower case; without a schema,
    in any schema."""

    permission_classes = [permissions.IsAuthenticated, IsTenantMember]

    @extend_schema(
        parameters=[
            OpenApiParameter("table", str, required=True, description="`name` or `schema.name`"),
            OpenApiParameter("datasource", int, description="Only on this data source."),
        ],
        responses=TableLineageSerializer,
    )
    def get(self, request):
        ctx = resolve_request_tenant(request)
        query = TableQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        found = selectors.table_lineage(
            ctx=ctx, table=params["table"], datasource=params.get("datasource")
        )
        return Response(TableLineageSerializer({"table": params["table"], **found}).data)


class OwnFactSerializer(serializers.Serializer):
    node = serializers.IntegerField(source="node_id")
    node_name = serializers.CharField()
    node_type = serializers.CharField()
    access = serializers.ChoiceField(choices=LineageAccess.choices)
    datasource = serializers.IntegerField(source="datasource_id", allow_null=True)
    datasource_name = serializers.CharField(source="datasource.name", default=None, allow_null=True)
    table = serializers.SerializerMethodField()
    depends_on = serializers.IntegerField(allow_null=True)
    detail = serializers.CharField()

    def get_table(self, entry) -> str | None:
        if not entry.name:
            return None
        return f"{entry.schema}.{entry.name}" if entry.schema else entry.name


class LineageFlowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    version = serializers.IntegerField(allow_null=True)
    upstream = serializers.BooleanField(help_text="Feeds the flow (directly or not).")
    downstream = serializers.BooleanField(help_text="Fed by the flow (directly or not).")


class LineageEdgeSerializer(serializers.Serializer):
    upstream = serializers.IntegerField()
    downstream = serializers.IntegerField()
    tables = serializers.ListField(child=serializers.CharField())
    dependency = serializers.BooleanField(help_text="The downstream flow waits for it.")


class FlowLineageSerializer(serializers.Serializer):
    flow = serializers.IntegerField()
    flows = LineageFlowSerializer(many=True)
    edges = LineageEdgeSerializer(many=True)
    reads = OwnFactSerializer(many=True)
    writes = OwnFactSerializer(many=True)
    depends = OwnFactSerializer(many=True)
    problems = OwnFactSerializer(many=True)


class FlowLineageView(APIView):
    """The flows upstream and downstream of this one (transitively) through the tables they
    write and read on the same data source and their dependency checks, with the links
    between them; and this flow's own tables. Latest published versions, visible flows."""

    permission_classes = [permissions.IsAuthenticated, IsTenantMember]

    @extend_schema(responses=FlowLineageSerializer)
    def get(self, request, flow_id):
        ctx = resolve_request_tenant(request)
        flow = flow_get(ctx=ctx, flow_id=flow_id)
        found = selectors.flow_lineage(ctx=ctx, flow=flow)
        own = {access: [] for access in LineageAccess.values}
        for entry in found.own:
            own[entry.access].append(entry)
        body = {
            "flow": flow.pk,
            "flows": [
                {
                    "id": f.pk,
                    "name": f.name,
                    "status": f.status,
                    "version": f.published_version.number if f.published_version else None,
                    "upstream": f.pk in found.upstream,
                    "downstream": f.pk in found.downstream,
                }
                for f in found.flows
            ],
            "edges": [
                {
                    "upstream": up,
                    "downstream": down,
                    "tables": sorted(edge["tables"]),
                    "dependency": edge["dependency"],
                }
                for (up, down), edge in sorted(found.edges.items())
            ],
            "reads": own[LineageAccess.READ],
            "writes": own[LineageAccess.WRITE],
            "depends": own[LineageAccess.DEPENDS],
            "problems": own[LineageAccess.UNPARSED],
        }
        return Response(FlowLineageSerializer(body).data)
