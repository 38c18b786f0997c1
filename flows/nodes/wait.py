"""wait: succeeds after a number of seconds without holding a worker (NodeDeferred)."""

from __future__ import annotations

from datetime import datetime, timedelta

from ._support import schema_problems
from .base import ExecutionContext, NodeDeferred, NodeResult, NodeType, ValidationContext, register


@register
class Wait(NodeType):
    type = "wait"
    label = "Wait"
    schema = {
        "type": "object",
        "title": "Wait",
        "properties": {
            "seconds": {"type": "integer", "minimum": 0, "maximum": 86400, "title": "Seconds"},
        },
        "required": ["seconds"],
        "additionalProperties": False,
    }

    def validate(self, config: dict, ctx: ValidationContext) -> list[tuple[str, str]]:
        return schema_problems(self.schema, config)

    def output_names(self, config: dict) -> list[str]:
        return ["waited_s"]

    def execute(self, ctx: ExecutionContext) -> NodeResult:
        from django.utils import timezone

        seconds = int(ctx.config.get("seconds") or 0)
        now = timezone.now()
        until_text = (ctx.state or {}).get("until")
        if until_text is None:
            if seconds <= 0:
                return NodeResult(output={"waited_s": 0})
            until = now + timedelta(seconds=seconds)
            ctx.log(f"waiting {seconds}s, until {until.isoformat()}")
            raise NodeDeferred(
                seconds, {"until": until.isoformat()}, f"waiting until {until.isoformat()}"
            )
        until = datetime.fromisoformat(until_text)
        if now >= until:
            return NodeResult(output={"waited_s": seconds})
        raise NodeDeferred(
            (until - now).total_seconds(), {"until": until_text}, f"waiting until {until_text}"
        )
