"""Lineage endpoints (thin over flows.lineage.selectors):

- `GET /api/v1/lineage/?table=<name>[&datasource=<id>]`: the nodes that read and write it;
- `GET /api/v1/flows/{id}/lineage/`: the flows upstream and downstream of a flow.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.base import IsTenantMember, resolve_request_tenant
from flows.choices import LineageAccess
from flows.lineage import selectors
from flows.selectors import flow_get

from .serializers import FlowLineageSerializer, TableLineageSerializer, TableQuerySerializer


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
