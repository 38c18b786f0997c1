"""`GET /api/v1/schedules/distribution/`: a day's fire times per hour (thin over
scheduling.distribution)."""

from datetime import date, datetime, timedelta

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.base import IsTenantMember, resolve_request_tenant
from accounts.api.fields import StrictCharField
from accounts.api.query import QuerySerializer
from scheduling import cron
from scheduling.distribution import schedule_distribution

# Days a calendar can be walked through (and a day after them exists).
EARLIEST, LATEST = date(1900, 1, 1), date(9998, 12, 31)


class DistributionQuerySerializer(QuerySerializer):
    date = serializers.DateField(required=False)
    timezone = StrictCharField(required=False, max_length=64)

    def validate_date(self, value):
        if not EARLIEST <= value <= LATEST:
            raise serializers.ValidationError(f"give a date from {EARLIEST} to {LATEST}")
        return value

    def validate_timezone(self, value):
        try:
            return cron.validate_timezone(value)
        except cron.CronError as exc:
            raise serializers.ValidationError(exc.message) from exc


class HourSerializer(serializers.Serializer):
    hour = serializers.IntegerField(min_value=0, max_value=23)
    fire_times = serializers.IntegerField()
    flows = serializers.IntegerField()


class MinuteSerializer(serializers.Serializer):
    time = StrictCharField(help_text="HH:MM")
    fire_times = serializers.IntegerField()
    flows = serializers.IntegerField()


class DistributionSerializer(serializers.Serializer):
    date = serializers.DateField()
    timezone = StrictCharField()
    total = serializers.IntegerField()
    flows = serializers.IntegerField()
    hours = HourSerializer(many=True)
    busiest = MinuteSerializer(many=True, help_text="The busiest minutes, most fire times first.")


class ScheduleDistributionView(APIView):
    """How a day's fire times spread over its hours (the schedules of the flows you can see
    that fire: enabled, published, not frozen). Default: tomorrow in the server's zone."""

    permission_classes = [permissions.IsAuthenticated, IsTenantMember]

    @extend_schema(
        parameters=[
            OpenApiParameter("date", str, description="YYYY-MM-DD (default: tomorrow)."),
            OpenApiParameter("timezone", str, description="IANA zone of the day and its hours."),
        ],
        responses=DistributionSerializer,
    )
    def get(self, request):
        ctx = resolve_request_tenant(request)
        query = DistributionQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        zone = query.validated_data.get("timezone") or cron.validate_timezone(settings.TIME_ZONE)
        day = query.validated_data.get("date")
        if day is None:
            day = datetime.now(zone).date() + timedelta(days=1)
        body = schedule_distribution(ctx=ctx, day=day, zone=zone)
        return Response(DistributionSerializer(body).data)
