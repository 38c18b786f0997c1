"""The dashboard's numbers match the runs in the database, with public flows counted only
for their owner."""

from datetime import timedelta

import pytest
from django.utils import timezone

from operations.models import FlowRun
from tests.factories import FlowFactory

pytestmark = pytest.mark.django_db


def _run(flow, status, *, started=None, finished=None, error=""):
    return FlowRun.objects.create(
        tenant=flow.tenant,
        flow=flow,
        mode="try",
        business_time=timezone.now(),
        status=status,
        error_policy=flow.error_policy,
        concurrency_policy=flow.concurrency_policy,
        started_at=started,
        finished_at=finished,
        error=error,
    )


def test_dashboard_counts_match_database_and_skip_others_public_flows(
    api, tenant, member_user, other_member
):
    # Given: the member's own flow with runs, and another member's public flow with runs
    mine = FlowFactory(tenant=tenant, owner=member_user, name="mine")
    theirs = FlowFactory(tenant=tenant, owner=other_member, name="theirs", is_public=True)
    now = timezone.now()
    _run(mine, "succeeded", started=now - timedelta(seconds=10), finished=now)
    _run(mine, "succeeded", started=now - timedelta(seconds=30), finished=now)
    _run(mine, "failed", error="Failed nodes: a")
    _run(theirs, "failed")
    _run(theirs, "succeeded")

    # When: each of them reads the dashboard
    mine_view = api(member_user).get("/api/v1/dashboard/").json()
    theirs_view = api(other_member).get("/api/v1/dashboard/").json()

    # Then: the public flow counts for its owner only
    assert mine_view["flows"]["total"] == 1
    assert mine_view["runs_period"]["succeeded"] == 2
    assert mine_view["runs_period"]["failed"] == 1
    assert mine_view["runs_today"]["total"] == 3
    assert mine_view["failing_flows"] == [{"flow_id": mine.pk, "flow_name": "mine", "failures": 1}]
    assert mine_view["durations"]["succeeded_runs"] == 2
    assert mine_view["durations"]["max_s"] == pytest.approx(30, abs=0.01)
    assert [f["flow"] for f in mine_view["recent_failures"]] == [mine.pk]
    assert theirs_view["flows"]["total"] == 1
    assert theirs_view["runs_period"]["total"] == 2
    assert sum(d["total"] for d in theirs_view["per_day"]) == 2


def test_admin_sees_every_flow_of_the_tenant_but_no_other_tenant(
    api, tenant, admin_user, member_user, outsider, other_tenant
):
    FlowFactory(tenant=tenant, owner=member_user)
    foreign = FlowFactory(tenant=other_tenant, owner=outsider)
    _run(foreign, "failed")
    body = api(admin_user).get("/api/v1/dashboard/").json()
    assert body["flows"]["total"] == 1
    assert body["runs_period"]["total"] == 0


def test_dashboard_period_is_validated(api, member_user):
    res = api(member_user).get("/api/v1/dashboard/?days=0")
    assert res.status_code == 400 and "days" in res.json()
    assert api(member_user).get("/api/v1/dashboard/?days=30").json()["days"] == 30
