"""Shapes of runs and node runs in the API (no business rules: those live in services)."""

from django.db.models import F
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.fields import StrictCharField
from accounts.api.query import QuerySerializer
from operations.choices import (
    BULK_ACTIONS,
    USER_MODE_CHOICES,
    DeadlineState,
    NodeStatus,
    RunMode,
    RunStatus,
    RunTrigger,
    WaitingReason,
)
from operations.models import REASON_MAX_LENGTH, FlowRun, NodeRun


@extend_schema_field({"type": "string", "maxLength": REASON_MAX_LENGTH})
class ReasonField(serializers.Field):
    """The operator's optional reason, passed as sent: the service checks it (one rule)."""

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return value


class ReasonSerializer(serializers.Serializer):
    """The body of an O&M action: an optional reason for the audit trail."""

    reason = ReasonField(required=False, help_text="Why (kept in the audit trail).")


class BulkSerializer(serializers.Serializer):
    """POST /runs/bulk/ (documentation: services.bulk checks the values, naming the field)."""

    action = serializers.ChoiceField(choices=[str(a) for a in BULK_ACTIONS])
    runs = serializers.ListField(child=serializers.IntegerField(), max_length=100)
    reason = ReasonField(required=False)


class BulkResultSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    result = serializers.ChoiceField(choices=["done", "refused"])
    status = serializers.IntegerField(help_text="The HTTP status the action had alone.")
    run_status = serializers.CharField(required=False, help_text="The run's status after it.")
    new_run = serializers.IntegerField(required=False, help_text="rerun: the new run.")
    errors = serializers.DictField(required=False, help_text="What it answered alone.")


class BulkAnswerSerializer(serializers.Serializer):
    action = serializers.CharField()
    done = serializers.IntegerField()
    refused = serializers.IntegerField()
    results = BulkResultSerializer(many=True)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "enum": ["draft", "published"]},
            {"type": "integer", "minimum": 1},
        ],
        "description": 'Which version runs: "draft", "published" or a version number. '
        "Default: the draft for try and dry runs; the latest published version (when there "
        "is one) for point-in-time and time-range runs.",
    }
)
class RunVersionField(serializers.CharField):
    """ "draft", "published" or a version number (the service says which exist)."""

    def __init__(self, **kwargs):
        super().__init__(required=False, allow_null=True, max_length=32, **kwargs)


class RunCreateSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=USER_MODE_CHOICES)
    version = RunVersionField()
    parameters = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        required=False,
        help_text="Values of the parameters the flow declares, by name; coerced to the "
        "declared types. A required one without a default must be given.",
    )
    business_time = serializers.DateTimeField(required=False, allow_null=True)
    start = serializers.DateTimeField(required=False, allow_null=True)
    end = serializers.DateTimeField(required=False, allow_null=True)
    parallelism = serializers.IntegerField(required=False, default=1)
    order = serializers.ChoiceField(choices=["asc", "desc"], required=False, default="asc")
    reason = ReasonField(required=False, help_text="A time range's reason, for the audit trail.")
    nodes = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        max_length=10_000,
        help_text="Try mode: run only these nodes (ids); the others are not_run.",
    )
    from_node = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=2**63 - 1,
        help_text="Try mode: run this node and everything downstream of it.",
    )
    start_nodes = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        max_length=10_000,
        help_text="Time-range mode (a backfill): each run runs only these nodes (ids) and, "
        "with include_downstream, everything downstream of them; the others are not_run.",
    )
    include_downstream = serializers.BooleanField(
        required=False,
        default=True,
        help_text="With start_nodes: also run everything downstream of them (default true).",
    )
    only = serializers.ChoiceField(
        choices=["all", "missing", "failed"],
        required=False,
        default="all",
        help_text="Time-range mode: which fire times run. all (default); missing: those "
        "without a successful run of the version that runs or a later one; failed: those "
        "whose latest run failed.",
    )
    downstream_flows = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Time-range mode: also backfill the flows whose dependency checks wait for "
        "this one (directly or through each other), on the same business dates, each date in "
        "dependency order. The caller must be allowed to run every one of them (else 403).",
    )
    plan_only = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Time-range mode: answer 200 with the plan (the runs it would create) and "
        "create nothing.",
    )


# Ids are 64-bit: a larger number is a 400, not a database overflow.
MAX_ID = 2**63 - 1


class RunFilterSerializer(QuerySerializer):
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
    deadline_state = serializers.SerializerMethodField()

    class Meta:
        model = FlowRun
        fields = [
            "id",
            "flow",
            "flow_name",
            "version",
            "version_id",
            "parameters",
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
            "node_scope",
            "parent_run",
            "parent_node_run",
            "deadline_at",
            "deadline_state",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=DeadlineState.choices, allow_null=True))
    def get_deadline_state(self, run) -> str | None:
        """on_time, at_risk (predicted to miss), missed; null when the run has no deadline."""
        from operations.services import deadline_state

        return deadline_state(run)

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
    `waiting_reason` (concurrency_policy, tenant_limit, pool) and in words in
    `waiting_detail` (e.g. "pool warehouse full (2 running)").
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
            "waiting_detail",
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


class ChildRunSerializer(serializers.Serializer):
    """A child run a subflow or foreach node of this run started."""

    id = serializers.IntegerField()
    flow = serializers.IntegerField(source="flow_id")
    flow_name = serializers.CharField(source="flow.name")
    status = serializers.CharField()
    parent_node_run = serializers.IntegerField(source="parent_node_run_id")
    # The node (of any attempt) that started it: the run page lists a node's children under it.
    parent_node = serializers.IntegerField(allow_null=True)
    parent_key = serializers.CharField()


class RunDetailSerializer(RunSerializer):
    node_runs = serializers.SerializerMethodField()
    critical_path = serializers.SerializerMethodField()
    child_runs = serializers.SerializerMethodField()

    class Meta(RunSerializer.Meta):
        fields = [
            *RunSerializer.Meta.fields,
            "node_runs",
            "critical_path",
            "deadline_prediction",
            "child_runs",
        ]
        read_only_fields = fields

    @extend_schema_field(ChildRunSerializer(many=True))
    def get_child_runs(self, run) -> list[dict]:
        """The runs its sub-flow and loop nodes started (one query)."""
        children = (
            run.child_runs.select_related("flow")
            .annotate(parent_node=F("parent_node_run__node_id"))
            .order_by("pk")
        )
        return ChildRunSerializer(children, many=True).data

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


class BackfillPlanRunSerializer(serializers.Serializer):
    flow = serializers.IntegerField(help_text="The flow's id.")
    flow_name = serializers.CharField()
    version = serializers.IntegerField(
        allow_null=True, help_text="The version number that would run; null: the draft."
    )
    business_time = serializers.DateTimeField()
    nodes = serializers.ListField(
        child=serializers.CharField(), help_text="Names of the nodes that would run."
    )


class BackfillPlanSerializer(serializers.Serializer):
    """What a time-range run with plan_only would create (it creates nothing)."""

    count = serializers.IntegerField()
    runs = BackfillPlanRunSerializer(many=True)
