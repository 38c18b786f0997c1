"""`GET /api/v1/runs/grid/`: flows by business date, the status of each date's latest run
and the ids of all its runs (thin: parse, call operations.grid, shape)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.base import IsTenantMember, resolve_request_tenant
from accounts.api.fields import StrictCharField
from accounts.api.pagination import Pagination
from accounts.api.query import QuerySerializer
from operations import grid
from operations.choices import RunStatus

from .serializers import MAX_ID


class GridQuerySerializer(QuerySerializer):
    """Query parameters; `from` is a Python keyword, hence get_fields."""

    to = serializers.DateField(required=False)
    flow = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        required=False,
        max_length=200,
    )
    owner = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    status = serializers.ListField(
        child=serializers.ChoiceField(choices=RunStatus.choices), required=False, max_length=8
    )

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateField(required=False)
        return fields


class GridCellSerializer(serializers.Serializer):
    date = serializers.DateField()
    status = serializers.ChoiceField(choices=RunStatus.choices, help_text="Of the latest run.")
    latest_run = serializers.IntegerField()
    runs = serializers.ListField(child=serializers.IntegerField(), help_text="Newest first.")


class GridRowSerializer(serializers.Serializer):
    flow = serializers.IntegerField(source="flow.pk")
    flow_name = StrictCharField(source="flow.name")
    owner = serializers.IntegerField(source="flow.owner_id")
    owner_name = StrictCharField(source="flow.owner.username")
    flow_status = StrictCharField(source="flow.status")
    timezone = StrictCharField(help_text="The zone business dates are read in.")
    cells = GridCellSerializer(many=True, help_text="Only the dates that have runs.")


class GridSerializer(serializers.Serializer):
    to = serializers.DateField()
    dates = serializers.ListField(child=serializers.DateField())
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = GridRowSerializer(many=True)

    def get_fields(self):
        fields = super().get_fields()
        return {"from": serializers.DateField(), **fields}


GRID_PARAMETERS = [
    OpenApiParameter("from", str, description="First business date, YYYY-MM-DD."),
    OpenApiParameter("to", str, description="Last business date (inclusive), YYYY-MM-DD."),
    OpenApiParameter("flow", int, many=True, description="Only these flows (repeat it)."),
    OpenApiParameter("owner", int, description="Only flows of this owner (user id)."),
    OpenApiParameter(
        "status",
        str,
        many=True,
        enum=RunStatus.values,
        description="Only runs in these states (repeat it); flows without one are left out.",
    ),
    OpenApiParameter("page", int),
    OpenApiParameter("page_size", int),
]


class RunGridView(APIView):
    """Each visible flow (a page of them, by name) by business date: the business time's
    date in the flow's schedule zone (UTC without a schedule). At most 366 days at once."""

    permission_classes = [permissions.IsAuthenticated, IsTenantMember]

    @extend_schema(parameters=GRID_PARAMETERS, responses=GridSerializer)
    def get(self, request):
        ctx = resolve_request_tenant(request)
        query = GridQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        start, end = grid.grid_window(params.get("from"), params.get("to"))
        statuses = params.get("status")
        flows = grid.grid_flows(
            ctx=ctx,
            start=start,
            end=end,
            flow_ids=params.get("flow"),
            owner=params.get("owner"),
            statuses=statuses,
        )
        paginator = Pagination()
        page = paginator.paginate_queryset(flows, request, view=self)
        rows = grid.grid_rows(ctx=ctx, flows=page, start=start, end=end, statuses=statuses)
        body = {
            "from": start,
            "to": end,
            "dates": grid.grid_dates(start, end),
            "count": paginator.page.paginator.count,
            "next": paginator.get_next_link(),
            "previous": paginator.get_previous_link(),
            "results": rows,
        }
        return Response(GridSerializer(body).data)
