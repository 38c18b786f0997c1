"""Shapes of schedules in the API; parsing only, the rules live in scheduling.spec/services."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.fields import StrictCharField
from accounts.api.query import QuerySerializer
from scheduling import spec
from scheduling.choices import ScheduleKind, ScheduleState
from scheduling.models import Schedule


class ZonedDateTimeField(serializers.DateTimeField):
    """An aware datetime as ISO 8601 in its own zone (not converted to the server's)."""

    def to_representation(self, value):
        return value.isoformat() if value is not None else None


@extend_schema_field({"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$", "example": "06:30"})
class HourMinuteField(serializers.TimeField):
    """A wall time as HH:MM (the schema's `format: time` would promise seconds and an offset)."""

    def __init__(self, **kwargs):
        super().__init__(format="%H:%M", **kwargs)


class PublishedScheduleSerializer(serializers.Serializer):
    """The schedule as the published version holds it: what fires."""

    enabled = serializers.BooleanField()
    kind = serializers.ChoiceField(choices=ScheduleKind.choices)
    cron = serializers.CharField()
    interval = serializers.IntegerField(allow_null=True)
    time = serializers.CharField(allow_null=True, help_text="HH:MM in the schedule's zone")
    days = serializers.ListField(child=serializers.JSONField())
    start_date = serializers.DateField()
    end_date = serializers.DateField(allow_null=True)
    timezone = serializers.CharField()
    description = serializers.CharField(help_text="the schedule in words")


class ScheduleSerializer(serializers.ModelSerializer):
    """A saved (or default, unsaved: id null) schedule with its state and next fire time.

    The fields are the draft, which users edit; `published` is the schedule that fires
    (the published version's), and `state` and `next_fire_time` are its. A draft that
    differs (`draft_differs`) takes effect when the flow is published.
    """

    # An unsaved default schedule has no id and no timestamps: the schema says so.
    id = serializers.IntegerField(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True, allow_null=True)
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)
    time = HourMinuteField(allow_null=True, read_only=True)
    days = serializers.ListField(child=serializers.JSONField(), read_only=True)
    state = serializers.ChoiceField(choices=ScheduleState.choices, read_only=True)
    next_fire_time = ZonedDateTimeField(read_only=True, allow_null=True)
    description = serializers.SerializerMethodField(help_text="the schedule in words")
    state_display = serializers.SerializerMethodField(help_text="the state in words")
    published = serializers.SerializerMethodField(
        help_text="the schedule that fires (the published version's); null while none is published"
    )
    draft_differs = serializers.SerializerMethodField(
        help_text="true when these fields differ from `published`: the change takes effect "
        "when the flow is published"
    )

    class Meta:
        model = Schedule
        fields = [
            "id",
            "flow",
            "enabled",
            "kind",
            "cron",
            "interval",
            "time",
            "days",
            "start_date",
            "end_date",
            "timezone",
            "state",
            "state_display",
            "description",
            "next_fire_time",
            "published",
            "draft_differs",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_description(self, obj) -> str | None:
        return spec.describe(obj) if obj.kind and (obj.cron or obj.kind != "cron") else None

    @extend_schema_field(PublishedScheduleSerializer(allow_null=True))
    def get_published(self, obj) -> dict | None:
        fires = spec.published_spec(obj) if obj.pk else None
        if fires is None:
            return None
        return {
            "enabled": obj.published_enabled,
            "kind": fires.kind,
            "cron": fires.cron,
            "interval": fires.interval,
            "time": fires.time.strftime("%H:%M") if fires.time else None,
            "days": list(fires.days),
            "start_date": fires.start_date.isoformat(),
            "end_date": fires.end_date.isoformat() if fires.end_date else None,
            "timezone": fires.timezone,
            "description": spec.describe(fires),
        }

    def get_draft_differs(self, obj) -> bool:
        return bool(obj.pk) and obj.draft_differs

    def get_state_display(self, obj) -> str | None:
        state = getattr(obj, "state", None)
        return ScheduleState(state).label if state else None


class ScheduleInputSerializer(serializers.Serializer):
    """PUT body: a cron expression, or a simple form (`kind` + interval/time/days)."""

    enabled = serializers.BooleanField(required=False, help_text="omitted: unchanged (new: true)")
    cron = StrictCharField(required=False, allow_null=True, allow_blank=True, trim_whitespace=True)
    kind = serializers.ChoiceField(choices=ScheduleKind.choices, required=False, allow_null=True)
    interval = serializers.IntegerField(required=False, allow_null=True)
    time = StrictCharField(
        required=False, allow_null=True, allow_blank=True, help_text="HH:MM in the schedule's zone"
    )
    days = serializers.ListField(
        child=serializers.JSONField(),
        required=False,
        allow_null=True,
        help_text="weekly: ['mon', 'thu'] (or 0-6, 0 = Sunday); monthly: [1, 15]",
    )
    start_date = serializers.DateField(required=False, allow_null=True)
    end_date = serializers.DateField(required=False, allow_null=True)
    timezone = StrictCharField(
        required=False, allow_null=True, allow_blank=True, help_text="omitted: unchanged (new: UTC)"
    )


class SchedulePreviewQuerySerializer(QuerySerializer):
    """Preview query: how many and after when; schedule fields preview unsaved input."""

    repeatable = ("days",)

    count = serializers.IntegerField(required=False, default=10, min_value=1, max_value=100)
    after = StrictCharField(
        required=False, help_text="ISO 8601; without an offset, in the schedule's zone"
    )
    cron = StrictCharField(required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=ScheduleKind.choices, required=False)
    interval = StrictCharField(required=False, allow_blank=True)
    time = StrictCharField(required=False, allow_blank=True)
    days = StrictCharField(
        required=False, allow_blank=True, help_text="comma-separated, or repeat the parameter"
    )
    start_date = serializers.DateField(required=False)
    end_date = serializers.DateField(required=False)
    timezone = StrictCharField(required=False, allow_blank=True)


class FireTimesSerializer(serializers.Serializer):
    fire_times = serializers.ListField(child=StrictCharField())
    cron = StrictCharField()
    timezone = StrictCharField()


class MissedQuerySerializer(QuerySerializer):
    since = StrictCharField(
        required=False,
        help_text="ISO 8601 (default: 7 days before `until`); no offset: schedule's zone",
    )
    until = StrictCharField(required=False, help_text="ISO 8601 (default: now)")


class MissedSerializer(serializers.Serializer):
    fire_times = serializers.ListField(child=StrictCharField())
    count = serializers.IntegerField()
