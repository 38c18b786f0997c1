"""Bulk O&M actions in a real Chromium: tick runs in the O&M runs list or pick dates in the grid,
choose an action, give a reason, and read what became of each run.

No worker runs here: the engine's messages are dropped, so the runs stay queued until an
operator acts on them (which is all the actions need).
"""

from __future__ import annotations

import pytest

from flows import services
from operations import dispatch
from operations.models import FlowRun, OperationRecord
from operations.services import run_start
from tests.browser.conftest import sign_in
from tests.factories import MembershipFactory, UserFactory


@pytest.fixture
def quiet_engine(monkeypatch):
    """Drop what the engine would send to workers (the live server runs in this process)."""
    for name in ("publisher", "relay_publisher"):
        monkeypatch.setattr(dispatch, name, lambda items: None)
    monkeypatch.setattr(dispatch, "run_publisher", lambda name, arg: None)
    monkeypatch.setattr(dispatch, "revoke", lambda ids: None)


@pytest.fixture
def owner(tenant):
    user = UserFactory(username="bea-bulk")
    MembershipFactory(user=user, tenant=tenant, role="member")
    return user


def noop_flow(tenant, owner, name):
    flow = services.flow_create(tenant=tenant, user=owner, name=name, concurrency_policy="ignore")
    services.node_create(flow=flow, user=owner, name="step", type="noop")
    return flow


def status(run) -> str:
    run.refresh_from_db()
    return run.status


def test_bulk_actions_from_the_runs_list_and_the_grid(page, tenant, owner, quiet_engine, artifacts):
    # Given three queued runs of one flow and one of another
    flow = noop_flow(tenant, owner, "nightly load")
    other = noop_flow(tenant, owner, "hourly sync")
    one, two, three = (run_start(flow=flow, mode="try", user=owner) for _ in range(3))
    fourth = run_start(flow=other, mode="try", user=owner)
    assert {status(r) for r in (one, two, three, fourth)} == {"queued"}

    sign_in(page, owner)
    page.goto("/runs/")
    page.locator(f"[data-testid=run-row][data-run='{one.pk}']").wait_for()
    assert page.locator("[data-testid=bulk-bar]").is_hidden()

    # When the operator ticks two runs and pauses them with a reason
    page.check(f"[data-testid=select-run][data-run='{one.pk}']")
    page.check(f"[data-testid=select-run][data-run='{two.pk}']")
    assert page.locator("[data-testid=bulk-count]").inner_text() == "2 runs selected"
    page.click("[data-testid=bulk-bar] [data-bulk=pause]")
    page.locator("[data-testid=bulk-dialog]").wait_for()
    page.fill("#bulk-reason", "warehouse maintenance")
    page.click("[data-testid=bulk-apply]")

    # Then each run reports done, the list shows them paused, and the selection is cleared
    page.locator(f"[data-testid=bulk-result][data-run='{two.pk}']").wait_for()
    results = page.locator("[data-testid=bulk-result]")
    assert results.count() == 2
    assert {r.get_attribute("data-result") for r in results.all()} == {"done"}
    assert status(one) == status(two) == "paused" and status(three) == "queued"
    page.wait_for_selector(f"[data-testid=run-row][data-run='{one.pk}'][data-status=paused]")
    assert page.locator("[data-testid=bulk-bar]").is_hidden()
    assert not page.locator(f"[data-testid=select-run][data-run='{one.pk}']").is_checked()
    page.screenshot(path=str(artifacts / "bulk-runs-list.png"), full_page=True)

    # When the operator resumes one paused and one queued run, the queued one is refused with
    # the message the single action gives, and the paused one goes on
    page.check(f"[data-testid=select-run][data-run='{one.pk}']")
    page.check(f"[data-testid=select-run][data-run='{three.pk}']")
    page.click("[data-testid=bulk-bar] [data-bulk=resume]")
    page.click("[data-testid=bulk-apply]")
    refused = page.locator(f"[data-testid=bulk-result][data-run='{three.pk}']")
    refused.wait_for()
    assert refused.get_attribute("data-result") == "refused"
    assert "The run is not paused." in refused.inner_text()
    done = page.locator(f"[data-testid=bulk-result][data-run='{one.pk}']")
    assert done.get_attribute("data-result") == "done"
    assert status(one) == "queued" and status(three) == "queued"

    # The grid: in select mode a click picks a date's latest run instead of opening it
    page.goto("/runs/grid/")
    cell = page.locator(f"[data-testid=grid-cell][data-flow='{flow.pk}']")
    cell.wait_for()
    assert cell.get_attribute("data-run") == str(three.pk)  # the latest run of that date
    page.check("[data-testid=grid-select-mode]")
    cell.click()
    page.locator(f"[data-testid=grid-cell][data-flow='{other.pk}']").click()
    assert page.url.endswith("/runs/grid/") or "/runs/grid/?" in page.url
    assert page.locator("[data-testid=bulk-count]").inner_text() == "2 runs selected"
    assert cell.get_attribute("aria-pressed") == "true"
    page.click("[data-testid=bulk-bar] [data-bulk=stop]")
    page.fill("#bulk-reason", "bad input files")
    page.click("[data-testid=bulk-apply]")
    page.locator(f"[data-testid=bulk-result][data-run='{fourth.pk}']").wait_for()
    assert status(three) == status(fourth) == "stopped"
    page.wait_for_selector(f"[data-testid=grid-cell][data-flow='{flow.pk}'][data-status=stopped]")
    page.screenshot(path=str(artifacts / "bulk-grid.png"), full_page=True)

    # Every action is in the audit trail with the operator and the reason
    records = list(OperationRecord.objects.order_by("id").values_list("action", "run", "reason"))
    assert records == [
        ("pause", one.pk, "warehouse maintenance"),
        ("pause", two.pk, "warehouse maintenance"),
        ("bulk", None, "warehouse maintenance"),
        ("resume", one.pk, ""),
        ("bulk", None, ""),
        ("stop", three.pk, "bad input files"),
        ("stop", fourth.pk, "bad input files"),
        ("bulk", None, "bad input files"),
    ]
    assert set(OperationRecord.objects.values_list("user", flat=True)) == {owner.pk}
    assert FlowRun.objects.count() == 4


def test_an_auditor_gets_no_bulk_controls(page, tenant, owner, quiet_engine):
    auditor = UserFactory(username="ada-auditor")
    MembershipFactory(user=auditor, tenant=tenant, role="auditor")
    flow = noop_flow(tenant, owner, "nightly load")
    run = run_start(flow=flow, mode="try", user=owner)
    sign_in(page, auditor)
    page.goto("/runs/")
    page.locator(f"[data-testid=run-row][data-run='{run.pk}']").wait_for()
    assert page.locator("[data-testid=select-run]").count() == 0
    assert page.locator("[data-testid=bulk-bar]").count() == 0
    page.goto("/runs/grid/")
    page.locator("[data-testid=grid-cell]").first.wait_for()
    assert page.locator("[data-testid=grid-select-mode]").count() == 0


def test_the_audit_page_shows_om_actions_in_words(page, tenant, owner, admin_user, quiet_engine):
    flow = noop_flow(tenant, owner, "nightly load")
    run = run_start(flow=flow, mode="try", user=owner)
    from operations.services import run_pause

    run_pause(run=run, user=owner, reason="warehouse maintenance")
    sign_in(page, admin_user)
    page.goto("/audit/")
    page.select_option("#hf-type", "run")
    entry = page.locator("[data-testid=audit-entry][data-type=run]")
    entry.first.wait_for()
    assert entry.count() == 1
    text = entry.first.inner_text()
    assert f"bea-bulk paused run #{run.pk} of “nightly load”" in text
    assert "warehouse maintenance" in text
