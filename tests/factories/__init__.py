"""Factories per app, re-exported for the tests."""

from .accounts import MembershipFactory, TenantFactory, UserFactory

__all__ = ["MembershipFactory", "TenantFactory", "UserFactory"]
