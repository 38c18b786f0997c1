"""Sub-flow child runs: started by a subflow/foreach node, linked to it, and acted on with it.

A node of a parent run starts a child run of another flow's latest published version
(`child_run`, called by the node type through ExecutionContext.child_run, once per node run
and key: a repeated call finds the child it started). The child carries `parent_run`,
`parent_node_run` and `parent_key`; when it finishes it wakes the waiting node at once
(decisions.finish_run). Stop, pause and resume of a parent act on its active children
(control); a new attempt of the parent node takes its failed child back and restores it.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError

from flows.models import TaskFlow
from flows.nodes.base import NodeFailed
from operations.choices import RunMode, RunStatus, RunTrigger
from operations.engine.core import SUCCEEDED
from operations.models import FlowRun, NodeRun


def _describe(child: FlowRun) -> dict:
    outputs: dict = {}
    if child.status == RunStatus.SUCCEEDED:
        rows = (
            NodeRun.objects.filter(run_id=child.pk, is_latest=True, status=SUCCEEDED)
            .order_by("finished_at", "pk")
            .values_list("output", flat=True)
        )
        for output in rows:
            if isinstance(output, dict):
                outputs.update(output)
    return {"id": child.pk, "status": child.status, "error": child.error, "outputs": outputs}


def child_run(*, parent_run_id: int, node_run_id: int, flow_id: int, parameters, key: str = ""):
    """The child run this node run started under `key`, started now if it has none yet."""
    child = FlowRun.objects.filter(parent_node_run_id=node_run_id, parent_key=key).first()
    if child is None:
        child = _restored_child(parent_run_id, node_run_id, key, parameters) or _start_child(
            parent_run_id, node_run_id, flow_id, parameters, key
        )
    return _describe(child)


def _restored_child(
    parent_run_id: int, node_run_id: int, key: str, parameters=None
) -> FlowRun | None:
    """A new attempt of a node (retry, restore, rerun from) takes its child back.

    A failed or stopped child is restored. A child that succeeded with the same parameters
    is kept as it is when the node's earlier attempt did not succeed (a loop whose item 3 of
    10 failed reruns item 3 only, as Airflow clears a failed mapped task instance); after a
    successful attempt (a deliberate rerun), every child runs anew.
    """
    from .control import run_restore

    node_id = NodeRun.objects.values_list("node_id", flat=True).get(pk=node_run_id)
    old = (
        FlowRun.objects.filter(
            parent_run_id=parent_run_id, parent_node_run__node_id=node_id, parent_key=key
        )
        .exclude(parent_node_run_id=node_run_id)
        .select_related("parent_node_run")
        .order_by("-pk")
        .first()
    )
    if old is None:
        return None
    if (
        old.status == RunStatus.SUCCEEDED
        and old.parent_node_run.status != SUCCEEDED
        and (old.parameters or {}) == (parameters or {})
    ):
        FlowRun.objects.filter(pk=old.pk).update(parent_node_run_id=node_run_id)
        old.parent_node_run_id = node_run_id
        return old
    if old.status not in (RunStatus.FAILED, RunStatus.STOPPED):
        return None
    FlowRun.objects.filter(pk=old.pk).update(parent_node_run_id=node_run_id)
    try:
        run_restore(run=old, user=None)
    except Exception:  # noqa: BLE001 - a child that cannot be restored is started anew
        return None
    old.refresh_from_db()
    return old


def _start_child(parent_run_id, node_run_id, flow_id, parameters, key) -> FlowRun:
    from flows.permissions import flow_rights

    from .creation import run_start

    parent = FlowRun.objects.select_related("flow", "version").get(pk=parent_run_id)
    target = TaskFlow.objects.filter(pk=flow_id, tenant_id=parent.tenant_id).first()
    if target is None:
        raise NodeFailed(f"flow {flow_id} does not exist in this tenant")
    if target.published_version_id is None:
        raise NodeFailed(f"flow {target.name!r} has no published version to run")
    owner = _owner(parent)
    if owner is None or not _may_run(owner, parent, target, flow_rights):
        raise NodeFailed(f"the flow's owner may not run flow {target.name!r}")
    try:
        child = run_start(
            flow=target,
            mode=RunMode.POINT_IN_TIME,
            user=owner,
            business_time=parent.business_time,
            version="published",
            parameters=parameters or {},
            trigger=RunTrigger.SUBFLOW,
            parent=(parent_run_id, node_run_id, key),
        )
    except ValidationError as exc:
        raise NodeFailed(f"child run of {target.name!r} refused: {_messages(exc)}") from None
    except IntegrityError:
        # Another delivery of this node started it meanwhile.
        child = FlowRun.objects.get(parent_node_run_id=node_run_id, parent_key=key)
    return child


def _messages(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    return " ".join(exc.messages)


def _owner(parent: FlowRun):
    """Who the child runs as: the owner of the parent's flow."""
    return parent.flow.owner


def _may_run(owner, parent: FlowRun, target: TaskFlow, flow_rights) -> bool:
    from accounts.selectors import tenant_context_for

    try:
        ctx = tenant_context_for(user=owner, slug=parent.flow.tenant.slug)
    except Exception:  # noqa: BLE001 - no longer a member: may run nothing
        return False
    return flow_rights(ctx, target).operate
