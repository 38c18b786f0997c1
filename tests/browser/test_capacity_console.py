"""Issue 15 §1-4 on the console, in a real Chromium: the O&M centre's capacity card shows the
tenant's effective limits and their use to its admin and to the platform superuser; a node
held back by the tenant's limit says why in words on the run page (a real run on real
workers); and a data source's pool is set in its form by those the API lets set it."""

from __future__ import annotations

import re

from django.utils import timezone

from flows.models import DataSource
from flows.snapshot import flow_snapshot
from operations.models import FlowRun, NodeRun
from operations.services import run_start, slots
from tests.browser.conftest import sign_in
from tests.factories import build_flow
from tests.integration.workers import wait_for


def capacity_text(page) -> str:
    card = page.locator("[data-testid=capacity-tenant]")
    card.wait_for()
    return card.inner_text()


def test_tenant_limit_holds_a_node_and_the_capacity_card_shows_it(
    page,
    browser,
    live_server,
    tenant,
    admin_user,
    superuser,
    api,
    http_server,
    celery_workers,
    artifacts,
):
    # Given: the superuser limits the tenant to one running node and three active runs
    res = api(superuser).patch(
        f"/api/v1/tenants/{tenant.pk}/",
        {"limits": {"running_nodes": 1, "active_runs": 3}},
        format="json",
    )
    assert res.status_code == 200, res.content
    # ... and a run of two independent nodes that each block until released
    flow, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        name="two calls",
        nodes=[
            {"name": "first", "type": "http", "config": {"url": http_server.url("block/first")}},
            {"name": "second", "type": "http", "config": {"url": http_server.url("block/second")}},
        ],
    )
    run = run_start(flow=flow, mode="try", user=admin_user)

    # When: one node runs and the tenant's limit holds the other
    def split():
        rows = dict(NodeRun.objects.filter(run=run).values_list("node_name", "status"))
        if sorted(rows.values()) == ["running", "waiting"]:
            return next(name for name, status in rows.items() if status == "waiting")
        return None

    held = wait_for(split, timeout=60, what="one node running, the other held")
    running = "first" if held == "second" else "second"
    assert NodeRun.objects.get(run=run, node_name=held).waiting_reason == "tenant_limit"

    # Then the run page says why, in words
    page.set_viewport_size({"width": 1440, "height": 900})
    sign_in(page, admin_user)
    page.goto(f"/runs/{run.pk}/")
    badge = page.locator(f"[data-testid='node-status-{held}']")
    badge.wait_for()
    assert badge.locator(".badge").inner_text() == "Waiting"
    assert "held by the tenant's limit of running nodes" in badge.inner_text()
    label = page.evaluate(
        "name => window.tributaryRun.cy.nodes().filter(n => n.data('name') === name)[0].style('label')",
        held,
    )
    assert label.endswith("waiting: tenant limit"), label
    page.screenshot(path=str(artifacts / "run-held-by-tenant-limit.png"))

    # ... and the O&M centre's capacity card shows the effective limits and their use
    page.goto("/runs/")
    text = capacity_text(page)
    assert "Running nodes: 1 of 1" in text, text
    assert "waiting for a slot: 1" in text, text
    assert "Active runs: 1 of 3" in text, text
    assert "the tenant's own limit" in text, text
    page.locator("[data-testid=capacity]").screenshot(path=str(artifacts / "capacity-card.png"))
    page.screenshot(path=str(artifacts / "capacity-page.png"))

    # ... to the platform superuser too, once in the tenant
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1440, "height": 900})
    root = context.new_page()
    try:
        sign_in(root, superuser)
        root.goto("/runs/")
        assert root.locator("[data-testid=choose-tenant]").is_visible()
        root.select_option(".tenant-switch select", tenant.slug)
        root.locator("[data-testid=who]", has_text="admin").wait_for()
        root.goto("/runs/")
        assert "Running nodes: 1 of 1" in capacity_text(root)
    finally:
        context.close()

    # When the running node is released, the held one starts and the run finishes
    http_server.release(running)
    wait_for(
        lambda: (
            NodeRun.objects.filter(run=run, node_name=held, status="running").exists()
            or NodeRun.objects.filter(run=run, node_name=held, status="succeeded").exists()
        ),
        timeout=60,
        what=f"{held} to start once a slot is free",
    )
    http_server.release(held)
    wait_for(
        lambda: run.__class__.objects.get(pk=run.pk).status == "succeeded",
        timeout=60,
        what="the run to succeed",
    )


def open_pool_form(page, name):
    page.locator("tr[data-id]", has_text=name).locator("[data-act=edit]").click()
    page.locator("#ds-dialog").wait_for()


def pool_cell(page, name) -> str:
    return page.locator("tr[data-id]", has_text=name).locator("td").nth(5).inner_text()


def test_data_source_pool_is_set_in_its_form(
    page, tenant, admin_user, member_user, api, sqlite_dir, artifacts
):
    # Given: a data source with no pool
    ds = DataSource.objects.create(
        tenant=tenant, name="warehouse", engine="sqlite", database=str(sqlite_dir / "wh.sqlite3")
    )
    sign_in(page, admin_user)
    page.goto("/datasources/")
    page.locator("tr[data-id]", has_text="warehouse").wait_for()
    assert pool_cell(page, "warehouse") == "no cap"

    # When: the tenant admin gives it a pool of 2 in the form
    open_pool_form(page, "warehouse")
    assert page.locator("#ds-max-concurrency").input_value() == ""
    page.fill("#ds-max-concurrency", "2")
    page.click("#ds-form button[type=submit]")
    page.locator("#ds-dialog").wait_for(state="hidden")
    # Then it is saved, listed, and in the API
    page.wait_for_function(
        "() => [...document.querySelectorAll('#ds-rows td')].some(td => td.innerText === '2 at once')"
    )
    ds.refresh_from_db()
    assert ds.max_concurrency == 2
    assert (
        api(admin_user, tenant).get(f"/api/v1/datasources/{ds.pk}/").json()["max_concurrency"] == 2
    )
    # ... and the capacity card lists the pool with its cap
    page.goto("/runs/")
    pools = page.locator("[data-testid=capacity-pools]")
    pools.wait_for()
    assert "warehouse" in pools.inner_text() and "0 of 2" in pools.inner_text()

    # A pool of 0 is refused, next to the field, in words
    page.goto("/datasources/")
    open_pool_form(page, "warehouse")
    assert page.locator("#ds-max-concurrency").input_value() == "2"
    page.fill("#ds-max-concurrency", "0")
    page.click("#ds-form button[type=submit]")
    error = page.locator("[data-field=max_concurrency] .field-error")
    error.wait_for()
    assert "1" in error.inner_text()
    page.screenshot(path=str(artifacts / "datasource-pool-form.png"))
    ds.refresh_from_db()
    assert ds.max_concurrency == 2

    # Emptying the field removes the cap
    page.fill("#ds-max-concurrency", "")
    page.click("#ds-form button[type=submit]")
    page.locator("#ds-dialog").wait_for(state="hidden")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#ds-rows td')].some(td => td.innerText === 'no cap')"
    )
    ds.refresh_from_db()
    assert ds.max_concurrency is None

    # A plain member sees the pool but may not set it, in the page as in the API
    page.context.clear_cookies()
    sign_in(page, member_user)
    page.goto("/datasources/")
    page.locator("tr[data-id]", has_text="warehouse").wait_for()
    assert pool_cell(page, "warehouse") == "no cap"
    assert page.locator("[data-act=edit]").count() == 0
    assert page.get_by_text("Tenant admins and DBAs register and change data sources").is_visible()
    res = api(member_user, tenant).patch(
        f"/api/v1/datasources/{ds.pk}/", {"max_concurrency": 3}, format="json"
    )
    assert res.status_code == 403
    ds.refresh_from_db()
    assert ds.max_concurrency is None


def test_a_dba_sets_the_pool(page, tenant, dba_user, sqlite_dir):
    ds = DataSource.objects.create(
        tenant=tenant, name="mart", engine="sqlite", database=str(sqlite_dir / "mart.sqlite3")
    )
    sign_in(page, dba_user)
    page.goto("/datasources/")
    page.locator("tr[data-id]", has_text="mart").wait_for()
    open_pool_form(page, "mart")
    page.fill("#ds-max-concurrency", "4")
    page.click("#ds-form button[type=submit]")
    page.locator("#ds-dialog").wait_for(state="hidden")
    ds.refresh_from_db()
    assert ds.max_concurrency == 4


def test_a_node_held_by_a_full_pool_names_the_pool(page, tenant, admin_user, sqlite_dir):
    # Given: a pool of one on the warehouse, one SQL node running on it and one held back,
    # as the claim records them (the page only reads them)
    ds = DataSource.objects.create(
        tenant=tenant,
        name="warehouse",
        engine="sqlite",
        database=str(sqlite_dir / "wh.sqlite3"),
        max_concurrency=1,
    )
    flow, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        name="two loads",
        nodes=[
            {"name": n, "type": "sql", "config": {"datasource": ds.pk, "sql": "select 1"}}
            for n in ("orders", "customers")
        ],
    )
    flow.refresh_from_db()
    now = timezone.now()
    run = FlowRun.objects.create(
        tenant=tenant,
        flow=flow,
        snapshot=flow_snapshot(flow),
        mode="try",
        trigger="manual",
        business_time=now,
        status="running",
        triggered_by=admin_user,
        error_policy=flow.error_policy,
        concurrency_policy=flow.concurrency_policy,
        started_at=now,
        activated_at=now,
    )
    ids = dict(flow.nodes.values_list("name", "pk"))
    pools = f",{ds.pk},"
    NodeRun.objects.create(
        tenant=tenant,
        run=run,
        node_id=ids["orders"],
        node_name="orders",
        node_type="sql",
        status="running",
        started_at=now,
        pools=pools,
    )
    NodeRun.objects.create(
        tenant=tenant,
        run=run,
        node_id=ids["customers"],
        node_name="customers",
        node_type="sql",
        status="waiting",
        waiting_reason="pool",
        waiting_detail="pool warehouse full (1 running)",
        pools=pools,
    )

    # Then: the run page names the pool, in words, in the table and on the canvas
    sign_in(page, admin_user)
    page.goto(f"/runs/{run.pk}/")
    state = page.locator("[data-testid='node-status-customers']")
    state.wait_for()
    assert state.locator(".badge").inner_text() == "Waiting"
    assert "held by pool warehouse full (1 running)" in state.inner_text()
    label = page.evaluate(
        "() => window.tributaryRun.cy.nodes().filter(n => n.data('name') === 'customers')[0].style('label')"
    )
    assert label.endswith("waiting: pool full"), label
    # ... and the capacity card's pool table counts them against the cap
    page.goto("/runs/")
    pools_table = page.locator("[data-testid=capacity-pools]")
    pools_table.wait_for()
    row = pools_table.locator("tr", has_text="warehouse").inner_text()
    assert "1 of 1" in row and row.rstrip().endswith("1"), row


def test_capacity_card_names_the_default_share(page, tenant, other_tenant, admin_user, outsider):
    # Given: two tenants with flows, no limit of their own, and four worker slots reported
    build_flow(tenant=tenant, owner=admin_user, nodes=["a"])
    build_flow(tenant=other_tenant, owner=outsider, nodes=["b"])
    slots.worker_report(name="browser-test-worker", concurrency=4)

    # Then: the card shows the default limit, where it comes from, and the slots it is a share of
    sign_in(page, admin_user)
    page.goto("/runs/")
    try:
        text = capacity_text(page)
    finally:
        # The process caches the fair-share numbers: later tests start from the database.
        slots.worker_gone(name="browser-test-worker")
        slots.forget_state()
    match = re.search(
        r"Running nodes: 0 of (\d+) \(the default: a share of the (\d+) worker slots up\)", text
    )
    assert match, text
    limit, up = int(match[1]), int(match[2])
    assert up >= 4 and 1 <= limit < up
    assert f"Worker slots up: {up}" in text
    assert "Active runs: 0 (no limit)" in text
