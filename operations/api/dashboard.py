"""`GET /api/v1/dashboard/`: the tenant's figures as the product rules count them."""

from django.db.models import Count, F
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.base import IsTenantMember, resolve_request_tenant
from accounts.api.query import QuerySerializer
from operations.choices import RunStatus
from operations.dashboard import dashboard_runs, dashboard_stats


class DashboardQuery(QuerySerializer):
    days = serializers.IntegerField(min_value=1, max_value=90, default=7)


class DashboardView(APIView):
    """Flows and runs by status (today and over `days` days), runs per day, failing flows,
    durations and recent failures; public flows count only for their owner."""

    permission_classes = [permissions.IsAuthenticated, IsTenantMember]

    @extend_schema(
        parameters=[OpenApiParameter("days", int, description="Period in days (1–90, default 7).")],
        responses=inline_serializer(
            "Dashboard",
            {
                "flows": serializers.DictField(child=serializers.IntegerField()),
                "runs_today": serializers.DictField(child=serializers.IntegerField()),
                "runs_period": serializers.DictField(child=serializers.IntegerField()),
                "days": serializers.IntegerField(),
                "per_day": serializers.ListField(child=serializers.DictField()),
                "failing_flows": serializers.ListField(child=serializers.DictField()),
                "durations": serializers.DictField(),
                "recent_failures": serializers.ListField(child=serializers.DictField()),
            },
        ),
    )
    def get(self, request):
        ctx = resolve_request_tenant(request)
        query = DashboardQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        days = query.validated_data["days"]
        stats = dashboard_stats(ctx=ctx, days=days)
        period = dashboard_runs(ctx=ctx).filter(created_at__gte=stats["period_start"])
        failing = (
            period.filter(status=RunStatus.FAILED)
            .order_by()
            .values("flow_id", flow_name=F("flow__name"))
            .annotate(failures=Count("id"))
            .order_by("-failures", "flow_id")[:10]
        )
        durations = sorted(
            (row[1] - row[0]).total_seconds()
            for row in period.filter(status=RunStatus.SUCCEEDED, started_at__isnull=False)
            .exclude(finished_at=None)
            .values_list("started_at", "finished_at")[:5000]
        )

        def pct(p):
            return (
                round(durations[min(len(durations) - 1, int(p * len(durations)))], 3)
                if durations
                else None
            )

        body = {
            "flows": stats["flows"],
            "runs_today": stats["runs_today"],
            "runs_period": stats["runs_period"],
            "days": days,
            "per_day": [{**d, "day": d["day"].isoformat()} for d in stats["per_day"]],
            "failing_flows": list(failing),
            "durations": {
                "succeeded_runs": len(durations),
                "mean_s": round(sum(durations) / len(durations), 3) if durations else None,
                "p50_s": pct(0.5),
                "p95_s": pct(0.95),
                "max_s": durations[-1] if durations else None,
            },
            "recent_failures": [
                {
                    "id": r.pk,
                    "flow": r.flow_id,
                    "flow_name": r.flow.name,
                    "business_time": r.business_time,
                    "error": r.error[:300],
                }
                for r in stats["recent_failures"]
            ],
        }
        return Response(body)
