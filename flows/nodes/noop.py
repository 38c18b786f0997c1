"""noop: does nothing and succeeds (wiring checks and benchmarks; kept as cheap as possible)."""

from __future__ import annotations

from ._support import schema_problems
from .base import ExecutionContext, NodeResult, NodeType, ValidationContext, register


@register
class Noop(NodeType):
    type = "noop"
    label = "No operation"
    schema = {
        "type": "object",
        "title": "No operation",
        "properties": {},
        "additionalProperties": False,
    }

    def validate(self, config: dict, ctx: ValidationContext) -> list[tuple[str, str]]:
        if config == {} or config is None:
            return []
        return schema_problems(self.schema, config)

    def execute(self, ctx: ExecutionContext) -> NodeResult:
        return NodeResult()
