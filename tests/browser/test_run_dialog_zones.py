"""Issue 20, defect 3 (the run dialogs): each date-time input names the zone it is read in,
the schedule's zone by default, and the server gets exactly that instant."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flows import services
from operations.models import FlowRun
from scheduling import services as scheduling_services
from tests.browser.conftest import sign_in
from tests.browser.test_console_trust import two_nodes
from tests.factories import MembershipFactory, UserFactory


@pytest.fixture
def owner(tenant):
    user = UserFactory(username="zoe-zones")
    MembershipFactory(user=user, tenant=tenant, role="member")
    return user


def test_run_dialog_inputs_are_read_in_the_labelled_schedule_zone(
    browser, live_server, tenant, owner, artifacts
):
    # Given a flow published with a Mon/Thu 00:00 Asia/Shanghai schedule, and a viewer in New York
    flow = services.flow_create(tenant=tenant, user=owner, name="shanghai sales")
    two_nodes(flow, owner)
    scheduling_services.schedule_save(
        flow=flow, user=owner, kind="weekly", time="00:00", days=["mon", "thu"],
        timezone="Asia/Shanghai",
    )  # fmt: skip
    services.flow_publish(flow=flow, user=owner)
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": 1440, "height": 900},
        timezone_id="America/New_York",
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        sign_in(page, owner)
        page.goto(f"/flows/{flow.pk}/")
        page.wait_for_function("() => window.tributaryEditor && window.tributaryEditor.cy")
        page.locator("#config-panel[data-loaded]").wait_for(state="attached")

        # When the time-range dialog opens, its inputs name the schedule's zone
        page.click("[data-open=dlg-range]")
        for field in ("rr-start", "rr-end"):
            label = page.locator(f"[data-testid={field}-zone]").inner_text()
            assert "Asia/Shanghai" in label and "schedule" in label, label
        # ... and a range of Shanghai wall times holds that week's Monday and Thursday 00:00
        page.fill("#rr-start", "2026-12-07T00:00")
        page.fill("#rr-end", "2026-12-10T00:00")
        page.click("[data-testid=rr-submit]")
        plan = page.locator("[data-testid=rr-plan]")
        plan.locator("table").wait_for()
        assert "2 run(s)" in page.locator("[data-testid=rr-plan-count]").inner_text()
        text = plan.inner_text()
        assert "2026-12-07 Mon 00:00" in text and "2026-12-10 Thu 00:00" in text, text
        assert "Asia/Shanghai" in text
        page.screenshot(path=str(artifacts / "run-dialog-zones.png"))
        page.locator("#dlg-range [data-close]").first.click()

        # When a point-in-time run is started for 2026-12-07 00:00 (its label names the zone)
        page.click("[data-open=dlg-point]")
        label = page.locator("[data-testid=rp-bt-zone]").inner_text()
        assert "Asia/Shanghai" in label, label
        page.fill("#rp-bt", "2026-12-07T00:00")
        page.click("#form-point button[type=submit]")
        page.wait_for_url(lambda url: "/runs/" in url)

        # Then the run's business time is that Shanghai wall time (16:00 UTC the day before)
        run = FlowRun.objects.get(flow=flow, mode="point_in_time")
        assert run.business_time == datetime(2026, 12, 6, 16, 0, tzinfo=UTC)

        # When the viewer switches the console to UTC, the inputs are read in UTC, and say so
        page.goto(f"/flows/{flow.pk}/")
        page.locator("#config-panel[data-loaded]").wait_for(state="attached")
        page.select_option("[data-testid=tz-switch]", "utc")
        page.click("[data-open=dlg-point]")
        assert page.locator("[data-testid=rp-bt-zone]").inner_text() == "(UTC)"
        # ... and the node preview's and the variables' business times name it too
        assert page.locator("[data-testid=nd-bt-zone]").inner_text() == "(UTC)"
        assert page.locator("[data-testid=var-bt-zone]").inner_text() == "(UTC)"
    finally:
        context.close()
    assert not errors, errors
