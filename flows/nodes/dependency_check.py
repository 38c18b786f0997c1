"""dependency_check: waits until another flow's run for the same business date has succeeded."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from ._support import schema_problems
from .base import (
    ExecutionContext,
    NodeDeferred,
    NodeFailed,
    NodeResult,
    NodeType,
    ValidationContext,
    register,
)


@register
class DependencyCheck(NodeType):
    type = "dependency_check"
    label = "Dependency check"
    schema = {
        "type": "object",
        "title": "Dependency check",
        "description": "Succeeds once a run of the flow for the same business date has succeeded.",
        "properties": {
            "flow": {"type": "integer", "minimum": 1, "title": "Flow", "x-widget": "flow"},
            "business_date_offset_days": {
                "type": "integer",
                "minimum": -366,
                "maximum": 366,
                "default": 0,
                "title": "Business date offset (days)",
                "description": "-1: wait for the run of the previous business date.",
            },
            "timeout_s": {
                "type": "integer",
                "minimum": 0,
                "maximum": 7 * 86400,
                "default": 3600,
                "title": "Give up after (s)",
            },
            "poll_s": {
                "type": "integer",
                "minimum": 1,
                "maximum": 3600,
                "default": 30,
                "title": "Check every (s)",
            },
        },
        "required": ["flow"],
        "additionalProperties": False,
    }

    def validate(self, config: dict, ctx: ValidationContext) -> list[tuple[str, str]]:
        problems = schema_problems(self.schema, config)
        if problems:
            return problems
        flow = config["flow"]
        if ctx.flow(flow) is None:
            return [("flow", f"Flow {flow} does not exist in this tenant.")]
        if (
            ctx.flow_id is not None
            and flow == ctx.flow_id
            and not config.get("business_date_offset_days")
        ):
            return [
                (
                    "flow",
                    "A flow cannot wait for its own run of the same business date; set an offset.",
                )
            ]
        return []

    def output_names(self, config: dict) -> list[str]:
        return ["dependency_flow", "dependency_bizdate"]

    def references(self, config: dict) -> dict[str, list]:
        flow = config.get("flow") if isinstance(config, dict) else None
        return {"datasources": [], "flows": [flow] if flow is not None else []}

    def execute(self, ctx: ExecutionContext) -> NodeResult:
        from django.utils import timezone

        cfg = ctx.config
        flow_id = int(cfg["flow"])
        offset = int(cfg.get("business_date_offset_days") or 0)
        timeout_s = int(cfg.get("timeout_s", 3600))
        poll_s = max(1, int(cfg.get("poll_s") or 30))
        start, end = business_day_window(ctx.business_time, offset)
        now = timezone.now()
        state = dict(ctx.state or {})
        first = state.setdefault("first_check", now.isoformat())
        bizdate = (start - timedelta(days=1)).date().isoformat()
        if ctx.flow_run_succeeded(flow_id, start, end):
            ctx.log(f"flow {flow_id} has a succeeded run for business date {bizdate}")
            # Not "bizdate": upstream outputs would shadow the built-in downstream.
            return NodeResult(output={"dependency_flow": flow_id, "dependency_bizdate": bizdate})
        waited = (now - datetime.fromisoformat(first)).total_seconds()
        if waited >= timeout_s:
            raise NodeFailed(
                f"No succeeded run of flow {flow_id} for business date {bizdate} after {waited:.0f}s."
            )
        if first == now.isoformat():
            ctx.log(f"waiting for a succeeded run of flow {flow_id} for business date {bizdate}")
        delay = min(poll_s, max(1.0, timeout_s - waited))
        raise NodeDeferred(delay, state, f"flow {flow_id} not yet succeeded for {bizdate}")


def business_day_window(business_time: datetime, offset_days: int) -> tuple[datetime, datetime]:
    """[start, end) of business times whose bizdate is this run's bizdate + offset.

    bizdate is the day before the business time's date, so runs share a bizdate exactly
    when their business times fall on the same calendar day (in this run's time zone).
    """
    day = business_time.date() + timedelta(days=offset_days)
    tz = business_time.tzinfo
    start = datetime.combine(day, time.min, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
    return start, end
