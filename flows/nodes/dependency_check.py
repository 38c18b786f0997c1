"""dependency_check: waits until another flow, one of its nodes, or this flow's previous cycle
has succeeded for a window of business times.

The window is counted in the cycle of what is waited for, from this run's business time (on
its wall clock): `cycle` hour, day, week (Monday to Sunday) or month, and `offset` cycles
from the one holding the business time (0 the same hour/day/week/month, -1 the previous one).
`require` says what must have succeeded in it:

- `latest`: the latest fire time of the target flow's schedule in the window has a succeeded
  run (or, for a flow without a schedule, the latest business time run in the window);
- `all`: every fire time in the window has a succeeded run (without a schedule: every
  business time run in the window, and at least one);
- `any`: some run in the window succeeded (what a check of the older `{"flow",
  "business_date_offset_days"}` form means; `normalize` turns that form into this one).

A fire time counts as succeeded when a run with exactly that business time succeeded (a
scheduled run, a backfill or a rerun of it), or, for a node target, when that node succeeded
in such a run. Fire times come from scheduling's one calendar (the `fire_times_window` hook);
runs from the engine's lookup (`ExecutionContext.run_outcomes`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from dateutil.relativedelta import relativedelta

from ._support import schema_problems
from .base import (
    ExecutionContext,
    NodeDeferred,
    NodeFailed,
    NodeResult,
    NodeType,
    ValidationContext,
    register,
    unseen_flow,
)

CYCLES = ("hour", "day", "week", "month")
REQUIRE = ("latest", "all", "any")
LEGACY_OFFSET = "business_date_offset_days"
MAX_OFFSET = 1000
# Node names listed in a "no such node" message, at most.
NAMES_SHOWN = 20


@register
class DependencyCheck(NodeType):
    type = "dependency_check"
    label = "Dependency check"
    schema = {
        "type": "object",
        "title": "Dependency check",
        "description": (
            "Succeeds once the flow (or one of its nodes) has succeeded for the chosen window: "
            "e.g. its latest run of the previous hour, or every run of the same day. To wait "
            "for this flow's own previous cycle, choose this flow and an offset of -1."
        ),
        "properties": {
            "flow": {"type": "integer", "minimum": 1, "title": "Flow", "x-widget": "flow"},
            "node": {
                "type": "string",
                "maxLength": 128,
                "title": "Node of that flow",
                "description": "Wait for this node only (its name); empty: the whole flow.",
            },
            "cycle": {
                "enum": list(CYCLES),
                "default": "day",
                "title": "Window: a cycle of",
                "x-enum-labels": [
                    "one hour",
                    "one day",
                    "one week (Monday to Sunday)",
                    "one month",
                ],
            },
            "offset": {
                "type": "integer",
                "minimum": -MAX_OFFSET,
                "maximum": MAX_OFFSET,
                "default": 0,
                "title": "Which cycle",
                "description": (
                    "Counted from this run's business time: 0 the same hour/day/week/month, "
                    "-1 the previous one (the previous hour, yesterday, last week, last month), "
                    "-2 the one before."
                ),
            },
            "require": {
                "enum": list(REQUIRE),
                "default": "latest",
                "title": "What must have succeeded",
                "x-enum-labels": [
                    "its latest fire time in the window",
                    "every fire time in the window",
                    "any run in the window",
                ],
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

    def normalize(self, config):
        """The configuration in today's form: the older {"flow", "business_date_offset_days"}
        form (a succeeded run of that flow on the business date `offset` days away) becomes
        cycle day, that offset, require any. Anything else is returned unchanged."""
        if not isinstance(config, dict):
            return config
        if any(key in config for key in ("cycle", "offset", "require")):
            return config
        out = {k: v for k, v in config.items() if k != LEGACY_OFFSET}
        legacy = config.get(LEGACY_OFFSET)
        out.update(cycle="day", offset=0 if legacy is None else legacy, require="any")
        return out

    def validate(self, config: dict, ctx: ValidationContext) -> list[tuple[str, str]]:
        if (
            isinstance(config, dict)
            and LEGACY_OFFSET in config
            and any(key in config for key in ("cycle", "offset", "require"))
        ):
            return [
                (
                    LEGACY_OFFSET,
                    "This is the older form of cycle day + offset; remove it and use offset.",
                )
            ]
        config = self.normalize(config)
        problems = schema_problems(self.schema, config)
        if problems:
            return problems
        flow = config["flow"]
        seen = self.target_problems(config, ctx)
        if seen:
            return seen
        node = (config.get("node") or "").strip()
        if node:
            names = ctx.node_names(flow) or set()
            if node not in names:
                shown = ", ".join(sorted(names)[:NAMES_SHOWN]) or "none"
                more = " …" if len(names) > NAMES_SHOWN else ""
                return [
                    (
                        "node",
                        f"Flow {flow} has no node named {node!r}; its nodes are: {shown}{more}.",
                    )
                ]
        if ctx.flow_id is not None and flow == ctx.flow_id and config.get("offset", 0) >= 0:
            return [
                (
                    "offset",
                    "A flow cannot wait for its own run of the same or a later cycle; "
                    "use -1 for its previous cycle.",
                )
            ]
        return []

    def target_problems(self, config: dict, ctx: ValidationContext) -> list[tuple[str, str]]:
        """The flow named must be one the owner of this node's flow can see: checked when the
        node is saved, when its flow is published and again when it runs. ctx.flow resolves in
        the owner's view, and a flow that does not exist gets the same answer."""
        if ctx.flow(config["flow"]) is None:
            return [("flow", unseen_flow(config["flow"]))]
        return []

    def output_names(self, config: dict) -> list[str]:
        return [
            "dependency_flow",
            "dependency_node",
            "dependency_bizdate",
            "dependency_window_start",
            "dependency_window_end",
        ]

    def references(self, config: dict) -> dict[str, list]:
        flow = config.get("flow") if isinstance(config, dict) else None
        return {"datasources": [], "flows": [flow] if flow is not None else []}

    def execute(self, ctx: ExecutionContext) -> NodeResult:
        from django.utils import timezone

        from flows import hooks

        cfg = self.normalize(ctx.config)
        flow_id = int(cfg["flow"])
        node = (cfg.get("node") or "").strip() or None
        cycle = cfg.get("cycle") or "day"
        offset = int(cfg.get("offset") or 0)
        require = cfg.get("require") or "latest"
        timeout_s = int(cfg.get("timeout_s", 3600))
        poll_s = max(1, int(cfg.get("poll_s") or 30))
        start, end = cycle_window(ctx.business_time, cycle, offset)
        target = f"flow {flow_id}" + (f" node {node!r}" if node else "")
        what = describe_requirement(require, cycle, offset, start, end)
        if ctx.validation is None:
            raise NodeFailed(f"{target}: the owner's view of flows was not given; cannot check.")
        unseen = self.target_problems({"flow": flow_id}, ctx.validation)
        if unseen:
            raise NodeFailed(unseen[0][1])

        try:
            fire_times = hooks.fire_times_window(flow_id=flow_id, start=start, end=end)
        except ValueError as exc:
            raise NodeFailed(f"{target}: {exc}") from None
        outcomes = ctx.run_outcomes(flow_id, start, end, node)
        satisfied, missing = judge(require, fire_times, outcomes)

        now = timezone.now()
        state = dict(ctx.state or {})
        first = state.setdefault("first_check", now.isoformat())
        if satisfied:
            ctx.log(f"{target} has succeeded: {what}")
            # Not "bizdate": upstream outputs would shadow the built-in downstream.
            return NodeResult(
                output={
                    "dependency_flow": flow_id,
                    "dependency_node": node or "",
                    "dependency_bizdate": (start - timedelta(days=1)).date().isoformat(),
                    "dependency_window_start": start.isoformat(),
                    "dependency_window_end": end.isoformat(),
                }
            )
        waited = (now - datetime.fromisoformat(first)).total_seconds()
        if waited >= timeout_s:
            raise NodeFailed(f"{target} has not succeeded ({what}; {missing}) after {waited:.0f}s.")
        if first == now.isoformat():
            ctx.log(f"waiting for {target}: {what}")
        delay = min(poll_s, max(1.0, timeout_s - waited))
        raise NodeDeferred(delay, state, f"{target} not yet succeeded: {missing}")


def judge(
    require: str, fire_times: list[datetime] | None, outcomes: dict[datetime, bool]
) -> tuple[bool, str]:
    """(satisfied, what is missing) for a requirement, the fire times in the window (None:
    the target has no schedule) and {business time: some run at it succeeded} in the window."""
    if require == "any":
        return any(outcomes.values()), "no succeeded run in the window"
    if fire_times:
        wanted = [max(fire_times)] if require == "latest" else sorted(fire_times)
        pending = [t for t in wanted if not outcomes.get(t)]
        if not pending:
            return True, ""
        shown = ", ".join(_moment(t) for t in pending[:5]) + (" …" if len(pending) > 5 else "")
        return False, f"no succeeded run for fire time {shown}"
    if not outcomes:
        return False, "no run in the window"
    if require == "latest":
        latest = max(outcomes)
        return outcomes[latest], f"the latest run ({_moment(latest)}) has not succeeded"
    failed = [t for t, ok in sorted(outcomes.items()) if not ok]
    return not failed, f"{len(failed)} business time(s) without a succeeded run"


def cycle_window(business_time: datetime, cycle: str, offset: int) -> tuple[datetime, datetime]:
    """[start, end) of the cycle `offset` cycles from the one holding `business_time`.

    Days, weeks (Monday first) and months follow the business time's wall clock; hours are
    counted in absolute time, so a window never starts in a clock-change gap.
    """
    tz = business_time.tzinfo
    if cycle == "hour":
        start = business_time.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        start = start + timedelta(hours=offset)
        return start.astimezone(tz), (start + timedelta(hours=1)).astimezone(tz)
    day = business_time.date()
    if cycle == "week":
        first = day - timedelta(days=day.weekday()) + timedelta(weeks=offset)
        last = first + timedelta(weeks=1)
    elif cycle == "month":
        first = date(day.year, day.month, 1) + relativedelta(months=offset)
        last = first + relativedelta(months=1)
    else:
        first = day + timedelta(days=offset)
        last = first + timedelta(days=1)
    return (
        datetime.combine(first, time.min, tzinfo=tz),
        datetime.combine(last, time.min, tzinfo=tz),
    )


_PREVIOUS = {"hour": "the previous hour", "day": "the previous day", "week": "last week"}


def describe_window(cycle: str, offset: int) -> str:
    """The window in words: "the same day", "the previous hour", "last month", "3 weeks earlier"."""
    if offset == 0:
        return f"the same {cycle}"
    if offset == -1:
        return _PREVIOUS.get(cycle, f"last {cycle}")
    if offset == 1:
        return f"the next {cycle}"
    return f"{abs(offset)} {cycle}s {'earlier' if offset < 0 else 'later'}"


def describe_requirement(
    require: str, cycle: str, offset: int, start: datetime, end: datetime
) -> str:
    what = {
        "latest": "its latest fire time of",
        "all": "every fire time of",
        "any": "a run of",
    }.get(require, require)
    return f"{what} {describe_window(cycle, offset)} ({_moment(start)} to {_moment(end)})"


def _moment(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M %z").strip()
