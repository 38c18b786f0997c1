"""Fixtures of the hardening tests: tenant A (the victim) and tenant B (the prober)."""

import pytest

from . import world


@pytest.fixture
def victim(db):
    return world.build_victim()


@pytest.fixture
def prober(db):
    return world.build_prober()
