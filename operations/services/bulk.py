"""One O&M action on one run, and the same action on many runs at once (a bulk request).

`run_act` is the single rule both paths follow: the run the user may see (else not found)
and operate (else forbidden), then the action's own service with its state checks. A bulk
request calls it for each run in turn, each in its own transaction, so every run answers
exactly what it would have answered alone, and one refusal does not undo the others.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from accounts.errors import ConflictError
from accounts.selectors import TenantContext
from flows import permissions
from operations import selectors
from operations.choices import BULK_ACTIONS, OperationAction
from operations.models import FlowRun

from .audit import bulk_record, clean_reason
from .control import run_pause, run_rerun, run_restore, run_resume, run_stop

MAX_BULK_RUNS = 100

RUN_ACTIONS: dict[str, Callable[..., FlowRun]] = {
    OperationAction.STOP: run_stop,
    OperationAction.PAUSE: run_pause,
    OperationAction.RESUME: run_resume,
    OperationAction.RERUN: run_rerun,
    OperationAction.RESTORE: run_restore,
}
assert set(RUN_ACTIONS) == set(BULK_ACTIONS)

# What a single action may refuse with; each maps to the answer it has alone (404, 403, 409, 400).
REFUSALS = (Http404, PermissionDenied, ConflictError, ValidationError)


def run_act(*, ctx: TenantContext, run_id, action: str, user, reason: str | None = "") -> FlowRun:
    """`action` on the run `run_id` if the user may operate it: the run (a new one for rerun)."""
    run = selectors.run_get(ctx=ctx, run_id=run_id, action=permissions.OPERATE)
    return RUN_ACTIONS[action](run=run, user=user, reason=reason)


def clean_bulk(*, action, runs) -> tuple[str, list[int]]:
    """The bulk request's action and run ids, or a ValidationError naming the field."""
    if action not in RUN_ACTIONS:
        raise ValidationError({"action": [f"Use one of {', '.join(BULK_ACTIONS)}."]})
    if not isinstance(runs, list) or not runs:
        raise ValidationError({"runs": ["Give a list of run ids."]})
    if len(runs) > MAX_BULK_RUNS:
        raise ValidationError(
            {"runs": [f"At most {MAX_BULK_RUNS} runs per request (this one names {len(runs)})."]}
        )
    if not all(type(r) is int and 0 < r < 2**63 for r in runs):
        raise ValidationError({"runs": ["Each run is a positive integer id."]})
    if len(set(runs)) != len(runs):
        raise ValidationError({"runs": ["Name each run once."]})
    return str(action), list(runs)


def runs_bulk(
    *,
    ctx: TenantContext,
    user,
    action,
    runs,
    reason: str | None = "",
    refusal: Callable[[Exception], tuple[int, dict]],
) -> list[dict]:
    """`action` on each run as alone (run_act); a result per run, in the order given.

    `refusal(exc)` is the interface's answer (status, body) to a refused single action.
    The bulk request itself joins the audit trail beside each run's own record.
    """
    action, run_ids = clean_bulk(action=action, runs=runs)
    reason = clean_reason(reason)
    results = []
    for run_id in run_ids:
        try:
            run = run_act(ctx=ctx, run_id=run_id, action=action, user=user, reason=reason)
        except REFUSALS as exc:
            status, body = refusal(exc)
            results.append({"run": run_id, "result": "refused", "status": status, "errors": body})
            continue
        result = {"run": run_id, "result": "done", "status": 200, "run_status": run.status}
        if action == OperationAction.RERUN:
            result.update(status=201, new_run=run.pk)
        results.append(result)
    bulk_record(tenant_id=ctx.tenant.pk, user=user, action=action, reason=reason, results=results)
    return results
