"""Secrets as the API shows them: name, scope and reference, never the value."""

from rest_framework import serializers

from accounts.api.fields import StrictCharField
from flows.api.serializers import IdField
from flows.models import Secret

from ..references import variable
from ..services import MAX_VALUE_LENGTH


class SecretSerializer(serializers.ModelSerializer):
    """`value` is write-only: required to create, optional to change, never returned."""

    flow = IdField(
        source="flow_id",
        required=False,
        allow_null=True,
        help_text="The flow this secret belongs to; empty for a tenant-wide secret. "
        "Set on creation only.",
    )
    value = StrictCharField(
        write_only=True,
        trim_whitespace=False,
        max_length=MAX_VALUE_LENGTH,
        style={"input_type": "password"},
        help_text="Write-only; never returned by any endpoint.",
    )
    flow_name = serializers.SerializerMethodField()
    reference = serializers.SerializerMethodField(
        help_text="What to write in a node's configuration."
    )

    class Meta:
        model = Secret
        fields = [
            "id",
            "name",
            "flow",
            "flow_name",
            "value",
            "reference",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "flow_name", "reference", "created_at", "updated_at"]
        # The service checks names and uniqueness per scope, naming the field.
        extra_kwargs = {"name": {"validators": []}}

    def get_flow_name(self, obj) -> str | None:
        if not obj.flow_id:
            return None
        name = getattr(obj, "flow_name", None)
        return name if name is not None else obj.flow.name

    def get_reference(self, obj) -> str:
        return "${" + variable(obj.name) + "}"

    def service_fields(self) -> dict:
        """Validated data keyed as the services take it."""
        data = dict(self.validated_data)
        if "flow_id" in data:
            data["flow"] = data.pop("flow_id")
        return data
