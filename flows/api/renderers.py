"""YAML in and out for flow documents (flows as code)."""

import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer

from flows import exporting


class YAMLRenderer(BaseRenderer):
    media_type = "application/yaml"
    format = "yaml"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        # Error bodies hold str subclasses (ErrorDetail) that safe_dump refuses: plain JSON first.
        plain = json.loads(json.dumps(data, default=str))
        return exporting.dump(plain, "yaml").encode("utf-8")


class DocumentJSONRenderer(BaseRenderer):
    """JSON with the stable indentation the export promises (so exports diff cleanly)."""

    media_type = "application/json"
    format = "json"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        return exporting.dump(json.loads(json.dumps(data, default=str)), "json").encode("utf-8")


class YAMLParser(BaseParser):
    media_type = "application/yaml"

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return exporting.parse(stream.read(exporting.MAX_DOCUMENT_BYTES + 1))
        except exporting.DocumentError as exc:
            raise ParseError({"document": exc.errors}) from None


class TextYAMLParser(YAMLParser):
    media_type = "text/yaml"


class XYAMLParser(YAMLParser):
    media_type = "application/x-yaml"
