"""Shapes of the webhooks API; the secret is write-only and shown once, when created."""

from rest_framework import serializers

from flows.models import WebhookAttempt, WebhookDelivery, WebhookSubscription

from .. import EVENT_TYPES


class WebhookSerializer(serializers.ModelSerializer):
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_TYPES))

    class Meta:
        model = WebhookSubscription
        fields = ["id", "url", "events", "description", "is_active", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="The signing secret: shown in this answer only."
    )

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]


class WebhookWriteSerializer(serializers.Serializer):
    """POST (url and events required) and PATCH."""

    url = serializers.CharField(max_length=2000)
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_TYPES))
    secret = serializers.CharField(
        required=False,
        write_only=True,
        help_text="The signing secret (16 to 200 characters); generated when left out.",
    )
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False)


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["number", "at", "status_code", "error", "duration_ms"]
        read_only_fields = fields


class WebhookDeliverySerializer(serializers.ModelSerializer):
    attempts_made = serializers.IntegerField(source="attempts", read_only=True)
    attempts = WebhookAttemptSerializer(source="tries", many=True, read_only=True)
    body = serializers.JSONField(read_only=True, help_text="The signed JSON body as sent.")

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event_id",
            "event_type",
            "stream",
            "status",
            "attempts_made",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "created_at",
            "delivered_at",
            "body",
        ]
        read_only_fields = fields

    def to_representation(self, instance):
        import json

        data = super().to_representation(instance)
        try:
            data["body"] = json.loads(instance.body)
        except ValueError:
            data["body"] = None
        return data
