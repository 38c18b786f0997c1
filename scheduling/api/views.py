"""Schedule endpoints under /flows/{id}/schedule/: read, replace, preview, missed fire times."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.utils import timezone as djtz
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from accounts.api.base import TenantViewSet
from flows import permissions
from flows.selectors import flow_get
from scheduling import selectors, services
from scheduling.choices import ScheduleKind
from scheduling.models import Schedule
from scheduling.spec import build_spec

from .serializers import (
    FireTimesSerializer,
    MissedQuerySerializer,
    MissedSerializer,
    ScheduleInputSerializer,
    SchedulePreviewQuerySerializer,
    ScheduleSerializer,
)

FLOW_ID = OpenApiParameter("flow_id", int, OpenApiParameter.PATH, description="Task flow id")
_SPEC_PARAMS = ("cron", "kind", "interval", "time", "days", "start_date", "end_date", "timezone")


def _instant(text: str | None, zone: str, field: str) -> datetime | None:
    """An ISO 8601 query value as an aware datetime (no offset: wall time in `zone`)."""
    if text in (None, ""):
        return None
    try:
        value = parse_datetime(text.replace(" ", "+", 1) if "T" in text else text)
    except ValueError:
        value = None
    if value is None:
        raise ValidationError({field: [f"{text!r} is not an ISO 8601 date-time"]})
    if value.utcoffset() is None:
        value = value.replace(tzinfo=ZoneInfo(zone))
    return value


def _with_state(schedule: Schedule) -> Schedule:
    schedule.state, schedule.next_fire_time = selectors.schedule_state(schedule=schedule)
    return schedule


class ScheduleViewSet(TenantViewSet):
    """The schedule of one flow; a flow without one shows a default, disabled schedule (id null)."""

    queryset = Schedule.objects.none()
    serializer_class = ScheduleSerializer

    def scoped_queryset(self):
        return selectors.schedule_list(ctx=self.ctx)

    def _flow(self, flow_id, action):
        return flow_get(ctx=self.ctx, flow_id=flow_id, action=action)

    def _schedule(self, flow) -> Schedule | None:
        return self.get_queryset().filter(flow_id=flow.pk).first()

    def get_object(self) -> Schedule:
        flow = self._flow(self.kwargs.get("flow_id"), permissions.VIEW)
        return self._schedule(flow) or selectors.schedule_default(flow=flow)

    def get_serializer_class(self):
        # OPTIONS describes what a PUT accepts.
        if self.request is not None and self.request.method == "PUT":
            return ScheduleInputSerializer
        return ScheduleSerializer

    @extend_schema(parameters=[FLOW_ID], responses=ScheduleSerializer)
    def retrieve(self, request, flow_id=None):
        flow = self._flow(flow_id, permissions.VIEW)
        schedule = self._schedule(flow) or selectors.schedule_default(flow=flow)
        schedule.flow = flow
        return Response(ScheduleSerializer(_with_state(schedule)).data)

    @extend_schema(
        parameters=[FLOW_ID], request=ScheduleInputSerializer, responses=ScheduleSerializer
    )
    def update(self, request, flow_id=None):
        flow = self._flow(flow_id, permissions.EDIT)
        body = ScheduleInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        schedule = services.schedule_save(flow=flow, user=request.user, **body.validated_data)
        return Response(ScheduleSerializer(_with_state(schedule)).data)

    @extend_schema(
        parameters=[FLOW_ID, SchedulePreviewQuerySerializer],
        responses=FireTimesSerializer,
        description="The next fire times of the saved schedule, or of the schedule fields "
        "given as query parameters (they override the saved ones: a live preview while editing).",
    )
    def preview(self, request, flow_id=None):
        flow = self._flow(flow_id, permissions.VIEW)
        query = SchedulePreviewQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        saved = self._schedule(flow) or selectors.schedule_default(flow=flow)
        fields = {
            "kind": saved.kind,
            "cron": saved.cron,
            "interval": saved.interval,
            "time": saved.time,
            "days": list(saved.days or []),
            "start_date": saved.start_date,
            "end_date": saved.end_date,
            "timezone": saved.timezone,
        }
        given = {k: v for k, v in query.validated_data.items() if k in _SPEC_PARAMS}
        if "kind" in given or "cron" in given:
            fields["kind"] = given.get("kind", ScheduleKind.CRON)
            fields["cron"] = given.get("cron")
        if "days" in given:
            given["days"] = [
                int(d) if d.strip().isdigit() else d.strip()
                for raw in request.query_params.getlist("days")
                for d in raw.split(",")
                if d.strip()
            ]
        if "interval" in given:
            text = given["interval"].strip()
            given["interval"] = int(text) if text.isdigit() else text
        for key in ("interval", "time", "days", "start_date", "end_date", "timezone"):
            if key in given:
                fields[key] = given[key]
        if "start_date" not in given and saved.pk is None:
            fields["start_date"] = None  # an unsaved schedule starts today in its own zone
        spec = build_spec(**fields)
        after = _instant(query.validated_data.get("after"), spec.timezone, "after")
        times = selectors.schedule_preview(
            spec=spec, count=query.validated_data["count"], after=after
        )
        return Response(
            {
                "fire_times": [t.isoformat() for t in times],
                "cron": spec.cron,
                "timezone": spec.timezone,
            }
        )

    @extend_schema(
        parameters=[FLOW_ID, MissedQuerySerializer],
        responses=MissedSerializer,
        description="Fire times that started no scheduled run (beat down, flow frozen or "
        "unpublished, schedule disabled). They are not replayed; a time-range run backfills them.",
    )
    def missed(self, request, flow_id=None):
        flow = self._flow(flow_id, permissions.VIEW)
        query = MissedQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        schedule = self._schedule(flow)
        zone = schedule.timezone if schedule is not None else "UTC"
        until = _instant(query.validated_data.get("until"), zone, "until") or djtz.now()
        since = _instant(query.validated_data.get("since"), zone, "since") or until - timedelta(
            days=7
        )
        if since > until:
            raise ValidationError({"since": ["`since` is after `until`"]})
        times = selectors.missed_fire_times(flow=flow, since=since, until=until)
        return Response({"fire_times": [t.isoformat() for t in times], "count": len(times)})
