"""The time-range dialog: start nodes, which fire times, dependent flows, and the plan shown
(plan_only) before the runs start."""

from __future__ import annotations

import pytest

from flows import services
from operations.models import FlowRun, NodeRun
from tests.browser.conftest import sign_in
from tests.factories import MembershipFactory, ScheduleFactory, UserFactory


@pytest.fixture
def owner(tenant):
    user = UserFactory(username="olivia-owner")
    MembershipFactory(user=user, tenant=tenant, role="member")
    return user


@pytest.fixture
def flow(tenant, owner):
    flow = services.flow_create(tenant=tenant, user=owner, name="sales")
    services.graph_replace(
        flow=flow,
        user=owner,
        nodes=[
            {"key": k, "name": k, "type": "noop", "position": {"x": 100 * i, "y": 0}}
            for i, k in enumerate(["extract", "load", "report"])
        ],
        edges=[
            {"upstream": "extract", "downstream": "load"},
            {"upstream": "load", "downstream": "report"},
        ],
    )
    ScheduleFactory(flow=flow, cron="0 12 * * *")
    services.flow_publish(flow=flow, user=owner)
    return flow


def test_range_dialog_shows_the_plan_then_starts_the_chosen_subtree(page, owner, flow):
    sign_in(page, owner)
    page.goto(f"/flows/{flow.pk}/")
    page.wait_for_function("() => window.tributaryEditor.cy.nodes().length === 3")

    page.click("[data-open=dlg-range]")
    page.fill("#rr-start", "2024-01-15T00:00")
    page.fill("#rr-end", "2024-01-16T23:00")
    page.locator("[data-testid=rr-start-nodes]").select_option(label="load")
    page.click("[data-testid=rr-submit]")

    plan = page.locator("[data-testid=rr-plan]")
    plan.locator("table").wait_for()
    assert "2 run(s)" in page.locator("[data-testid=rr-plan-count]").inner_text()
    assert plan.inner_text().count("load, report") == 2 and "extract" not in plan.inner_text()
    assert not FlowRun.objects.exists()  # the plan created nothing
    assert "Start 2 run(s)" in page.locator("[data-testid=rr-submit]").inner_text()

    page.click("[data-testid=rr-submit]")
    page.wait_for_url(lambda url: "/runs" in url)
    runs = list(FlowRun.objects.filter(flow=flow).order_by("batch_index"))
    assert len(runs) == 2 and {r.mode for r in runs} == {"time_range"}
    states = dict(NodeRun.objects.filter(run=runs[0]).values_list("node_name", "status"))
    assert states["extract"] == "not_run" and states["load"] != "not_run"


def test_changing_a_choice_asks_for_the_plan_again(page, owner, flow):
    sign_in(page, owner)
    page.goto(f"/flows/{flow.pk}/")
    page.wait_for_function("() => window.tributaryEditor.cy.nodes().length === 3")

    page.click("[data-open=dlg-range]")
    page.fill("#rr-start", "2024-01-15T00:00")
    page.fill("#rr-end", "2024-01-16T23:00")
    page.click("[data-testid=rr-submit]")
    page.locator("[data-testid=rr-plan] table").wait_for()
    page.locator("[data-testid=rr-only]").select_option("failed")

    assert page.locator("[data-testid=rr-submit]").inner_text() == "Show the plan"
    page.click("[data-testid=rr-submit]")
    page.locator("[data-testid=rr-plan-count]").wait_for()
    assert "0 run(s)" in page.locator("[data-testid=rr-plan-count]").inner_text()
    assert not FlowRun.objects.exists()
