"""Shapes of the lineage endpoints (no rules: flows.lineage.selectors answers)."""

from rest_framework import serializers

from accounts.api.fields import StrictCharField
from accounts.api.query import QuerySerializer
from flows.choices import LineageAccess
from flows.lineage import selectors

MAX_ID = 2**63 - 1


class TableQuerySerializer(QuerySerializer):
    table = StrictCharField(max_length=511, help_text="`name` or `schema.name`.")
    datasource = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)

    def validate_table(self, value):
        _schema, name = selectors.parse_table(value)
        if not name:
            raise serializers.ValidationError("Name a table: `name` or `schema.name`.")
        return value


class TableUseSerializer(serializers.Serializer):
    flow = serializers.IntegerField(source="flow_id")
    flow_name = StrictCharField(source="flow.name")
    flow_status = StrictCharField(source="flow.status")
    version = serializers.IntegerField(source="version.number")
    node = serializers.IntegerField(source="node_id")
    node_name = StrictCharField()
    node_type = StrictCharField()
    datasource = serializers.IntegerField(source="datasource_id", allow_null=True)
    datasource_name = StrictCharField(source="datasource.name", default=None, allow_null=True)
    table = serializers.SerializerMethodField()

    def get_table(self, entry) -> str:
        return f"{entry.schema}.{entry.name}" if entry.schema else entry.name


class TableLineageSerializer(serializers.Serializer):
    table = StrictCharField()
    readers = TableUseSerializer(many=True)
    writers = TableUseSerializer(many=True)


class OwnFactSerializer(serializers.Serializer):
    node = serializers.IntegerField(source="node_id")
    node_name = StrictCharField()
    node_type = StrictCharField()
    access = serializers.ChoiceField(choices=LineageAccess.choices)
    datasource = serializers.IntegerField(source="datasource_id", allow_null=True)
    datasource_name = StrictCharField(source="datasource.name", default=None, allow_null=True)
    table = serializers.SerializerMethodField()
    depends_on = serializers.IntegerField(allow_null=True)
    detail = StrictCharField()

    def get_table(self, entry) -> str | None:
        if not entry.name:
            return None
        return f"{entry.schema}.{entry.name}" if entry.schema else entry.name


class LineageFlowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = StrictCharField()
    status = StrictCharField()
    version = serializers.IntegerField(allow_null=True)
    upstream = serializers.BooleanField(help_text="Feeds the flow (directly or not).")
    downstream = serializers.BooleanField(help_text="Fed by the flow (directly or not).")


class LineageEdgeSerializer(serializers.Serializer):
    upstream = serializers.IntegerField()
    downstream = serializers.IntegerField()
    tables = serializers.ListField(child=StrictCharField())
    dependency = serializers.BooleanField(help_text="The downstream flow waits for it.")


class FlowLineageSerializer(serializers.Serializer):
    flow = serializers.IntegerField()
    flows = LineageFlowSerializer(many=True)
    edges = LineageEdgeSerializer(many=True)
    reads = OwnFactSerializer(many=True)
    writes = OwnFactSerializer(many=True)
    depends = OwnFactSerializer(many=True)
    problems = OwnFactSerializer(many=True)
