"""Run and node events for the tenant's webhooks (flows.webhooks), reported explicitly by
the services where they happen: a run started or finished, a node failed or is retried."""

from __future__ import annotations

from flows.webhooks.services import webhook_event
from operations.models import FlowRun, NodeRun

# A finished run's status -> its event.
FINISHED = {"succeeded": "run.succeeded", "failed": "run.failed", "stopped": "run.stopped"}


def run_data(run) -> dict:
    """The run's public fields, as the runs API names them (a FlowRun, or its id)."""
    if isinstance(run, FlowRun):
        return _fields(run)
    run = (
        FlowRun.objects.select_related("flow", "version")
        .only(
            "id",
            "tenant_id",
            "flow__id",
            "flow__name",
            "version__number",
            "mode",
            "trigger",
            "status",
            "business_time",
            "created_at",
            "started_at",
            "finished_at",
            "parameters",
            "error",
        )
        .get(pk=run)
    )
    return _fields(run)


def _fields(run: FlowRun) -> dict:
    return {
        "id": run.pk,
        "flow": run.flow_id,
        "flow_name": run.flow.name,
        "version": run.version.number if run.version_id else None,
        "mode": run.mode,
        "trigger": run.trigger,
        "status": run.status,
        "business_time": run.business_time,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "parameters": run.parameters,
        "error": run.error,
    }


def node_data(node_run: NodeRun) -> dict:
    return {
        "id": node_run.pk,
        "node": node_run.node_id,
        "node_name": node_run.node_name,
        "node_type": node_run.node_type,
        "attempt": node_run.attempt,
        "status": node_run.status,
        "error": node_run.error,
    }


def run_webhook(*, run, event_type: str, node_run=None, tenant_id: int | None = None, extra=None):
    """Report a run's (or one of its nodes') event. `run` is a FlowRun as the caller holds it
    (also unsaved changes, e.g. a run finishing), or a run id to read. `extra`: more of the
    event's data beside "run" and "node" (e.g. {"deadline": ...})."""
    run_id = getattr(run, "pk", run)
    if isinstance(run, FlowRun):
        tenant_id = run.tenant_id
    if tenant_id is None:
        tenant_id = FlowRun.objects.filter(pk=run_id).values_list("tenant_id", flat=True).first()

    def data() -> dict:
        out = {"run": run_data(run)}
        if node_run is not None:
            out["node"] = node_data(node_run)
        out.update(extra or {})
        return out

    return webhook_event(tenant=tenant_id, event_type=event_type, stream=f"run:{run_id}", data=data)
