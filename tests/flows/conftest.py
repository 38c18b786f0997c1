"""Fixtures for the flow tests: a flow owned by a member, its stakeholder, data sources."""

import pytest

from flows import services
from flows.models import DataSource
from tests.factories import MembershipFactory, UserFactory
from tests.factories.datasources import mysql_server, pg_server  # noqa: F401 - shared fixtures


@pytest.fixture
def owner(member_user):
    return member_user


@pytest.fixture
def stakeholder(tenant):
    user = UserFactory(username="sam-stakeholder")
    MembershipFactory(user=user, tenant=tenant, role="member")
    return user


@pytest.fixture
def flow(tenant, owner, stakeholder):
    flow = services.flow_create(tenant=tenant, user=owner, name="nightly load")
    services.flow_stakeholders_set(flow=flow, user=owner, users=[stakeholder.pk])
    return flow


@pytest.fixture
def datasource(tenant):
    ds = DataSource(tenant=tenant, name="warehouse", engine="sqlite", database="/tmp/warehouse.db")
    ds.password = "s3cret-pw"
    ds.save()
    return ds


@pytest.fixture
def other_datasource(other_tenant):
    ds = DataSource(
        tenant=other_tenant, name="warehouse", engine="sqlite", database="/tmp/other.db"
    )
    ds.save()
    return ds


@pytest.fixture
def as_user(api, tenant):
    """`as_user(user)`: an API client acting as `user` in the tenant "acme"."""

    def make(user):
        return api(user, tenant)

    return make
