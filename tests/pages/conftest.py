"""Fixtures of the page tests: a flow with an owner, a stakeholder, a public flow, runs."""

import pytest
from django.test import Client
from django.utils import timezone

from flows import services
from flows.snapshot import flow_snapshot
from operations.models import FlowRun
from tests.factories import MembershipFactory, UserFactory


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
    flow = services.flow_create(
        tenant=tenant, user=owner, name="nightly load", business_scenario="Reporting"
    )
    services.graph_replace(
        flow=flow,
        user=owner,
        nodes=[
            {"key": "a", "name": "extract", "type": "noop"},
            {"key": "b", "name": "load", "type": "noop"},
        ],
        edges=[{"upstream": "a", "downstream": "b"}],
    )
    services.flow_stakeholders_set(flow=flow, user=owner, users=[stakeholder.pk])
    flow.refresh_from_db()
    return flow


@pytest.fixture
def public_flow(tenant, other_member):
    """Someone else's public flow: every member sees it, nobody else changes or runs it."""
    return services.flow_create(
        tenant=tenant, user=other_member, name="shared report", is_public=True
    )


@pytest.fixture
def private_flow(tenant, other_member):
    return services.flow_create(tenant=tenant, user=other_member, name="secret project")


@pytest.fixture
def foreign_flow(other_tenant, outsider):
    return services.flow_create(tenant=other_tenant, user=outsider, name="globex flow")


def make_run(flow, user, status="succeeded", **fields):
    """A finished run record of the editing version (runs are append-only operational rows)."""
    now = timezone.now()
    values = {
        "tenant": flow.tenant,
        "flow": flow,
        "snapshot": flow_snapshot(flow),
        "mode": "try",
        "trigger": "manual",
        "business_time": now,
        "status": status,
        "triggered_by": user,
        "error_policy": flow.error_policy,
        "concurrency_policy": flow.concurrency_policy,
        "started_at": now,
        "finished_at": now,
    }
    values.update(fields)
    return FlowRun.objects.create(**values)


@pytest.fixture
def run(flow, owner):
    return make_run(flow, owner, status="failed")


@pytest.fixture
def page():
    """`page(user)`: a Django test client signed in as `user` (session, like the browser)."""

    def make(user=None):
        client = Client(raise_request_exception=False)
        if user is not None:
            client.force_login(user)
        return client

    return make
