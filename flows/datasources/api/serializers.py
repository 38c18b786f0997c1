"""Data sources as the API shows them: never the password, only whether one is set."""

from rest_framework import serializers

from accounts.api.fields import StrictCharField
from flows.choices import Engine
from flows.models import DataSource

from ..services import MAX_PASSWORD_LENGTH


class DataSourceSerializer(serializers.ModelSerializer):
    """A data source as the API shows it: never the password, only whether one is set."""

    engine = serializers.ChoiceField(choices=Engine.choices)
    password = StrictCharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=MAX_PASSWORD_LENGTH,
        style={"input_type": "password"},
        help_text="Write-only. Omit to keep the stored password; an empty text clears it.",
    )
    has_password = serializers.SerializerMethodField()
    options = serializers.JSONField(required=False)
    max_concurrency = serializers.IntegerField(
        min_value=1,
        max_value=100_000,
        allow_null=True,
        required=False,
        help_text="The pool: nodes running on this data source at once (null: no cap).",
    )

    class Meta:
        model = DataSource
        fields = [
            "id",
            "name",
            "engine",
            "host",
            "port",
            "database",
            "username",
            "password",
            "has_password",
            "options",
            "max_concurrency",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "has_password", "created_at", "updated_at"]
        # The service checks uniqueness per tenant and names the field.
        extra_kwargs = {"name": {"validators": []}, "port": {"max_value": 65535, "min_value": 1}}

    def get_has_password(self, obj) -> bool:
        flag = getattr(obj, "has_password", None)
        if flag is None:
            return bool(obj.password_encrypted)
        return bool(flag)


class DataSourceTestSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    error = StrictCharField(required=False)
