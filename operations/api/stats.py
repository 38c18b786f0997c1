"""`GET /api/v1/flows/{id}/stats/?last=N`: duration trends of a flow (thin over operations.stats)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.base import IsTenantMember, resolve_request_tenant
from accounts.api.fields import StrictCharField
from accounts.api.query import QuerySerializer
from flows.selectors import flow_get
from operations import stats
from operations.choices import RunMode


class StatsQuerySerializer(QuerySerializer):
    last = serializers.IntegerField(
        required=False, min_value=1, max_value=stats.MAX_LAST, default=stats.DEFAULT_LAST
    )


class StatsRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    mode = serializers.ChoiceField(choices=RunMode.choices)
    business_time = serializers.DateTimeField()
    started_at = serializers.DateTimeField()
    duration_s = serializers.FloatField()
    flagged = serializers.BooleanField()


class NodeDurationSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    duration_s = serializers.FloatField()


class NodeStatsSerializer(serializers.Serializer):
    node = serializers.IntegerField()
    node_name = StrictCharField()
    node_type = StrictCharField()
    count = serializers.IntegerField()
    p50_s = serializers.FloatField(allow_null=True)
    p90_s = serializers.FloatField(allow_null=True)
    durations = NodeDurationSerializer(many=True, help_text="Oldest first.")


class SlowNodeSerializer(serializers.Serializer):
    node = serializers.IntegerField()
    node_name = StrictCharField()
    duration_s = serializers.FloatField()
    p90_before_s = serializers.FloatField()


class FlaggedRunSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    duration_s = serializers.FloatField()
    p90_before_s = serializers.FloatField()
    slow_nodes = SlowNodeSerializer(many=True)


class DurationSummarySerializer(serializers.Serializer):
    count = serializers.IntegerField()
    p50_s = serializers.FloatField(allow_null=True)
    p90_s = serializers.FloatField(allow_null=True)


class FlowStatsSerializer(serializers.Serializer):
    flow = serializers.IntegerField()
    last = serializers.IntegerField()
    runs = StatsRunSerializer(many=True, help_text="The last successful runs, oldest first.")
    duration = DurationSummarySerializer()
    nodes = NodeStatsSerializer(many=True)
    flagged = FlaggedRunSerializer(many=True)
    min_history = serializers.IntegerField()
    min_excess_s = serializers.FloatField()


class FlowStatsView(APIView):
    """Each node's duration over the flow's last N successful runs (p50, p90; dry runs left
    out) and the runs that took more than twice the p90 of the runs before them."""

    permission_classes = [permissions.IsAuthenticated, IsTenantMember]

    @extend_schema(
        parameters=[OpenApiParameter("last", int, description="Runs (1–200, default 30).")],
        responses=FlowStatsSerializer,
    )
    def get(self, request, flow_id):
        ctx = resolve_request_tenant(request)
        flow = flow_get(ctx=ctx, flow_id=flow_id)
        query = StatsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        body = stats.flow_stats(flow=flow, last=query.validated_data["last"])
        return Response(FlowStatsSerializer(body).data)
