"""Serializer fields as strict as the schema they publish."""

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """Text only: DRF's CharField turns a JSON number into text ("30.0"), which the schema
    (type: string) rules out; a number where text is expected is a 400 naming the field."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)
