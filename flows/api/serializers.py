"""Shapes of the flows API: parse input for services, present output. No business rules here."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.fields import StrictCharField
from accounts.api.query import QuerySerializer
from flows import selectors, timeline
from flows.choices import Branch, ConcurrencyPolicy, ErrorPolicy
from flows.models import Edge, FlowVersion, TaskFlow, TaskNode
from flows.services import MAX_EDGES, MAX_NODES

MAX_ID = 2**63 - 1


class IdField(serializers.IntegerField):
    """An object id: a 64-bit integer. A larger number is a 400 naming the field rather than
    an overflow in the database driver (SQLite refuses such an integer outright)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", -MAX_ID)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


class FlowSerializer(serializers.ModelSerializer):
    """A flow as the API shows it."""

    owner = serializers.IntegerField(source="owner_id", read_only=True)
    stakeholders = serializers.SerializerMethodField()
    published_version = serializers.SerializerMethodField()
    has_unpublished_changes = serializers.BooleanField(read_only=True)

    class Meta:
        model = TaskFlow
        fields = [
            "id",
            "name",
            "business_scenario",
            "description",
            "owner",
            "stakeholders",
            "error_policy",
            "concurrency_policy",
            "is_public",
            "variables",
            "parameters",
            "notifications",
            "deadline",
            "status",
            "is_frozen",
            "published_version",
            "has_unpublished_changes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_stakeholders(self, flow) -> list[int]:
        return selectors.stakeholders_of(flow)

    def get_published_version(self, flow) -> int | None:
        return flow.published_version.number if flow.published_version_id else None


class FlowWriteSerializer(serializers.Serializer):
    """Fields a client may set on create (name required) and PATCH."""

    name = StrictCharField(max_length=128)
    business_scenario = StrictCharField(max_length=128, allow_blank=True, required=False)
    description = StrictCharField(max_length=4000, allow_blank=True, required=False)
    error_policy = serializers.ChoiceField(choices=ErrorPolicy.choices, required=False)
    concurrency_policy = serializers.ChoiceField(choices=ConcurrencyPolicy.choices, required=False)
    is_public = serializers.BooleanField(required=False)
    variables = serializers.JSONField(
        required=False, help_text="[{name, type: constant|time, value | format, offset}]"
    )
    parameters = serializers.JSONField(
        required=False,
        help_text="Run parameters: [{name, type: string|integer|number|boolean|date|datetime, "
        "required, default, choices, description}]; nodes use them as ${name}.",
    )
    notifications = serializers.JSONField(
        required=False,
        help_text="{on_failure, on_success, on_node_failure, on_node_retry, emails: [...], "
        "webhooks: [...], slack: [...], dingtalk: [...], feishu: [...], wecom: [...], "
        "max_duration_s}",
    )
    deadline = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text='{"after_fire_s": seconds after the fire time} | {"at": "HH:MM"} | null',
    )


def position_fields(position) -> dict:
    """position_x / position_y of the axes given: a partial update (PATCH {"position": {"y":
    3}}) moves along that axis only."""
    return {f"position_{axis}": position[axis] for axis in ("x", "y") if axis in (position or {})}


class StrictFloatField(serializers.FloatField):
    """A JSON number only: "1.5" as text is refused as the schema says, not converted."""

    def to_internal_value(self, data):
        if isinstance(data, str | bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class PositionSerializer(serializers.Serializer):
    x = StrictFloatField()
    y = StrictFloatField()


class NodeSerializer(serializers.ModelSerializer):
    """A node of the editing version."""

    position = serializers.SerializerMethodField()
    flow = serializers.IntegerField(source="flow_id", read_only=True)

    class Meta:
        model = TaskNode
        fields = [
            "id",
            "flow",
            "name",
            "type",
            "config",
            "position",
            "retries",
            "retry_interval",
            "timeout",
            "priority",
            "variables",
            "trigger_rule",
            "enabled",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(PositionSerializer)
    def get_position(self, node) -> dict:
        return {"x": node.position_x, "y": node.position_y}


class NodeWriteSerializer(serializers.Serializer):
    name = StrictCharField(max_length=128)
    type = StrictCharField(max_length=32)
    config = serializers.JSONField(required=False)
    position = PositionSerializer(required=False)
    retries = serializers.IntegerField(required=False)
    retry_interval = serializers.IntegerField(required=False)
    timeout = serializers.IntegerField(required=False)
    priority = serializers.IntegerField(required=False)
    variables = serializers.JSONField(
        required=False,
        help_text="The node's own variables, shaped like the flow's; they override the flow's.",
    )
    trigger_rule = serializers.CharField(
        required=False,
        max_length=16,
        help_text="When the node runs given its upstreams: all_success (default), all_done, "
        "one_success, one_failed, all_failed, none_failed.",
    )
    enabled = serializers.JSONField(
        required=False, help_text="false: the node is not executed; its downstream runs on."
    )

    def service_fields(self) -> dict:
        data = dict(self.validated_data)
        data.update(position_fields(data.pop("position", None)))
        return data


class EdgeSerializer(serializers.ModelSerializer):
    upstream = serializers.IntegerField(source="upstream_id")
    downstream = serializers.IntegerField(source="downstream_id")
    flow = serializers.IntegerField(source="flow_id", read_only=True)

    class Meta:
        model = Edge
        fields = ["id", "flow", "upstream", "downstream", "branch"]
        read_only_fields = fields


class EdgeWriteSerializer(serializers.Serializer):
    upstream = IdField()
    downstream = IdField()
    branch = serializers.ChoiceField(
        choices=Branch.choices, required=False, allow_null=True, allow_blank=True
    )


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string"}]})
class NodeRefField(serializers.Field):
    """A node id (number), or a client key / node name (text)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | str):
            raise serializers.ValidationError("Give a node id, a client key or a node name.")
        return data

    def to_representation(self, value):
        return value


class GraphNodeInSerializer(serializers.Serializer):
    id = IdField(required=False, allow_null=True)
    key = StrictCharField(required=False, allow_blank=True, max_length=128)
    name = StrictCharField(max_length=128)
    type = StrictCharField(max_length=32)
    config = serializers.JSONField(required=False)
    position = PositionSerializer(required=False)
    retries = serializers.IntegerField(required=False)
    retry_interval = serializers.IntegerField(required=False)
    timeout = serializers.IntegerField(required=False)
    priority = serializers.IntegerField(required=False)
    variables = serializers.JSONField(
        required=False,
        help_text="The node's own variables, shaped like the flow's; they override the flow's.",
    )
    trigger_rule = serializers.CharField(
        required=False,
        max_length=16,
        help_text="When the node runs given its upstreams: all_success (default), all_done, "
        "one_success, one_failed, all_failed, none_failed.",
    )
    enabled = serializers.JSONField(
        required=False, help_text="false: the node is not executed; its downstream runs on."
    )


class GraphEdgeInSerializer(serializers.Serializer):
    upstream = NodeRefField()
    downstream = NodeRefField()
    branch = serializers.ChoiceField(
        choices=Branch.choices, required=False, allow_null=True, allow_blank=True
    )


class GraphInSerializer(serializers.Serializer):
    # The limits are checked on the list's length before any item is read (and again by the
    # service, for callers without this serializer).
    nodes = GraphNodeInSerializer(many=True, max_length=MAX_NODES)
    edges = GraphEdgeInSerializer(many=True, max_length=MAX_EDGES)

    def service_nodes(self) -> list[dict]:
        out = []
        for item in self.validated_data["nodes"]:
            data = dict(item)
            data.update(position_fields(data.pop("position", None)))
            out.append(data)
        return out


class GraphSerializer(serializers.Serializer):
    nodes = NodeSerializer(many=True)
    edges = EdgeSerializer(many=True)
    keys = serializers.DictField(child=serializers.IntegerField(), required=False)


class StakeholdersSerializer(serializers.Serializer):
    users = serializers.ListField(child=IdField(), max_length=500, allow_empty=True)


class OwnerSerializer(serializers.Serializer):
    owner = IdField()


class PublishSerializer(serializers.Serializer):
    comment = StrictCharField(max_length=500, required=False, allow_blank=True)


class PublishResultSerializer(serializers.Serializer):
    version = serializers.IntegerField()


class ProblemsSerializer(serializers.Serializer):
    """A refused request: {"problems": {node or "flow": [...]}} for a refused graph, publish or
    import; a malformed body answers the usual {field: [messages]} instead."""

    problems = serializers.DictField(
        child=serializers.ListField(child=StrictCharField()), required=False
    )


class FlowVersionSerializer(serializers.ModelSerializer):
    owner = serializers.IntegerField(source="owner_id", read_only=True)
    created_by = serializers.IntegerField(source="created_by_id", read_only=True, allow_null=True)
    flow = serializers.IntegerField(source="flow_id", read_only=True)

    class Meta:
        model = FlowVersion
        fields = ["number", "flow", "owner", "created_by", "created_at", "comment"]
        read_only_fields = fields


class FlowVersionDetailSerializer(FlowVersionSerializer):
    class Meta(FlowVersionSerializer.Meta):
        fields = [*FlowVersionSerializer.Meta.fields, "snapshot"]
        read_only_fields = fields


class FieldChangeSerializer(serializers.Serializer):
    field = StrictCharField()
    old = serializers.JSONField(allow_null=True)
    new = serializers.JSONField(allow_null=True)


class AuditFieldChangeSerializer(FieldChangeSerializer):
    label = serializers.CharField(help_text="the field in words")
    old_display = serializers.CharField(help_text="the old value in words (names, version numbers)")
    new_display = serializers.CharField(help_text="the new value in words")


class DiffNodeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = StrictCharField()
    type = StrictCharField()
    changes = FieldChangeSerializer(many=True, required=False)


class DiffEdgeSerializer(serializers.Serializer):
    upstream = serializers.IntegerField()
    downstream = serializers.IntegerField()
    upstream_name = StrictCharField(allow_null=True)
    downstream_name = StrictCharField(allow_null=True)
    branch = StrictCharField(allow_null=True)


class DiffNodesSerializer(serializers.Serializer):
    added = DiffNodeSerializer(many=True)
    removed = DiffNodeSerializer(many=True)
    changed = DiffNodeSerializer(many=True)


class DiffEdgesSerializer(serializers.Serializer):
    added = DiffEdgeSerializer(many=True)
    removed = DiffEdgeSerializer(many=True)


class VersionDiffSerializer(serializers.Serializer):
    # "from"/"to" are Python keywords: declared via the fields dict below.
    empty = serializers.BooleanField()
    configuration = FieldChangeSerializer(many=True)
    nodes = DiffNodesSerializer()
    edges = DiffEdgesSerializer()

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.IntegerField()
        fields["to"] = serializers.JSONField(help_text="A version number or 'editing'.")
        return fields


class VersionDiffQuerySerializer(QuerySerializer):
    against = StrictCharField(
        required=False, default="editing", help_text="A version number or 'editing' (default)."
    )


class HistoryQuerySerializer(QuerySerializer):
    user = IdField(required=False)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)


class AuditQuerySerializer(HistoryQuerySerializer):
    object_type = StrictCharField(
        required=False,
        help_text="Comma-separated object types, as the entries name them (flow, node, "
        "datasource, run, …); an unknown one is a 400 that lists them all.",
    )
    flow = IdField(
        required=False, help_text="Only what concerns this flow (its nodes, versions …)."
    )

    def validate_object_type(self, value) -> set[str]:
        known = timeline.audit_object_types()
        wanted = {t.strip() for t in value.split(",") if t.strip()}
        unknown = sorted(wanted - set(known))
        if unknown or not wanted:
            raise serializers.ValidationError(
                f"Unknown object type {', '.join(unknown) or repr(value)}; "
                f"use one or more of: {', '.join(known)} (comma-separated)."
            )
        return wanted


class HistoryEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    user = serializers.IntegerField(allow_null=True)
    username = serializers.CharField(allow_null=True)
    object_type = serializers.CharField()
    # None for an O&M action over several runs (a backfill, a bulk request): see `changes`.
    object_id = serializers.IntegerField(allow_null=True)
    object_repr = serializers.CharField()
    flow = serializers.IntegerField(allow_null=True)
    action = serializers.CharField(
        help_text="created, changed or deleted for configuration; for an O&M action on runs "
        "(object_type run): stop, pause, resume, rerun, restore, rerun_from, mark_success, "
        "backfill or bulk."
    )
    reason = serializers.CharField(allow_blank=True)
    changes = AuditFieldChangeSerializer(many=True)
    summary = serializers.CharField(help_text="the entry in words, with names")
    object_name = serializers.CharField(help_text="what changed, by name")
    flow_name = serializers.CharField(allow_null=True)
    version = serializers.IntegerField(
        allow_null=True, help_text="the version number this entry published (a link to its diff)"
    )


class PreviewInSerializer(serializers.Serializer):
    business_time = serializers.DateTimeField()
    node = IdField(required=False, allow_null=True)


class PreviewNodeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = StrictCharField()
    type = StrictCharField()
    config = serializers.JSONField()
    undefined = serializers.ListField(child=StrictCharField())
    upstream_outputs = serializers.ListField(child=StrictCharField())


class PreviewSerializer(serializers.Serializer):
    business_time = serializers.DateTimeField()
    variables = serializers.DictField(child=StrictCharField())
    nodes = PreviewNodeSerializer(many=True)


class ImportSerializer(serializers.Serializer):
    document = StrictCharField(
        required=False,
        help_text="The flow document as YAML or JSON text (or send the document itself as the body).",
    )
    name = StrictCharField(
        max_length=128, required=False, help_text="Name of the new flow (overrides the document's)."
    )


@extend_schema_field(OpenApiTypes.OBJECT)
class DocumentField(serializers.JSONField):
    pass


class ExportSerializer(serializers.Serializer):
    kind = StrictCharField()
    version = serializers.IntegerField()
    name = StrictCharField()
    nodes = serializers.ListField(child=DocumentField())
    edges = serializers.ListField(child=DocumentField())
