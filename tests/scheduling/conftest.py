"""Flows built through the flows services (so publishing really calls schedule_sync)."""

import pytest

from flows import services as flow_services


@pytest.fixture
def make_flow(tenant, member_user):
    """`make_flow(name, publish=False, owner=member_user)`: a flow with one noop node."""

    def make(name="nightly", *, publish=False, owner=None):
        owner = owner or member_user
        flow = flow_services.flow_create(tenant=tenant, user=owner, name=name)
        flow_services.node_create(flow=flow, user=owner, name="step", type="noop", config={})
        if publish:
            flow_services.flow_publish(flow=flow, user=owner)
        flow.refresh_from_db()
        return flow

    return make


@pytest.fixture
def flow(make_flow):
    return make_flow()


@pytest.fixture
def published_flow(make_flow):
    return make_flow("hourly", publish=True)
