"""subflow: runs another flow's latest published version as a child run and waits for it.

The child runs with this run's business time and the node's `parameters` (each value may use
`${var}`, already rendered when the node executes). The node waits without holding a worker
(deferred between two looks at the child, and woken at once when the child finishes),
succeeds when the child succeeded and fails otherwise; the child's node outputs become the
node's outputs. Starting and reading the child is the engine's (`ExecutionContext.child_run`):
flows does not create runs. Publishing refuses a cycle of flows through sub-flow nodes, and
the flow's owner must be allowed to run the target (flows.services.publishing).
"""

from __future__ import annotations

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

# Node types that run another flow as child runs (publishing checks their owners and cycles).
CHILD_FLOW_TYPES = ("subflow", "foreach")
# Seconds between two looks at a child that is still running (it also wakes the node).
POLL_S = 10
# A child in one of these states is finished.
CHILD_DONE = ("succeeded", "failed", "stopped", "skipped")


def parameters_schema() -> dict:
    return {
        "type": "object",
        "title": "Parameters",
        "description": "Values of the target flow's parameters; ${var} may be used.",
        "additionalProperties": {"type": ["string", "number", "integer", "boolean", "null"]},
    }


@register
class Subflow(NodeType):
    type = "subflow"
    label = "Sub-flow"
    schema = {
        "type": "object",
        "title": "Sub-flow",
        "description": (
            "Runs the latest published version of another flow as a child run, with this "
            "run's business time, and succeeds or fails with it."
        ),
        "properties": {
            "flow": {"type": "integer", "minimum": 1, "title": "Flow", "x-widget": "flow"},
            "parameters": parameters_schema(),
        },
        "required": ["flow"],
        "additionalProperties": False,
    }

    def validate(self, config: dict, ctx: ValidationContext) -> list[tuple[str, str]]:
        problems = schema_problems(self.schema, config)
        if problems:
            return problems
        return target_problems(config["flow"], ctx)

    def references(self, config: dict) -> dict[str, list]:
        flow = config.get("flow") if isinstance(config, dict) else None
        return {"datasources": [], "flows": [flow] if flow is not None else []}

    def outputs_dynamic(self, config: dict) -> bool:
        return True  # whatever the child's nodes export

    def output_names(self, config: dict) -> list[str]:
        return ["child_run"]

    def execute(self, ctx: ExecutionContext) -> NodeResult:
        return wait_for_child(ctx, int(ctx.config["flow"]), ctx.config.get("parameters") or {})


def target_problems(flow, ctx: ValidationContext) -> list[tuple[str, str]]:
    """A sub-flow target must be another flow of the tenant the owner can see."""
    if ctx.flow(flow) is None:
        return [("flow", f"Flow {flow} does not exist in this tenant.")]
    if ctx.flow_id is not None and flow == ctx.flow_id:
        return [("flow", "A flow cannot run itself as a sub-flow.")]
    return []


def wait_for_child(
    ctx: ExecutionContext, flow_id: int, parameters: dict, key: str = ""
) -> NodeResult:
    """Start the child run (once) and wait for it without holding a worker."""
    child = ctx.child_run(flow_id, parameters, key)
    status = child["status"]
    if status not in CHILD_DONE:
        if not ctx.state.get("child"):
            ctx.log(f"started child run {child['id']} of flow {flow_id}")
        raise NodeDeferred(POLL_S, {"child": child["id"]}, f"waiting for child run {child['id']}")
    if status != "succeeded":
        raise NodeFailed(f"child run {child['id']} of flow {flow_id} {status}: {child['error']}")
    ctx.log(f"child run {child['id']} succeeded")
    return NodeResult(output={**child["outputs"], "child_run": child["id"]})
