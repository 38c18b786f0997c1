"""Issue 20, defect 6 in a real Chromium: a schedule edit takes effect when the flow is
published. The Scheduling tab says so, keeps showing the published schedule's next fire
time until then, and shows the new one once published."""

from __future__ import annotations

import datetime as dt

import pytest

from flows import services
from scheduling import services as scheduling_services
from tests.browser.conftest import sign_in
from tests.browser.test_console_trust import open_editor, two_nodes
from tests.factories import MembershipFactory, UserFactory

PENDING = "Changes to the schedule take effect when the flow is published"


@pytest.fixture
def owner(tenant):
    user = UserFactory(username="pia-publisher")
    MembershipFactory(user=user, tenant=tenant, role="member")
    return user


def test_a_schedule_edit_shows_the_published_next_fire_until_the_flow_is_published(
    page, tenant, owner, artifacts
):
    # Given a flow published with a daily 06:00 UTC schedule
    flow = services.flow_create(tenant=tenant, user=owner, name="nightly load")
    two_nodes(flow, owner)
    scheduling_services.schedule_save(
        flow=flow, user=owner, kind="daily", time="06:00", timezone="UTC",
        start_date=dt.date(2024, 1, 1),
    )  # fmt: skip
    services.flow_publish(flow=flow, user=owner)
    sign_in(page, owner)
    open_editor(page, flow)
    page.click(".tab[data-tab=schedule]")
    next_fire = page.locator("[data-testid=schedule-next-fire]")
    next_fire.get_by_text("06:00").wait_for()
    before = next_fire.inner_text()
    assert page.locator("[data-testid=schedule-pending]").count() == 0

    # When the owner changes it to 07:30 in Shanghai and saves the schedule
    page.fill("#sc-time", "07:30")
    page.fill("#sc-tz", "Asia/Shanghai")
    page.click("#form-schedule [data-save]")

    # Then the tab says the change takes effect when published, shows what is published,
    # and the next fire time is still the published schedule's
    pending = page.locator("[data-testid=schedule-pending]")
    pending.wait_for()
    assert PENDING in pending.inner_text()
    published = page.locator("[data-testid=schedule-published]").inner_text()
    assert "every day at 06:00" in published and "UTC" in published, published
    assert next_fire.inner_text() == before
    assert "Saved: every day at 07:30" in page.locator("#sc-state").inner_text()
    # (the preview beside it shows the draft's fire times, once published)
    page.locator("[data-testid=schedule-preview]").get_by_text("07:30").first.wait_for()
    page.screenshot(path=str(artifacts / "schedule-pending-publish.png"), full_page=True)
    # ... and so does the O&M centre's flow information
    page.goto(f"/runs/?flow={flow.pk}")
    info = page.locator("[data-testid=om-schedule]").inner_text()
    assert "every day at 06:00 in UTC" in info and "takes effect when published" in info, info
    assert "06:00" in page.locator("[data-testid=om-next-fire]").inner_text()

    # When the flow is published (the diff lists the schedule change)
    open_editor(page, flow)
    page.click("[data-testid=publish]")
    page.locator("#publish-diff").get_by_text("schedule").wait_for()
    page.click("[data-testid=publish-confirm]")
    page.locator("[data-testid=flow-status]").get_by_text("v2").wait_for()
    page.locator("#config-panel[data-loaded]").wait_for(state="attached")

    # Then the new schedule is what fires: no note, the next fire at 07:30 in Shanghai
    page.click(".tab[data-tab=schedule]")
    next_fire.get_by_text("07:30").wait_for()
    assert "Asia/Shanghai" in next_fire.inner_text()
    assert page.locator("[data-testid=schedule-pending]").count() == 0
    published = page.locator("[data-testid=schedule-published]").inner_text()
    assert "every day at 07:30" in published and "Asia/Shanghai" in published, published
