"""Factories per app, re-exported for the tests."""

from .accounts import MembershipFactory, TenantFactory, UserFactory
from .datasources import DataSourceFactory
from .flows import EdgeFactory, FlowFactory, NodeFactory
from .operations import build_flow, chain_flow, wide_flow
from .scheduling import ScheduleFactory

__all__ = [
    "DataSourceFactory",
    "EdgeFactory",
    "FlowFactory",
    "MembershipFactory",
    "NodeFactory",
    "ScheduleFactory",
    "TenantFactory",
    "UserFactory",
    "build_flow",
    "chain_flow",
    "wide_flow",
]
