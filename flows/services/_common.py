"""Helpers shared by the flow services: history attribution, revisions, lookups."""

from __future__ import annotations

import json
from contextlib import contextmanager
from types import SimpleNamespace

from django.core.exceptions import ValidationError
from simple_history.models import HistoricalRecords

from accounts.selectors import member_context

from .. import hooks
from ..models import DataSource, TaskFlow
from ..permissions import visibility_filter

# Oversized input is refused with a 400, not stored.
MAX_CONFIG_BYTES = 64 * 1024
MAX_VARIABLES = 200
MAX_NODES = 500
# Edges of one flow; a DAG of MAX_NODES nodes rarely needs more than a few per node.
MAX_EDGES = 4 * MAX_NODES


class FlowProblems(ValidationError):
    """Validation of a whole flow failed; `problems` maps a node name (or "flow") to messages."""

    def __init__(self, problems: dict[str, list[str]]):
        self.problems = {key: list(msgs) for key, msgs in problems.items() if msgs}
        flat = [f"{key}: {msg}" for key, msgs in self.problems.items() for msg in msgs]
        super().__init__({"problems": flat or ["invalid flow"]})


def set_history(obj, user, reason: str) -> None:
    """Attribute the next history row of `obj` to `user` with a reason."""
    obj._history_user = user
    obj._change_reason = reason


@contextmanager
def history_actor(user):
    """History rows written by third-party code (guardian) inside the block name `user`."""
    context = HistoricalRecords.context
    missing = object()
    previous = getattr(context, "request", missing)
    context.request = SimpleNamespace(user=user)
    try:
        yield
    finally:
        if previous is missing:
            try:
                del context.request
            except AttributeError:
                pass
        else:
            context.request = previous


def lock_flow(flow: TaskFlow) -> TaskFlow:
    """Re-read the flow under a row lock; callers are inside transaction.atomic."""
    return TaskFlow.objects.select_for_update().get(pk=flow.pk)


def bump_revision(flow: TaskFlow, *, locked: TaskFlow | None = None) -> None:
    """Mark the editing version changed (has_unpublished_changes) without a history row."""
    current = (locked or TaskFlow.objects.only("edit_revision").get(pk=flow.pk)).edit_revision
    flow.edit_revision = current + 1
    # The revision counter is bookkeeping: the change itself is in the node/edge/flow history.
    flow.save_without_historical_record(update_fields=["edit_revision", "updated_at"])
    if locked is not None and locked is not flow:
        locked.edit_revision = flow.edit_revision


def json_size(value) -> int:
    return len(json.dumps(value, default=str))


def schedule_sync(flow: TaskFlow) -> None:
    """Keep the flow's beat entry in step (scheduling app), in the caller's transaction."""
    hooks.schedule_sync(flow=flow)


_UNSET = object()


def _int_or_none(value):
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class TenantLookups:
    """Cached same-tenant lookups of data sources, flows and secret names for node validation.

    Flows resolve in the view of `owner_id`, the owner of the flow being validated (an id, or
    a callable giving it when first needed): a node may only name a flow its flow's owner can
    see (the permission table's visibility), so a dependency never tells a member whether a
    private flow succeeded. A flow they cannot see resolves to None, like one that does not
    exist, and an owner who is no longer an active member sees none.
    """

    def __init__(self, tenant_id: int, *, owner_id):
        self.tenant_id = tenant_id
        self._owner_id = owner_id
        self._visibility = _UNSET
        self._datasources: dict = {}
        self._flows: dict = {}
        self._node_names: dict = {}
        self._secrets: dict = {}

    @classmethod
    def for_flow(cls, flow: TaskFlow) -> TenantLookups:
        """Lookups for validating a node of `flow`, in its owner's view."""
        return cls(flow.tenant_id, owner_id=flow.owner_id)

    def _owner_visibility(self):
        """False when the owner sees no flow, None when every flow, else a filter on TaskFlow."""
        if self._visibility is _UNSET:
            owner_id = self._owner_id() if callable(self._owner_id) else self._owner_id
            ctx = member_context(tenant_id=self.tenant_id, user_id=owner_id)
            self._visibility = False if ctx is None else visibility_filter(ctx)
        return self._visibility

    def secret_names(self, flow_id: int | None) -> set[str]:
        """Names of the secrets a node of this flow (None: a new flow) may reference."""
        if flow_id not in self._secrets:
            from flows.secrets.selectors import available_names

            self._secrets[flow_id] = available_names(tenant_id=self.tenant_id, flow_id=flow_id)
        return self._secrets[flow_id]

    def datasource(self, ref):
        pk = _int_or_none(ref)
        if pk is None:
            return None
        if pk not in self._datasources:
            self._datasources[pk] = DataSource.objects.filter(
                tenant_id=self.tenant_id, pk=pk
            ).first()
        return self._datasources[pk]

    def flow(self, ref):
        pk = _int_or_none(ref)
        if pk is None:
            return None
        if pk not in self._flows:
            visible = self._owner_visibility()
            qs = TaskFlow.objects.filter(tenant_id=self.tenant_id, pk=pk)
            if visible is False:
                qs = qs.none()
            elif visible is not None:
                qs = qs.filter(visible)
            self._flows[pk] = qs.first()
        return self._flows[pk]

    def node_names(self, ref) -> set[str]:
        """Names of the nodes of a flow `flow()` resolves: its editing version's and its
        published version's (a renamed node keeps answering until the rename is published)."""
        flow = self.flow(ref)
        if flow is None:
            return set()
        if flow.pk not in self._node_names:
            from ..models import TaskNode

            names = set(TaskNode.objects.filter(flow_id=flow.pk).values_list("name", flat=True))
            if flow.published_version_id:
                snapshot = flow.published_version.snapshot or {}
                names |= {n.get("name") for n in snapshot.get("nodes") or [] if isinstance(n, dict)}
            self._node_names[flow.pk] = {n for n in names if isinstance(n, str)}
        return self._node_names[flow.pk]
