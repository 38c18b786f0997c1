"""The O&M actions in the tenant's audit trail: one explicit record per action (no signals).

The control and creation services call `operation_record` in the action's own transaction,
so a refused action leaves no record and a done one always has its record. The reason an
operator gives is checked here, once, for the API, the console and the admin alike.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from operations.choices import OperationAction
from operations.models import REASON_MAX_LENGTH, FlowRun, OperationRecord


def clean_reason(reason) -> str:
    """The operator's optional reason, trimmed; a ValidationError naming `reason` otherwise."""
    if reason is None:
        return ""
    if not isinstance(reason, str):
        raise ValidationError({"reason": ["Give the reason as text (a JSON string)."]})
    reason = reason.strip()
    if len(reason) > REASON_MAX_LENGTH:
        raise ValidationError(
            {
                "reason": [
                    f"Keep the reason to {REASON_MAX_LENGTH} characters (this one has {len(reason)})."
                ]
            }
        )
    if "\x00" in reason:
        raise ValidationError({"reason": ["The reason may not contain NUL characters."]})
    return reason


def _user(user):
    return user if getattr(user, "is_authenticated", False) else None


def operation_record(
    *,
    action: OperationAction | str,
    user,
    run: FlowRun | None = None,
    flow=None,
    reason: str = "",
    detail: dict | None = None,
) -> OperationRecord:
    """Record one O&M action (call it inside the action's transaction)."""
    flow = flow if flow is not None else (run.flow if run is not None else None)
    return OperationRecord.objects.create(
        tenant_id=(run or flow).tenant_id,
        user=_user(user),
        action=action,
        run=run,
        flow=flow,
        flow_name=getattr(flow, "name", "")[:200] if flow is not None else "",
        reason=reason,
        detail=detail or {},
    )


def bulk_record(*, tenant_id: int, user, action: str, reason: str, results: list[dict]):
    """Record a bulk request: its action, the runs it named and what became of each."""
    done = [r["run"] for r in results if r["result"] == "done"]
    refused = {str(r["run"]): r["status"] for r in results if r["result"] != "done"}
    return OperationRecord.objects.create(
        tenant_id=tenant_id,
        user=_user(user),
        action=OperationAction.BULK,
        reason=reason,
        detail={
            "action": action,
            "runs": [r["run"] for r in results],
            "done": done,
            "refused": refused,
        },
    )
