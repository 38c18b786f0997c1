"""Factories per app, re-exported for the tests."""

from .accounts import MembershipFactory, TenantFactory, UserFactory
from .operations import build_flow, chain_flow, wide_flow  # noqa: F401
from .scheduling import ScheduleFactory  # noqa: F401

__all__ = ["MembershipFactory", "TenantFactory", "UserFactory"]
from .flows import EdgeFactory, FlowFactory, NodeFactory  # noqa: F401
from .datasources import DataSourceFactory  # noqa: F401
