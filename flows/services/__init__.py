"""Writes on flows (STYLE.md services): each validates, saves per object under
transaction.atomic with the acting user on every history row, and answers errors that
name the field and node.
"""

from ._common import MAX_EDGES, MAX_NODES, FlowProblems, history_actor, schedule_sync
from .flows import (
    flow_create,
    flow_delete,
    flow_fields_clean,
    flow_owner_change,
    flow_stakeholders_set,
    flow_touch,
    flow_update,
    notifications_clean,
    stakeholder_ids,
)
from .graph import (
    edge_create,
    edge_delete,
    graph_replace,
    node_create,
    node_delete,
    node_update,
    node_validate,
)
from .porting import flow_import
from .publishing import flow_freeze, flow_problems, flow_publish, flow_unfreeze, flow_unpublish

__all__ = [
    "MAX_EDGES",
    "MAX_NODES",
    "FlowProblems",
    "edge_create",
    "edge_delete",
    "flow_create",
    "flow_delete",
    "flow_fields_clean",
    "flow_freeze",
    "flow_import",
    "flow_owner_change",
    "flow_problems",
    "flow_publish",
    "flow_stakeholders_set",
    "flow_touch",
    "flow_unfreeze",
    "flow_unpublish",
    "flow_update",
    "graph_replace",
    "history_actor",
    "node_create",
    "node_delete",
    "node_update",
    "node_validate",
    "notifications_clean",
    "schedule_sync",
    "stakeholder_ids",
]
