"""The O&M overviews in a real Chromium, on runs executed by real Celery workers: the run grid
(click through to a run), a flow's calendar heat map, the duration sparkline on its O&M
page, tomorrow's schedule distribution, and the lineage graph with its table lookup."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from flows import services
from flows.models import DataSource
from operations.models import FlowRun
from operations.services import run_start
from scheduling.services import schedule_save
from tests.browser.conftest import sign_in
from tests.factories import MembershipFactory, UserFactory
from tests.integration.workers import wait_for

TERMINAL = {"succeeded", "failed", "stopped", "skipped"}


@pytest.fixture
def owner(tenant):
    user = UserFactory(username="otto-operator")
    MembershipFactory(user=user, tenant=tenant, role="member")
    return user


@pytest.fixture
def warehouse(tenant, sqlite_dir):
    """A SQLite data source in the tenant's own folder."""
    return DataSource.objects.create(
        tenant=tenant,
        name="warehouse",
        engine="sqlite",
        database=str(sqlite_dir / "warehouse.sqlite3"),
        options={"create": True},
    )


def sql_flow(tenant, owner, warehouse, name, sql):
    flow = services.flow_create(tenant=tenant, user=owner, name=name, concurrency_policy="ignore")
    services.node_create(
        flow=flow,
        user=owner,
        name="step",
        type="sql",
        config={"datasource": warehouse.pk, "sql": sql},
    )
    return flow


def run_to_end(flow, user) -> FlowRun:
    run = run_start(flow=flow, mode="try", user=user)

    def done():
        run.refresh_from_db()
        return run.status in TERMINAL

    wait_for(done, timeout=60, what=f"run {run.pk} to finish")
    return run


def test_grid_calendar_and_sparkline_on_real_runs(
    page, owner, tenant, warehouse, celery_workers, artifacts
):
    # Given a flow that succeeded three times and one that failed, on real workers
    good = sql_flow(
        tenant,
        owner,
        warehouse,
        "orders load",
        "create table if not exists t (a int); insert into t values (1)",
    )
    bad = sql_flow(tenant, owner, warehouse, "broken report", "select * from no_such_table")
    good_runs = [run_to_end(good, owner) for _ in range(3)]
    failed = run_to_end(bad, owner)
    assert [r.status for r in good_runs] == ["succeeded"] * 3 and failed.status == "failed"
    # ... and a published, scheduled flow firing at 02:30 every day
    schedule_save(flow=good, user=owner, cron="30 2 * * *", start_date=dt.date(2024, 1, 1))
    services.flow_publish(flow=good, user=owner)
    today = dt.datetime.now(dt.UTC).date().isoformat()

    sign_in(page, owner)
    page.goto("/runs/")
    page.click("[data-testid=open-grid]")
    page.wait_for_url(re.compile(r"/runs/grid/"))

    # The grid: one row per flow, today's cell coloured by the latest run
    page.locator("[data-testid=grid-cell]").first.wait_for()
    cells = {
        (c.get_attribute("data-flow"), c.get_attribute("data-date")): c.get_attribute("data-status")
        for c in page.locator("[data-testid=grid-cell]").all()
    }
    assert cells == {(str(good.pk), today): "succeeded", (str(bad.pk), today): "failed"}
    good_cell = page.locator(f"[data-testid=grid-cell][data-flow='{good.pk}']")
    assert good_cell.locator("xpath=..").inner_text().strip() == "3"  # three runs that date
    # Tomorrow's distribution has the 02:30 fire time in hour 2 (the browser runs in UTC here)
    page.wait_for_selector("#dist-bars .bar[data-hour='2']:not(.zero)")
    assert page.locator("#dist-bars .bar:not(.zero)").count() == 1
    page.screenshot(path=str(artifacts / "run-grid.png"), full_page=True)

    # Filtering on failed runs leaves the broken flow only; its cell opens the failed run
    page.select_option("#gf-status", "failed")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=grid-row]').length === 1")
    page.click(f"[data-testid=grid-cell][data-flow='{bad.pk}']")
    page.wait_for_url(re.compile(rf"/runs/{failed.pk}/$"))

    # The calendar heat map of the good flow: today is green, a year of dates is drawn
    page.goto(f"/runs/calendar/{good.pk}/")
    day = page.locator(f"[data-testid=cal-day][data-date='{today}']")
    day.wait_for()
    assert day.get_attribute("data-status") == "succeeded"
    assert page.locator("#cal-days [data-date]").count() == 365
    page.screenshot(path=str(artifacts / "run-calendar.png"), full_page=True)
    day.click()
    page.wait_for_url(re.compile(rf"/runs/{good_runs[-1].pk}/$"))

    # The sparkline on the flow's O&M page: a point per successful run
    page.goto(f"/runs/?flow={good.pk}")
    page.wait_for_function("() => document.querySelectorAll('#trend-spark circle').length === 3")
    ids = [c.get_attribute("data-run") for c in page.locator("#trend-spark circle").all()]
    assert ids == [str(r.pk) for r in good_runs]
    assert "3 run(s)" in page.locator("#trend-meta").inner_text()
    assert page.locator("#trend-nodes tr").first.inner_text().startswith("step")
    page.screenshot(path=str(artifacts / "flow-trends.png"), full_page=True)


def test_lineage_graph_and_table_lookup(page, owner, tenant, warehouse, artifacts):
    # Given a flow writing mart.daily, one reading it, and a third waiting for the second
    load = sql_flow(
        tenant, owner, warehouse, "load daily", "insert into daily select * from orders"
    )
    report = sql_flow(tenant, owner, warehouse, "report", "select count(*) from daily")
    notify = services.flow_create(tenant=tenant, user=owner, name="notify")
    services.node_create(
        flow=notify, user=owner, name="wait", type="dependency_check", config={"flow": report.pk}
    )
    for flow in (load, report, notify):
        services.flow_publish(flow=flow, user=owner)

    sign_in(page, owner)
    page.goto(f"/flows/{report.pk}/lineage/")
    page.wait_for_function("() => window.tributaryLineage && window.tributaryLineage.data !== null")
    graph = page.evaluate(
        "() => ({nodes: window.tributaryLineage.cy.nodes().map(n => [n.data('flow'), n.data('role')]),"
        " edges: window.tributaryLineage.cy.edges().map(e => e.data('label'))})"
    )
    assert sorted(graph["nodes"]) == sorted(
        [[load.pk, "upstream"], [report.pk, "self"], [notify.pk, "downstream"]]
    )
    assert sorted(graph["edges"]) == ["dependency check", "main.daily"]
    own = page.locator("[data-testid=lineage-own]").inner_text()
    assert "main.daily" in own

    # Who reads and writes a table
    page.fill("#tl-table", "daily")
    page.click("#table-lookup button[type=submit]")
    page.locator("[data-testid=table-writers]").wait_for()
    assert "load daily" in page.locator("[data-testid=table-writers]").inner_text()
    assert "report" in page.locator("[data-testid=table-readers]").inner_text()
    page.screenshot(path=str(artifacts / "lineage.png"), full_page=True)

    # Clicking an upstream flow follows its lineage
    page.evaluate(f"() => window.tributaryLineage.cy.getElementById('f{load.pk}').emit('tap')")
    page.wait_for_url(re.compile(rf"/flows/{load.pk}/lineage/$"))
