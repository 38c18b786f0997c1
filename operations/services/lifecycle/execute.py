"""Executing a claimed node, outside any transaction: its configuration rendered, its type run.

`render_node_config` is the one place where a node's configuration becomes what its
executor sees (variables, upstream outputs, secrets); `node_run_claimed` runs the node type
and turns whatever it does into one of three outcomes.

Secrets hook (flows.secrets.runtime): the rendered configuration kept on the claim (and
stored as the run's rendered_config) shows *** for each ${secret.NAME}; the node executes
`claim.secrets.executed`, and its log lines, output and error pass `claim.secrets.redact`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from flows.secrets.runtime import (
    NO_SECRETS,
    RenderedConfig,
    render_config_masked,
    render_with_secrets,
)
from flows.services.validation import run_validation_context
from operations.choices import RunMode
from operations.engine.core import SUCCEEDED
from operations.models import FlowRun, NodeRun
from operations.plan import Plan

from ..logs import log_line
from ..monitor import Tracked, monitor

logger = logging.getLogger("tributary.engine")


@dataclass
class Success:
    output: dict = field(default_factory=dict)
    branch: str | None = None


@dataclass
class Failure:
    message: str
    retryable: bool = True


@dataclass
class Deferred:
    seconds: float
    state: dict
    message: str = ""
    # When the check that deferred began (what it saw of its child runs is from then on).
    checked_at: datetime | None = None


def node_run_claimed(claim):
    """Execute a claimed node (outside any transaction); returns its outcome."""
    if claim.spec is None:
        return Failure(
            f"node {claim.row['node_name']} is not part of the run's flow version", False
        )
    if claim.render_error:
        return Failure(claim.render_error, retryable=False)
    if claim.dry:
        claim.tracked.log(log_line("dry run: recorded as succeeded without executing"))
        return Success()
    if (
        claim.info.get("node_scope") is not None
        and claim.info["mode"] == RunMode.TRY
        and claim.spec.type == "dependency_check"
    ):
        # As in DMS: a test run of some nodes does not wait for other flows.
        claim.tracked.log(log_line("node-scoped test run: dependency check skipped"))
        return Success()
    secrets = claim.secrets
    executed, redact = (
        (secrets.executed, secrets.redact) if secrets else (claim.rendered, NO_SECRETS)
    )
    return _execute(claim.row, claim.spec, executed, claim.tracked, claim.plan.zone, redact=redact)


def render_node_config(
    row: dict, plan: Plan, spec, *, tolerant: bool
) -> tuple[dict | None, str, RenderedConfig | None]:
    """The node's configuration with variables and the run's parameters substituted
    (secrets as ***), or an error
    message; and the secrets hook's rendering, which holds the values to execute with."""
    from flows.parameters import as_text
    from flows.variables import VariableError, resolve, variable_value

    if spec is None:
        return None, "", None
    outputs: dict = {}
    if plan.needs_outputs(spec.id):
        ancestors = plan.ancestors(spec.id)
        found = dict(
            NodeRun.objects.filter(
                run_id=row["run_id"], is_latest=True, status=SUCCEEDED, node_id__in=ancestors
            ).values_list("node_id", "output")
        )
        for node_id in ancestors:  # farthest first: nearer ancestors win
            output = found.get(node_id)
            if isinstance(output, dict):
                name = plan.nodes[node_id].name
                for key, value in output.items():
                    if not variable_value(value):  # e.g. a SQL node's rows
                        continue
                    outputs[key] = value
                    outputs[f"{name}.{key}"] = value
    try:
        values = resolve(
            plan.variables,
            row["run__business_time"].astimezone(plan.zone),
            flow_id=row["run__flow_id"],
            run_id=row["run_id"],
            outputs=outputs,
            node_definitions=list(spec.variables),
            parameters={
                name: as_text(value) for name, value in (row.get("run__parameters") or {}).items()
            },
        )
        # Names the node fills in itself (a loop's ${item.<column>}) stay as written.
        values.update({name: "${" + name + "}" for name in _late_names(spec)})
        if tolerant:  # a dry run executes nothing: no secret is decrypted
            return render_config_masked(spec.config, values), "", None
        secrets = render_with_secrets(
            spec.config, values, tenant_id=row["tenant_id"], flow_id=row["run__flow_id"]
        )
        return secrets.shown, "", secrets
    except VariableError as exc:
        if tolerant:
            return spec.config, "", None
        return spec.config, f"configuration of node {spec.name}: {exc.message}", None


def _late_names(spec) -> set[str]:
    from flows.nodes import base as nodes

    node_type = nodes.get(spec.type)
    return node_type.late_references(spec.config) if node_type is not None else set()


def _dependency_runs(tenant_id: int, run_id: int):
    """The runs a dependency check of run `run_id` may count: its tenant's, not itself. A dry
    run counts: as DMS documents, it "generates a successful auto-triggering record"."""
    return FlowRun.objects.filter(tenant_id=tenant_id).exclude(pk=run_id)


def run_outcomes_lookup(tenant_id: int, run_id: int):
    """ExecutionContext.run_outcomes for a node of this run: {business time: succeeded} of
    another flow's (or this flow's other) runs in [start, end); with a node name, whether that
    node's latest attempt succeeded in one of the runs at that business time."""
    from django.db.models import Case, IntegerField, Max, Value, When

    def run_outcomes(flow_id: int, start, end, node_name=None) -> dict:
        runs = _dependency_runs(tenant_id, run_id).filter(
            flow_id=flow_id, business_time__gte=start, business_time__lt=end
        )
        if node_name:
            rows = NodeRun.objects.filter(
                tenant_id=tenant_id, run__in=runs, node_name=node_name, is_latest=True
            )
            moment = "run__business_time"
        else:
            rows, moment = runs, "business_time"
        ok = Max(
            Case(
                When(status=SUCCEEDED, then=Value(1)), default=Value(0), output_field=IntegerField()
            )
        )
        return {
            at: bool(succeeded)
            for at, succeeded in rows.order_by()
            .values(moment)
            .annotate(ok=ok)
            .values_list(moment, "ok")
        }

    return run_outcomes


def run_owner_id(run_id: int) -> int | None:
    """The owner a run acts for: its version's (a published version keeps the owner it was
    published with), else its flow's."""
    from django.db.models.functions import Coalesce

    return (
        FlowRun.objects.filter(pk=run_id)
        .values_list(Coalesce("version__owner_id", "flow__owner_id"), flat=True)
        .first()
    )


def child_run_lookup(run_id: int, node_run_id: int):
    """ExecutionContext.child_run for a node of this run (sub-flows and loops)."""

    def child_run(flow_id: int, parameters: dict, key: str = "") -> dict:
        from ..subflows import child_run as lookup

        return lookup(
            parent_run_id=run_id,
            node_run_id=node_run_id,
            flow_id=flow_id,
            parameters=parameters,
            key=key,
        )

    return child_run


def _execute(row: dict, spec, rendered: dict, tracked: Tracked, zone, *, redact=NO_SECRETS):
    from celery.exceptions import SoftTimeLimitExceeded

    from flows.nodes import base as nodes

    node_type = nodes.get(spec.type)
    if node_type is None:
        return Failure(f"unknown node type {spec.type!r}", retryable=False)
    ctx = nodes.ExecutionContext(
        tenant_id=row["tenant_id"],
        flow_id=row["run__flow_id"],
        run_id=row["run_id"],
        node_run_id=row["id"],
        node_id=spec.id,
        node_name=spec.name,
        config=rendered,
        timeout=float(spec.timeout),
        business_time=row["run__business_time"].astimezone(zone),
        attempt=row["attempt"],
        state=dict(row["defer_state"] or {}),
        log=lambda message: tracked.log(log_line(redact(str(message)))),
        cancelled=tracked.cancelled.is_set,
        on_cancel=tracked.on_cancel,
        run_outcomes=run_outcomes_lookup(row["tenant_id"], row["run_id"]),
        validation=run_validation_context(
            tenant_id=row["tenant_id"],
            flow_id=row["run__flow_id"],
            owner_id=lambda: run_owner_id(row["run_id"]),
        ),
        child_run=child_run_lookup(row["run_id"], row["id"]),
    )
    monitor.track(tracked)
    checked_at = timezone.now()
    try:
        result = node_type.execute(ctx)
        outcome = Success(
            output=dict(getattr(result, "output", None) or {}),
            branch=getattr(result, "branch", None),
        )
    except nodes.NodeDeferred as exc:
        outcome = Deferred(
            seconds=max(0.0, float(exc.seconds)),
            state=exc.state,
            message=str(exc),
            checked_at=checked_at,
        )
    except nodes.NodeFailed as exc:
        outcome = Failure(str(exc) or "failed")
    except SoftTimeLimitExceeded:
        outcome = Failure(f"timed out after {spec.timeout}s (worker time limit)")
    except Exception as exc:  # noqa: BLE001 - an executor bug fails the node, not the worker
        logger.exception("node %s (run %s) raised", spec.name, row["run_id"])
        outcome = Failure(f"internal error: {type(exc).__name__}: {exc}")
    finally:
        monitor.untrack(tracked)
    if tracked.cancelled.is_set() and not isinstance(outcome, Success):
        if tracked.reason == "timeout":
            outcome = Failure(f"timed out after {spec.timeout}s")
        else:
            outcome = Failure("stopped while running", retryable=False)
    return _redacted(outcome, redact) if redact else outcome


def _redacted(outcome, redact):
    """The outcome with every secret value replaced by *** (secrets hook)."""
    if isinstance(outcome, Success):
        outcome.output = redact.value(outcome.output)
    elif isinstance(outcome, Failure | Deferred):
        outcome.message = redact(outcome.message)
    return outcome
