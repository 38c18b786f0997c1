"""Issue 18 §2-3 in a real Chromium: the flow's deadline, node alerts and chat robots set in
the notifications panel; the run page and the O&M list show where a run stands against its
deadline (and the predicted finish with the nodes that drive it)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from flows import services
from flows.models import TaskFlow
from operations.models import FlowRun
from tests.browser.conftest import sign_in
from tests.factories import MembershipFactory, UserFactory


@pytest.fixture
def owner(tenant):
    user = UserFactory(username="dana-deadline")
    MembershipFactory(user=user, tenant=tenant, role="member")
    return user


def test_deadline_and_chat_robots_in_the_notifications_panel(page, tenant, owner):
    flow = services.flow_create(tenant=tenant, user=owner, name="nightly")
    services.node_create(flow=flow, user=owner, name="load", type="noop")
    sign_in(page, owner)
    page.goto(f"/flows/{flow.pk}/")
    page.click("button.tab[data-tab=notifications]")
    form = page.locator("#form-notifications")
    # A deadline in seconds left empty: refused, naming the deadline
    form.locator("select[name=deadline_kind]").select_option("after_fire_s")
    form.locator("[data-save]").click()
    error = form.locator("[data-field=deadline] .field-error")
    error.wait_for()
    assert "after_fire_s" in error.inner_text()
    # At 06:30, node failures, a Slack robot
    form.locator("select[name=deadline_kind]").select_option("at")
    form.locator("input[name=deadline_at]").fill("06:30")
    form.locator("input[name=on_node_failure]").check()
    form.locator("textarea[name=slack]").fill("https://hooks.slack.com/services/T0/B0/x")
    form.locator("[data-save]").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.toast')].some(t => /saved/i.test(t.textContent))"
    )
    flow = TaskFlow.objects.get(pk=flow.pk)
    assert flow.deadline == {"at": "06:30"}
    assert flow.notifications["on_node_failure"] is True
    assert flow.notifications["slack"] == ["https://hooks.slack.com/services/T0/B0/x"]
    # Read back into the form on the next visit
    page.reload()
    page.click("button.tab[data-tab=notifications]")
    assert form.locator("input[name=deadline_at]").input_value() == "06:30"


def test_run_page_and_om_list_show_the_deadline_state(page, tenant, owner):
    flow = services.flow_create(tenant=tenant, user=owner, name="late")
    services.node_create(flow=flow, user=owner, name="load", type="noop")
    now = timezone.now()
    run = FlowRun.objects.create(
        tenant=tenant,
        flow=flow,
        mode="point_in_time",
        business_time=now,
        status="running",
        started_at=now,
        error_policy=flow.error_policy,
        concurrency_policy=flow.concurrency_policy,
        deadline_at=now + timedelta(hours=1),
        deadline_prediction={
            "finish": (now + timedelta(hours=2)).isoformat(),
            "nodes": [{"node": 1, "node_name": "load", "p90_s": 7200.0}],
        },
    )
    sign_in(page, owner)
    page.goto(f"/runs/{run.pk}/")
    badge = page.locator("#run-kv [data-deadline-state]")
    badge.wait_for()
    assert badge.get_attribute("data-deadline-state") == "at_risk"
    assert "predicted finish" in page.locator("#run-kv").inner_text()
    assert "load" in page.locator("#run-kv").inner_text()
    page.goto("/runs/")
    cell = page.locator(f"#run-rows tr:has(a[href='/runs/{run.pk}/']) [data-deadline-state]")
    cell.wait_for()
    assert cell.inner_text() == "at risk"
