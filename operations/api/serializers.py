"""Shapes of runs and node runs in the API (no business rules: those live in services)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.fields import StrictCharField
from operations.choices import (
    USER_MODE_CHOICES,
    NodeStatus,
    RunMode,
    RunStatus,
    RunTrigger,
    WaitingReason,
)
from operations.models import FlowRun, NodeRun


class RunCreateSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=USER_MODE_CHOICES)
    business_time = serializers.DateTimeField(required=False, allow_null=True)
    start = serializers.DateTimeField(required=False, allow_null=True)
    end = serializers.DateTimeField(required=False, allow_null=True)
    parallelism = serializers.IntegerField(required=False, default=1)
    order = serializers.ChoiceField(choices=["asc", "desc"], required=False, default="asc")


# Ids are 64-bit: a larger number is a 400, not a database overflow.
MAX_ID = 2**63 - 1


class RunFilterSerializer(serializers.Serializer):
    """Query parameters of GET /runs/."""

    flow = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    status = serializers.ChoiceField(choices=RunStatus.choices, required=False)
    mode = serializers.ChoiceField(choices=RunMode.choices, required=False)
    trigger = serializers.ChoiceField(choices=RunTrigger.choices, required=False)
    business_time_after = serializers.DateTimeField(required=False)
    business_time_before = serializers.DateTimeField(required=False)
    triggered_by = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    batch = serializers.UUIDField(required=False)


class RunSerializer(serializers.ModelSerializer):
    """A run as listed."""

    flow_name = StrictCharField(source="flow.name", read_only=True)
    version = serializers.IntegerField(
        source="version.number", read_only=True, default=None, allow_null=True
    )
    triggered_by_name = StrictCharField(
        source="triggered_by.username", read_only=True, default=None, allow_null=True
    )
    duration = serializers.SerializerMethodField()

    class Meta:
        model = FlowRun
        fields = [
            "id",
            "flow",
            "flow_name",
            "version",
            "version_id",
            "mode",
            "trigger",
            "status",
            "business_time",
            "fire_time",
            "triggered_by",
            "triggered_by_name",
            "error_policy",
            "concurrency_policy",
            "previous_run",
            "batch",
            "batch_index",
            "created_at",
            "started_at",
            "finished_at",
            "duration",
            "skip_reason",
            "error",
            "nodes_total",
            "nodes_open",
        ]
        read_only_fields = fields

    def get_duration(self, run) -> float | None:
        """Seconds from the first node's start to the end (or now while it runs)."""
        if not run.started_at:
            return None
        end = run.finished_at
        if end is None:
            from django.utils import timezone

            end = timezone.now()
        return round((end - run.started_at).total_seconds(), 3)


class WaitingReasonField(serializers.ChoiceField):
    """Why a waiting node is held back; null when it is not."""

    def __init__(self, **kwargs):
        choices = [(value, label) for value, label in WaitingReason.choices if value]
        super().__init__(choices=choices, allow_null=True, read_only=True, **kwargs)

    def to_representation(self, value):
        return value or None


class NodeRunSerializer(serializers.ModelSerializer):
    """A node's latest attempt, as a run's detail shows it.

    `status` "deferred" is a node that has started and waits without holding a worker until
    its next check (`next_attempt_at`): running, to the user. A "waiting" node says why in
    `waiting_reason`.
    """

    node = serializers.IntegerField(source="node_id", read_only=True)
    attempts = serializers.IntegerField(source="attempt", read_only=True)
    status = serializers.ChoiceField(choices=NodeStatus.choices, read_only=True)
    waiting_reason = WaitingReasonField()

    class Meta:
        model = NodeRun
        fields = [
            "id",
            "node",
            "node_name",
            "node_type",
            "status",
            "waiting_reason",
            "attempt",
            "attempts",
            "queued_at",
            "started_at",
            "next_attempt_at",
            "finished_at",
            "worker",
            "output",
            "branch",
            "error",
            "rendered_config",
        ]
        read_only_fields = fields


class CriticalStepSerializer(serializers.Serializer):
    node = serializers.IntegerField()
    node_name = StrictCharField()
    duration_s = serializers.FloatField()


class RunDetailSerializer(RunSerializer):
    node_runs = serializers.SerializerMethodField()
    critical_path = serializers.SerializerMethodField()

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "node_runs", "critical_path"]
        read_only_fields = fields

    def _node_runs(self, run) -> list[NodeRun]:
        from operations.selectors import run_node_runs

        if getattr(run, "_latest_node_runs", None) is None:
            run._latest_node_runs = list(run_node_runs(run=run))
        return run._latest_node_runs

    @extend_schema_field(NodeRunSerializer(many=True))
    def get_node_runs(self, run) -> list[dict]:
        return NodeRunSerializer(self._node_runs(run), many=True).data

    @extend_schema_field(CriticalStepSerializer(many=True))
    def get_critical_path(self, run) -> list[dict]:
        """Finished runs: the chain of nodes whose durations added up to the run's."""
        from operations.selectors import run_critical_path

        return run_critical_path(run=run, node_runs=self._node_runs(run))


class NodeRunLogSerializer(serializers.ModelSerializer):
    """A node run's log (readable while it runs)."""

    truncated = serializers.SerializerMethodField()

    class Meta:
        model = NodeRun
        fields = ["id", "run", "node_id", "node_name", "attempt", "status", "log", "truncated"]
        read_only_fields = fields

    def get_truncated(self, node_run) -> bool:
        from operations.models import LOG_TRUNCATED

        return LOG_TRUNCATED in node_run.log


class TimeRangeRunsSerializer(serializers.Serializer):
    runs = RunSerializer(many=True)
