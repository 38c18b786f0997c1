"""The reference quick start, end to end in a real Chromium: create, add and connect nodes,
configure, schedule, save, try-run on real Celery workers, publish, then versions and history.
Also: a stakeholder sees the flow read-only, and a member of another tenant gets 404.
"""

from __future__ import annotations

import re

import pytest

from flows import services
from flows.models import DataSource, TaskFlow
from operations.models import FlowRun
from tests.browser.conftest import connect, drag_type_onto_canvas, edges, node_center, sign_in
from tests.factories import MembershipFactory, UserFactory

RUN_DEADLINE_MS = 60_000


@pytest.fixture
def owner(tenant):
    user = UserFactory(username="olivia-owner")
    MembershipFactory(user=user, tenant=tenant, role="member")
    return user


@pytest.fixture
def warehouse(tenant, sqlite_dir):
    """A SQLite data source in the test's own folder."""
    return DataSource.objects.create(
        tenant=tenant,
        name="warehouse",
        engine="sqlite",
        database=str(sqlite_dir / "warehouse.sqlite3"),
        options={"create": True},
    )


def test_quick_start_in_the_browser(page, owner, warehouse, celery_workers, artifacts):
    # Given a member of the tenant with a registered SQLite data source
    sign_in(page, owner)

    # Step 1: create a task flow from the list, through the "Create Task Flow" dialog
    page.goto("/flows/")
    page.click("[data-testid=create-flow]")
    page.fill("#cf-scenario", "Reporting")
    page.fill("#cf-name", "orders daily")
    page.click("#create-flow-form button[type=submit]")
    page.wait_for_url(re.compile(r"/flows/\d+/$"))
    flow = TaskFlow.objects.get(name="orders daily")
    assert flow.owner == owner and flow.business_scenario == "Reporting"
    page.wait_for_function("() => window.tributaryEditor && window.tributaryEditor.cy")

    # Step 2: drag two task types onto the canvas and connect them
    drag_type_onto_canvas(page, "sql", 220, 220)
    drag_type_onto_canvas(page, "noop", 560, 260)
    page.wait_for_function("() => window.tributaryEditor.cy.nodes().length === 2")
    connect(page, "sql_1", "noop_1")
    assert edges(page) == ["sql_1->noop_1"]

    # ... and a connection back is refused, with the cycle named on the page
    connect(page, "noop_1", "sql_1", allowed=False)
    message = page.locator("[data-testid=canvas-message]")
    message.wait_for()
    assert "cycle noop_1 → sql_1 → noop_1" in message.inner_text()
    assert edges(page) == ["sql_1->noop_1"]

    # Double-click the SQL node and configure it in the form generated from its schema
    center = node_center(page, "sql_1")
    page.mouse.dblclick(center["x"], center["y"])
    page.locator("#node-drawer").wait_for()
    page.wait_for_selector(f"#cfg-datasource option[value='{warehouse.pk}']", state="attached")
    page.fill("#nd-name", "load_orders")
    page.select_option("#cfg-datasource", str(warehouse.pk))
    page.fill(
        "#cfg-sql",
        "create table if not exists orders (day text, amount integer);\n"
        "insert into orders values ('${bizdate}', 42);\n"
        "select count(*) as n from orders",
    )
    page.click("[data-testid=node-apply]")
    page.locator("#node-drawer").wait_for(state="hidden")

    # Save through the atomic graph API
    page.click("[data-testid=save]")
    page.locator("#dirty-flag").wait_for(state="hidden")
    assert sorted(flow.nodes.values_list("name", flat=True)) == ["load_orders", "noop_1"]
    (edge,) = flow.edges.select_related("upstream", "downstream")
    assert (edge.upstream.name, edge.downstream.name) == ("load_orders", "noop_1")
    assert flow.nodes.get(name="load_orders").config["datasource"] == warehouse.pk

    # Step 3: scheduling, with the next fire times shown while editing (the quick start's example)
    page.click(".tab[data-tab=schedule]")
    page.check("#sc-enabled")
    page.select_option("#sc-kind", "weekly")
    page.fill("#sc-time", "00:00")
    page.check("input[name=weekday][value='1']")
    page.check("input[name=weekday][value='4']")
    page.fill("#sc-start", "2023-08-03")
    page.fill("#sc-end", "2023-08-31")
    page.fill("#sc-tz", "Asia/Shanghai")
    page.wait_for_function("() => document.querySelectorAll('#sc-preview li').length === 9")
    fire_days = [t[:10] for t in page.locator("#sc-preview li").all_inner_texts()]
    assert fire_days == [f"2023-08-{d:02d}" for d in (3, 7, 10, 14, 17, 21, 24, 28, 31)]
    page.click("#form-schedule [data-save]")
    page.get_by_text("Schedule saved.").wait_for()
    page.click("#panel-toggle")
    page.screenshot(path=str(artifacts / "canvas.png"))

    # Step 4: try run, and watch both nodes turn green on the run page
    page.click("[data-testid=try-run]")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    page.wait_for_function(
        "() => { const r = window.tributaryRun.current(); return r && r.status === 'succeeded'"
        " && r.node_runs.length === 2 && r.node_runs.every(n => n.status === 'succeeded'); }",
        timeout=RUN_DEADLINE_MS,
    )
    page.locator("[data-testid=node-status-noop_1]").wait_for()
    assert page.locator("[data-testid=run-status]").inner_text() == "succeeded"
    green = page.evaluate(
        "() => window.tributaryRun.cy.nodes().map(n => n.hasClass('st-succeeded'))"
    )
    assert green == [True, True]
    page.locator("tr[data-node]", has_text="load_orders").click()
    # The SQL node's log and output, as the workers wrote them
    page.locator("[data-testid=node-log]", has_text="statement 3/3").wait_for()
    assert '"n"' in page.locator("[data-testid=node-output]").inner_text()
    page.screenshot(path=str(artifacts / "run.png"), full_page=True)
    run = FlowRun.objects.get(flow=flow)
    assert run.mode == "try" and run.status == "succeeded"

    # Step 5: publish, seeing what it publishes first
    page.goto(f"/flows/{flow.pk}/")
    page.click("[data-testid=publish]")
    page.locator("[data-testid=publish-diff]").get_by_text("First publication").wait_for()
    page.click("[data-testid=publish-confirm]")
    page.locator("[data-testid=flow-status]", has_text="v1").wait_for()
    flow.refresh_from_db()
    assert flow.status == "published" and flow.published_version.number == 1

    # ... the version is listed, and the audit timeline has the publication
    page.goto(f"/flows/{flow.pk}/versions/")
    assert page.locator("tr[data-version='1']").count() == 1
    page.goto(f"/flows/{flow.pk}/history/")
    page.locator("#timeline li[data-type=version]").first.wait_for()
    page.locator("#timeline li[data-type=node]").first.wait_for()

    # ... and the O&M centre lists the run
    page.goto(f"/runs/?flow={flow.pk}")
    page.locator("[data-testid=run-table]").get_by_text(f"#{run.pk}").wait_for()


def test_stakeholder_sees_the_flow_read_only(page, tenant, owner):
    # Given a flow with two connected nodes, and a stakeholder of it
    stakeholder = UserFactory(username="sam-stakeholder")
    MembershipFactory(user=stakeholder, tenant=tenant, role="member")
    flow = services.flow_create(tenant=tenant, user=owner, name="shared load")
    services.graph_replace(
        flow=flow,
        user=owner,
        nodes=[
            {"key": "a", "name": "extract", "type": "noop", "position": {"x": 0, "y": 0}},
            {"key": "b", "name": "report", "type": "noop", "position": {"x": 260, "y": 0}},
        ],
        edges=[{"upstream": "a", "downstream": "b"}],
    )
    services.flow_stakeholders_set(flow=flow, user=owner, users=[stakeholder.pk])

    sign_in(page, stakeholder)
    page.goto(f"/flows/{flow.pk}/")
    page.wait_for_function("() => window.tributaryEditor.cy.nodes().length === 2")
    # No palette, no save, no publish; test runs are allowed for stakeholders
    assert page.locator("[data-testid=palette]").count() == 0
    assert page.locator("[data-testid=save]").count() == 0
    assert page.locator("[data-testid=publish]").count() == 0
    assert page.locator("[data-testid=try-run]").is_visible()
    assert page.locator("[data-testid=readonly-badge]").is_visible()
    # Hovering a node offers no connection handle, and nodes cannot be dragged
    before = node_center(page, "extract")
    page.mouse.move(before["x"], before["y"])
    assert page.locator("[data-testid=connect-handle]").count() == 0
    page.mouse.down()
    page.mouse.move(before["x"] + 120, before["y"] + 80, steps=5)
    page.mouse.up()
    after = node_center(page, "extract")
    assert (round(after["x"]), round(after["y"])) == (round(before["x"]), round(before["y"]))
    # The configuration opens read-only
    page.mouse.dblclick(after["x"], after["y"])
    page.locator("#node-drawer").wait_for()
    assert page.locator("#nd-name").is_disabled()
    assert page.locator("[data-testid=node-apply]").count() == 0
    assert page.locator("#fi-name").is_disabled()


def test_member_of_another_tenant_gets_404(page, tenant, owner, other_tenant):
    flow = services.flow_create(tenant=tenant, user=owner, name="acme only")
    stranger = UserFactory(username="gina-globex")
    MembershipFactory(user=stranger, tenant=other_tenant, role="admin")

    sign_in(page, stranger)
    response = page.goto(f"/flows/{flow.pk}/")
    assert response.status == 404
    assert page.get_by_role("heading", name="Not found").is_visible()
    assert "acme only" not in page.content()
    assert page.goto(f"/flows/{flow.pk}/history/").status == 404


def test_editing_tools_and_the_unsaved_changes_warning(page, tenant, owner):
    flow = services.flow_create(tenant=tenant, user=owner, name="scratch")
    sign_in(page, owner)
    page.goto(f"/flows/{flow.pk}/")
    page.wait_for_function("() => window.tributaryEditor && window.tributaryEditor.cy")

    # Clicking palette entries adds nodes without covering each other; auto-layout arranges them
    for node_type in ("wait", "noop", "noop"):
        page.click(f"[data-testid=palette-{node_type}]")
    page.wait_for_function("() => window.tributaryEditor.cy.nodes().length === 3")
    page.click("#btn-layout")
    boxes = page.evaluate("() => window.tributaryEditor.cy.nodes().map(n => n.boundingBox())")
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert (
                a["x2"] <= b["x1"] or b["x2"] <= a["x1"] or a["y2"] <= b["y1"] or b["y2"] <= a["y1"]
            )

    # Select a node and delete it with the Delete key
    center = node_center(page, "noop_2")
    page.mouse.click(center["x"], center["y"])
    page.keyboard.press("Delete")
    page.wait_for_function("() => window.tributaryEditor.cy.nodes().length === 2")
    assert page.locator("#dirty-flag").is_visible()

    # A cycle that slips past the canvas (here forged in the page) is refused by the server on save
    page.evaluate("""() => {
        const cy = window.tributaryEditor.cy, [a, b] = cy.nodes();
        cy.add([{ group: "edges", data: { source: a.id(), target: b.id() } },
                { group: "edges", data: { source: b.id(), target: a.id() } }]);
    }""")
    page.click("[data-testid=save]")
    refusal = page.locator("[data-testid=canvas-message]", has_text="Not saved.")
    refusal.wait_for()
    assert "cycle:" in refusal.inner_text()
    assert flow.edges.count() == 0

    # Leaving with unsaved changes asks first
    page.on("dialog", lambda dialog: dialog.dismiss())
    with page.expect_event("dialog") as dialog:
        page.close(run_before_unload=True)
    assert dialog.value.type == "beforeunload"
    assert flow.nodes.count() == 0
