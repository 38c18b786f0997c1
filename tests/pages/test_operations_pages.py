"""Dashboard, runs list and run page: figures, controls by role, 404 across tenants."""

import re
from datetime import date, timedelta

import pytest
from django.utils import timezone

from flows import services
from operations.dashboard import dashboard_stats
from tests.pages.conftest import make_run

pytestmark = pytest.mark.django_db


def stat(body: str, name: str) -> int:
    match = re.search(rf'data-stat="{name}">(\d+)<', body)
    assert match, name
    return int(match.group(1))


def test_dashboard_counts_flows_and_runs(page, owner, flow):
    make_run(flow, owner, status="succeeded")
    make_run(flow, owner, status="failed")
    body = page(owner).get("/").content.decode()
    assert stat(body, "flows-total") == 1
    assert stat(body, "runs-today") == 2
    assert stat(body, "runs-period") == 2
    assert "Recent failures" in body and "nightly load" in body


def test_public_flows_count_only_for_their_owner(page, owner, other_member, flow, public_flow):
    make_run(public_flow, other_member, status="failed")
    mine = page(owner).get("/").content.decode()
    assert stat(mine, "flows-total") == 1 and stat(mine, "runs-today") == 0
    theirs = page(other_member).get("/").content.decode()
    assert stat(theirs, "flows-total") == 1 and stat(theirs, "runs-today") == 1
    assert stat(theirs, "public-owned") == 1


def test_dashboard_runs_per_day_puts_runs_on_their_day(owner, flow, tenant):
    from accounts.selectors import tenant_context_for

    now = timezone.now()
    old = make_run(flow, owner, status="succeeded")
    # created_at is set on insert; move this one two days back.
    type(old).objects.filter(pk=old.pk).update(created_at=now - timedelta(days=2))
    make_run(flow, owner, status="failed")
    stats = dashboard_stats(ctx=tenant_context_for(user=owner, slug=tenant.slug), now=now)
    days = {d["day"]: d for d in stats["per_day"]}
    today = timezone.localdate(now)
    assert days[today]["failed"] == 1 and days[today]["succeeded"] == 0
    assert days[today - timedelta(days=2)]["succeeded"] == 1
    assert stats["runs_today"]["total"] == 1 and stats["runs_period"]["total"] == 2


def test_dashboard_ignores_other_tenants(page, owner, flow, foreign_flow, outsider):
    make_run(foreign_flow, outsider, status="failed")
    body = page(owner).get("/").content.decode()
    assert stat(body, "runs-today") == 0 and "globex flow" not in body


def test_runs_list_renders_with_filters(page, owner, flow):
    response = page(owner).get(f"/runs/?flow={flow.pk}&status=failed")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-testid="run-table"' in body and "nightly load" in body


def test_runs_list_offers_only_visible_flows(page, owner, flow, private_flow):
    body = page(owner).get("/runs/").content.decode()
    assert "nightly load" in body and "secret project" not in body


def test_run_page_for_the_owner_has_actions(page, owner, run):
    response = page(owner).get(f"/runs/{run.pk}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-testid="run-canvas"' in body and 'data-testid="gantt"' in body
    assert 'data-run-action="rerun"' in body and 'data-node-action="mark-success"' in body


def test_run_page_for_a_stakeholder_has_actions(page, stakeholder, run):
    assert b'data-run-action="stop"' in page(stakeholder).get(f"/runs/{run.pk}/").content


def test_run_page_of_a_public_flow_has_no_actions_for_viewers(
    page, owner, other_member, public_flow
):
    run = make_run(public_flow, other_member, status="failed")
    response = page(owner).get(f"/runs/{run.pk}/")
    assert response.status_code == 200
    assert (
        b"data-run-action" not in response.content and b"data-node-action" not in response.content
    )


def test_run_of_a_private_flow_is_404_for_other_members(page, other_member, owner, run):
    # other_member neither owns nor takes part in "nightly load", which is not public.
    assert page(other_member).get(f"/runs/{run.pk}/").status_code == 404


def test_run_of_another_tenant_is_404(page, owner, foreign_flow, outsider):
    run = make_run(foreign_flow, outsider, status="failed")
    assert page(owner).get(f"/runs/{run.pk}/").status_code == 404


def test_run_page_draws_the_version_that_ran(page, owner, run, flow):
    # Given the flow was edited after the run: a node renamed, one added
    load = flow.nodes.get(name="load")
    services.node_update(node=load, user=owner, name="load_v2")
    services.node_create(flow=flow, user=owner, name="added_later", type="noop", config={})

    body = page(owner).get(f"/runs/{run.pk}/").content.decode()
    # Then the page draws the nodes as they ran, not as they are now
    assert '"name": "extract"' in body and '"name": "load"' in body
    assert "load_v2" not in body and "added_later" not in body


def test_runs_of_one_flow_show_its_information(page, owner, flow):
    from scheduling import services as schedule_services

    schedule_services.schedule_save(
        flow=flow,
        user=owner,
        enabled=True,
        kind="weekly",
        time="00:00",
        days=[1, 4],
        start_date=date(2023, 8, 3),
        end_date=date(2023, 8, 31),
        timezone="Asia/Shanghai",
    )
    body = page(owner).get(f"/runs/?flow={flow.pk}").content.decode()
    info = body.split('data-testid="flow-info"')[1].split("</dl>\n  </div>")[0]
    assert "0 0 * * 1,4" in info and "Asia/Shanghai" in info and "2023-08-03" in info
    assert owner.username in info and "Flow not published" in info


def test_runs_of_a_hidden_flow_show_no_information(page, owner, private_flow):
    response = page(owner).get(f"/runs/?flow={private_flow.pk}")
    assert response.status_code == 200 and b'data-testid="flow-info"' not in response.content
