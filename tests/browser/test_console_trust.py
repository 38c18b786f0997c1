"""Issue 20 in a real Chromium: what you save is what you see, one save model, zones labelled,
layouts that hold, messages in words. One test per defect, each failing before its fix.
"""

from __future__ import annotations

from datetime import UTC

import pytest

from flows import services
from scheduling.models import Schedule
from tests.browser.conftest import connect, sign_in
from tests.factories import MembershipFactory, UserFactory


@pytest.fixture
def owner(tenant):
    user = UserFactory(username="olivia-owner")
    MembershipFactory(user=user, tenant=tenant, role="member")
    return user


def open_editor(page, flow) -> None:
    page.goto(f"/flows/{flow.pk}/")
    page.wait_for_function("() => window.tributaryEditor && window.tributaryEditor.cy")
    # The panel's forms are filled from the API once; typing before that would be overwritten.
    page.locator("#config-panel[data-loaded]").wait_for(state="attached")


def two_nodes(flow, owner, *, edges=()):
    services.graph_replace(
        flow=flow,
        user=owner,
        nodes=[
            {"key": "a", "name": "extract", "type": "noop", "position": {"x": 0, "y": 0}},
            {"key": "b", "name": "report", "type": "noop", "position": {"x": 300, "y": 0}},
        ],
        edges=[{"upstream": u, "downstream": d} for u, d in edges],
    )


SIMPLE_FORMS = [
    # kind, what to fill, what the form must show after a reload
    ("minutes", {"#sc-interval": "15"}, {"#sc-interval": "15"}),
    ("hours", {"#sc-interval": "6"}, {"#sc-interval": "6"}),
    ("daily", {"#sc-time": "06:30"}, {"#sc-time": "06:30"}),
    ("weekly", {"#sc-time": "00:00"}, {"#sc-time": "00:00"}),
    ("monthly", {"#sc-time": "02:15", "#sc-monthdays": "1, 15"}, {"#sc-monthdays": "1, 15"}),
]


def test_every_simple_schedule_form_round_trips_through_save_and_reload(page, tenant, owner):
    # Given a flow and its owner in the editor
    flow = services.flow_create(tenant=tenant, user=owner, name="round trip")
    sign_in(page, owner)
    refused: list[str] = []
    page.on(
        "response",
        lambda r: (
            refused.append(r.url) if "/schedule/preview/" in r.url and r.status >= 400 else None
        ),
    )
    for kind, fill, expected in SIMPLE_FORMS:
        # When the owner saves the simple form ...
        open_editor(page, flow)
        page.click(".tab[data-tab=schedule]")
        page.check("#sc-enabled")
        page.select_option("#sc-kind", kind)
        for selector, value in fill.items():
            page.fill(selector, value)
        if kind == "weekly":
            page.check("input[name=weekday][value='1']")
            page.check("input[name=weekday][value='4']")
        page.fill("#sc-tz", "Asia/Shanghai")
        page.click("#form-schedule [data-save]")
        page.get_by_text("Schedule saved.").last.wait_for()
        assert Schedule.objects.get(flow=flow).kind == kind

        # ... then the form just redrawn, and the form after a reload, show what was saved
        for reload in (False, True):
            if reload:
                refused.clear()  # (typing a half-filled form may be refused; loading may not)
                open_editor(page, flow)
                page.click(".tab[data-tab=schedule]")
            assert page.locator("#sc-kind").input_value() == kind
            for selector, value in expected.items():
                assert page.locator(selector).input_value() == value, (kind, selector)
            if kind == "weekly":
                ticked = page.eval_on_selector_all(
                    "input[name=weekday]:checked", "els => els.map(e => e.value)"
                )
                assert ticked == ["1", "4"], f"weekly days after {'reload' if reload else 'save'}"
            page.wait_for_function("() => document.querySelectorAll('#sc-preview li').length > 0")
            assert page.locator("#form-schedule .field-error").count() == 0, kind
        assert refused == [], f"the editor's preview of the saved {kind} schedule was refused"


def test_a_successful_connection_shows_no_already_connected_warning(page, tenant, owner):
    flow = services.flow_create(tenant=tenant, user=owner, name="wiring")
    two_nodes(flow, owner)
    sign_in(page, owner)
    open_editor(page, flow)
    page.wait_for_function("() => window.tributaryEditor.cy.nodes().length === 2")

    connect(page, "extract", "report")

    page.wait_for_function("() => window.tributaryEditor.cy.edges().length === 1")
    # edgehandles emits its stop event right after the completion, in the same mouseup handler
    assert page.locator("[data-testid=canvas-message]").count() == 0


def test_labels_are_words_and_the_condition_form_follows_its_mode(page, tenant, owner, sqlite_dir):
    # Given a flow with a condition node and a data sync node, a weekly schedule and a run
    from django.utils import timezone

    from flows.models import DataSource
    from operations.models import FlowRun
    from scheduling import services as scheduling_services

    ds = DataSource.objects.create(
        tenant=tenant,
        name="warehouse",
        engine="sqlite",
        database=str(sqlite_dir / "w.sqlite3"),
        options={"create": True},
    )
    flow = services.flow_create(tenant=tenant, user=owner, name="words")
    services.graph_replace(
        flow=flow,
        user=owner,
        nodes=[
            {
                "key": "c",
                "name": "check",
                "type": "condition",
                "position": {"x": 0, "y": 0},
                "config": {"mode": "expression", "expression": "1 > 0"},
            },
            {
                "key": "s",
                "name": "copy",
                "type": "data_sync",
                "position": {"x": 300, "y": 0},
                "config": {
                    "source": ds.pk,
                    "query": "select 1 as a",
                    "target": ds.pk,
                    "table": "t",
                },
            },
        ],
        edges=[],
    )
    scheduling_services.schedule_save(
        flow=flow, user=owner, kind="weekly", time="00:00", days=["mon", "thu"], timezone="UTC"
    )
    run = FlowRun.objects.create(
        tenant=tenant,
        flow=flow,
        mode="point_in_time",
        status="succeeded",
        business_time=timezone.now(),
        error_policy="complete_running",
        concurrency_policy="skip",
        snapshot={"nodes": [], "edges": []},
    )
    sign_in(page, owner)
    open_editor(page, flow)

    # The condition's mode is offered in words, and only the fields of the chosen mode show
    center = page.evaluate("() => window.tributaryEditor.renderedCenter('check')")
    page.mouse.dblclick(center["x"], center["y"])
    page.locator("#node-drawer").wait_for()
    options = page.locator("#cfg-mode option").all_inner_texts()
    assert "sql" not in options and "expression" not in options, options
    assert page.locator("#cfg-expression").is_visible()
    assert not page.locator("#cfg-sql").is_visible()
    assert not page.locator("#cfg-datasource").is_visible()
    page.select_option("#cfg-mode", "sql")
    assert page.locator("#cfg-sql").is_visible() and page.locator("#cfg-datasource").is_visible()
    assert not page.locator("#cfg-expression").is_visible()
    page.click("#nd-cancel")

    # ... the data sync's mode too
    center = page.evaluate("() => window.tributaryEditor.renderedCenter('copy')")
    page.mouse.dblclick(center["x"], center["y"])
    page.locator("#node-drawer").wait_for()
    options = page.locator("#cfg-mode option").all_inner_texts()
    assert "append" not in options and "overwrite" not in options, options
    page.click("#nd-cancel")

    # The schedule's state and form in words
    page.click(".tab[data-tab=schedule]")
    state = page.locator("#sc-state").inner_text()
    assert "every Monday and Thursday at 00:00" in state and "not_published" not in state, state

    # The O&M centre's flow information, and the run page's mode
    page.goto(f"/runs/?flow={flow.pk}")
    info = page.locator("main").inner_text()
    assert "every Monday and Thursday at 00:00" in info and "HH:MM" not in info
    page.goto(f"/runs/{run.pk}/")
    page.locator("#run-kv").get_by_text("Run at a point in time").wait_for()
    assert "point_in_time" not in page.locator("#run-kv").inner_text()


def test_times_carry_their_zone_and_follow_the_schedule_with_a_switch(
    browser, live_server, tenant, owner
):
    # Given a Mon/Thu 00:00 Asia/Shanghai schedule, a run at its first fire time (Mon 00:00 in
    # Shanghai, Sunday 16:00 UTC), and a viewer in New York
    from datetime import datetime

    from operations.models import FlowRun
    from scheduling import services as scheduling_services

    flow = services.flow_create(tenant=tenant, user=owner, name="zones")
    scheduling_services.schedule_save(
        flow=flow,
        user=owner,
        kind="weekly",
        time="00:00",
        days=["mon", "thu"],
        timezone="Asia/Shanghai",
    )
    two_nodes(flow, owner)
    services.flow_publish(flow=flow, user=owner)
    FlowRun.objects.create(
        tenant=tenant,
        flow=flow,
        mode="time_range",
        status="succeeded",
        business_time=datetime(2026, 12, 6, 16, 0, tzinfo=UTC),
        error_policy="complete_running",
        concurrency_policy="skip",
        snapshot={"nodes": [], "edges": []},
    )
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": 1440, "height": 900},
        timezone_id="America/New_York",
    )
    page = context.new_page()
    try:
        sign_in(page, owner)
        # When the O&M centre lists the flow's runs
        page.goto(f"/runs/?flow={flow.pk}")
        headers = page.locator("[data-testid=run-table] thead th").all_inner_texts()
        column = [h.strip().lower() for h in headers].index("business time")
        cell = page.locator("[data-testid=run-table] tbody tr").first.locator("td").nth(column)
        cell.get_by_text("Asia/Shanghai").wait_for()
        # Then the business time is the schedule's wall time, a Monday, with its zone
        assert cell.inner_text().startswith("2026-12-07 Mon 00:00"), cell.inner_text()
        # ... the next fire time is in the schedule's zone, at 00:00, and says so
        next_fire = page.locator("time[data-fmt]").first
        assert "Asia/Shanghai" in next_fire.inner_text() and " 00:00" in next_fire.inner_text()

        # When the viewer switches to UTC, every time follows, named UTC
        page.select_option("[data-testid=tz-switch]", "utc")
        cell.get_by_text("UTC").wait_for()
        assert cell.inner_text().startswith("2026-12-06 Sun 16:00"), cell.inner_text()
        assert "UTC" in next_fire.inner_text() and " 16:00" in next_fire.inner_text()
        # ... and to their own zone (remembered across pages)
        page.select_option("[data-testid=tz-switch]", "local")
        cell.get_by_text("America/New_York").wait_for()
        assert cell.inner_text().startswith("2026-12-06 Sun 11:00"), cell.inner_text()
    finally:
        context.close()


LONG_NAME = ("Quarterly revenue reconciliation across every regional warehouse " * 3)[:128]
LONG_SCENARIO = ("Finance and controlling, month-end close and audit preparation " * 3)[:128]


def _no_horizontal_overflow(page) -> None:
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page is {width[0]} px wide in a {width[1]} px window"


def test_long_names_truncate_with_hover_and_the_editor_keeps_one_toolbar_row(
    browser, live_server, tenant, owner, artifacts
):
    # Given a flow whose name and scenario have the allowed 128 characters
    flow = services.flow_create(
        tenant=tenant, user=owner, name=LONG_NAME, business_scenario=LONG_SCENARIO
    )
    two_nodes(flow, owner)
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1440, "height": 900})
    page = context.new_page()
    try:
        sign_in(page, owner)
        # The flow list keeps its columns on screen, the name cut with an ellipsis and whole on hover
        page.goto("/flows/")
        _no_horizontal_overflow(page)
        row = page.locator("[data-testid=flow-table] tbody tr").first
        for what, cell in (
            ("owner", row.locator("td").nth(2)),
            ("edit", row.get_by_role("link", name="Edit")),
        ):
            box = cell.bounding_box()
            assert box["x"] + box["width"] <= 1440, f"the {what} column is off-screen: {box}"
        name = row.locator("[data-testid=flow-name-cell]")
        assert name.get_attribute("title") == LONG_NAME
        assert name.evaluate("e => getComputedStyle(e).textOverflow") == "ellipsis"
        assert name.evaluate("e => e.scrollWidth > e.clientWidth")
        page.screenshot(path=str(artifacts / "flow-list-long-name.png"))

        # The O&M centre's filter fits too
        page.goto(f"/runs/?flow={flow.pk}")
        _no_horizontal_overflow(page)

        # The editor: one toolbar row, the title cut with its full text on hover
        open_editor(page, flow)
        _no_horizontal_overflow(page)
        title = page.locator("[data-testid=flow-name]")
        assert title.get_attribute("title") == LONG_NAME
        tops = page.eval_on_selector_all(
            ".editor-head .actions > *",
            "els => els.map(e => Math.round(e.getBoundingClientRect().top))",
        )
        assert max(tops) - min(tops) <= 4, f"the toolbar wraps: {tops}"
        canvas_top = page.locator("#cy").bounding_box()["y"]
        # ... and the unsaved-changes badge does not move the canvas
        page.evaluate("() => window.tributaryEditor.setDirty(true)")
        page.locator("#dirty-flag").wait_for()
        assert page.locator("#cy").bounding_box()["y"] == canvas_top
        page.evaluate("() => window.tributaryEditor.setDirty(false)")
        page.screenshot(path=str(artifacts / "editor-long-name.png"))
    finally:
        context.close()


def test_one_save_model_without_reloads_and_a_warning_before_losing_work(page, tenant, owner):
    flow = services.flow_create(tenant=tenant, user=owner, name="save model")
    two_nodes(flow, owner)
    sign_in(page, owner)
    open_editor(page, flow)
    page.evaluate("() => { window.__sameDocument = true; }")

    # Editing the description marks its tab and the page as unsaved
    page.click(".tab[data-tab=info]")
    page.fill("#fi-description", "Loads the day's orders")
    assert page.locator(".tab[data-tab=info].dirty").count() == 1
    page.locator("#dirty-flag").wait_for()
    # ... and the top Save saves it, without reloading the page
    page.click("[data-testid=save]")
    page.locator("#dirty-flag").wait_for(state="hidden")
    flow.refresh_from_db()
    assert flow.description == "Loads the day's orders"
    assert page.locator(".tab[data-tab=info].dirty").count() == 0

    # "Save information" with unsaved canvas edits keeps the canvas as it is
    page.click("[data-testid=palette-noop]")
    page.wait_for_function("() => window.tributaryEditor.cy.nodes().length === 3")
    page.fill("#fi-name", "save model, renamed")
    page.click("#form-info [data-save]")
    page.get_by_text("Information saved.").wait_for()
    page.locator("[data-testid=flow-name]", has_text="save model, renamed").wait_for()
    assert page.evaluate("() => window.__sameDocument === true"), "the page was reloaded"
    assert page.evaluate("() => window.tributaryEditor.cy.nodes().length") == 3
    assert page.locator("#dirty-flag").is_visible()  # the canvas is still unsaved
    flow.refresh_from_db()
    assert flow.name == "save model, renamed" and flow.nodes.count() == 2

    # Leaving with an unsaved panel edit (the canvas saved) asks first
    page.click("[data-testid=save]")
    page.locator("#dirty-flag").wait_for(state="hidden")
    assert flow.nodes.count() == 3
    page.click(".tab[data-tab=notifications]")
    page.fill("#nt-emails", "ops@example.com")
    page.on("dialog", lambda dialog: dialog.dismiss())
    with page.expect_event("dialog") as dialog:
        page.close(run_before_unload=True)
    assert dialog.value.type == "beforeunload"


def _edge_point(page, upstream: str, downstream: str) -> dict:
    return page.evaluate(
        """([u, d]) => {
            const ed = window.tributaryEditor.cy.edges().filter(
                e => e.source().data('name') === u && e.target().data('name') === d)[0];
            const m = ed.renderedMidpoint(), r = document.getElementById('cy').getBoundingClientRect();
            return { x: r.left + m.x, y: r.top + m.y };
        }""",
        [upstream, downstream],
    )


def test_a_connection_has_a_settings_popover_for_its_branch_and_delete(page, tenant, owner):
    flow = services.flow_create(tenant=tenant, user=owner, name="branches")
    services.graph_replace(
        flow=flow,
        user=owner,
        nodes=[
            {
                "key": "c",
                "name": "check",
                "type": "condition",
                "position": {"x": 0, "y": 100},
                "config": {"mode": "expression", "expression": "1 > 0"},
            },
            {"key": "y", "name": "yes", "type": "noop", "position": {"x": 320, "y": 0}},
            {"key": "n", "name": "no", "type": "noop", "position": {"x": 320, "y": 220}},
        ],
        edges=[
            {"upstream": "c", "downstream": "y", "branch": "true"},
            {"upstream": "c", "downstream": "n", "branch": "false"},
        ],
    )
    sign_in(page, owner)
    open_editor(page, flow)
    page.wait_for_function("() => window.tributaryEditor.cy.edges().length === 2")
    assert "Click a connection for its settings" in page.locator(".palette .hint").inner_text()
    branch_of = "name => window.tributaryEditor.cy.edges().filter(e => e.target().data('name') === name)[0].data('branch')"

    # A double-click no longer flips the branch by accident
    point = _edge_point(page, "check", "yes")
    page.mouse.dblclick(point["x"], point["y"])
    assert page.evaluate(branch_of, "yes") == "true"

    # A click opens the connection's settings: its branch in words, and delete
    page.mouse.click(point["x"], point["y"])
    popover = page.locator("[data-testid=edge-popover]")
    popover.wait_for()
    assert "check → yes" in popover.inner_text()
    page.select_option("[data-testid=edge-branch]", "false")
    assert page.evaluate(branch_of, "yes") == "false"
    assert page.locator("#dirty-flag").is_visible()
    point = _edge_point(page, "check", "no")
    page.mouse.click(point["x"], point["y"])
    popover.get_by_text("check → no").wait_for()
    page.click("[data-testid=edge-delete]")
    page.wait_for_function("() => window.tributaryEditor.cy.edges().length === 1")
    assert popover.is_hidden()


LONG_NODE = (
    "load_every_order_line_of_every_regional_warehouse_into_the_quarterly_reconciliation_mart"
)


def test_run_page_node_panel_is_full_width_resizable_and_follows_the_running_node(
    browser, live_server, tenant, owner, artifacts
):
    # Given a running run: a long-named node finished, "transform" running with a log
    from django.utils import timezone

    from operations.models import FlowRun, NodeRun

    flow = services.flow_create(tenant=tenant, user=owner, name="run page")
    now = timezone.now()
    nodes = [
        {"id": 1, "name": LONG_NODE, "type": "noop", "position": {"x": 0, "y": 0}},
        {"id": 2, "name": "transform", "type": "noop", "position": {"x": 300, "y": 0}},
        {"id": 3, "name": "publish", "type": "noop", "position": {"x": 600, "y": 0}},
    ]
    run = FlowRun.objects.create(
        tenant=tenant,
        flow=flow,
        mode="try",
        status="running",
        business_time=now,
        started_at=now,
        error_policy="complete_running",
        concurrency_policy="skip",
        snapshot={
            "nodes": nodes,
            "edges": [{"upstream": 1, "downstream": 2}, {"upstream": 2, "downstream": 3}],
        },
    )

    def node_run(node, status, log, **times):
        return NodeRun.objects.create(
            tenant=tenant,
            run=run,
            node_id=node["id"],
            node_name=node["name"],
            node_type="noop",
            status=status,
            log=log,
            rendered_config={"sql": f"select '{node['name']}'"},
            **times,
        )

    node_run(nodes[0], "succeeded", "first done", started_at=now, finished_at=now)
    transform = node_run(nodes[1], "running", "transforming rows", started_at=now)
    node_run(nodes[2], "pending", "")

    context = browser.new_context(base_url=live_server.url, viewport={"width": 1440, "height": 900})
    page = context.new_page()
    try:
        sign_in(page, owner)
        page.goto(f"/runs/{run.pk}/")
        # Then without a click, the panel shows the running node, its configuration and its log
        panel = page.locator("[data-testid=node-panel]")
        panel.wait_for()
        page.locator("[data-testid=node-log]", has_text="transforming rows").wait_for()
        assert page.locator("#np-title").inner_text() == "transform"
        assert "select 'transform'" in page.locator("[data-testid=node-config]").inner_text()
        # ... across the page's width, resizable
        assert panel.bounding_box()["width"] >= 1300
        assert page.locator(".np-body").evaluate("e => getComputedStyle(e).resize") == "vertical"
        # ... and the node list keeps its columns: the long name cut, the duration whole
        name = page.locator("#node-rows .node-name .truncate").first
        assert name.get_attribute("title") == LONG_NODE
        table = page.locator(".table-card", has=page.locator("table.node-list")).bounding_box()
        for cell in page.locator("#node-rows tr td:last-child").all():
            box = cell.bounding_box()
            assert box["x"] + box["width"] <= table["x"] + table["width"] + 1
        page.screenshot(path=str(artifacts / "run-page.png"))

        # When "transform" finishes and "publish" starts, the panel follows
        NodeRun.objects.filter(pk=transform.pk).update(
            status="succeeded", finished_at=timezone.now()
        )
        NodeRun.objects.filter(run=run, node_id=3).update(
            status="running", started_at=timezone.now(), log="publishing"
        )
        page.locator("[data-testid=node-log]", has_text="publishing").wait_for()
        assert page.locator("#np-title").inner_text() == "publish"

        # When the user picks a node, it stays picked
        page.locator("#node-rows tr", has_text="transform").click()
        page.locator("[data-testid=node-log]", has_text="transforming rows").wait_for()
        assert not page.locator("[data-testid=follow-running]").is_checked()
    finally:
        context.close()


def test_canvas_undo_redo_and_messages_in_words(page, tenant, owner):
    flow = services.flow_create(tenant=tenant, user=owner, name="messages")
    two_nodes(flow, owner, edges=[("a", "b")])
    sign_in(page, owner)
    open_editor(page, flow)
    count = "() => window.tributaryEditor.cy.nodes().length"
    page.wait_for_function("() => window.tributaryEditor.cy.nodes().length === 2")

    # Undo and redo canvas edits: an added node, a deleted node with its connection
    page.click("[data-testid=palette-noop]")
    page.wait_for_function("() => window.tributaryEditor.cy.nodes().length === 3")
    page.locator("#cy").click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+z")
    assert page.evaluate(count) == 2
    assert page.locator("#dirty-flag").is_hidden()  # back to what was saved
    page.keyboard.press("Control+Shift+z")
    assert page.evaluate(count) == 3
    page.click("[data-testid=undo]")
    page.evaluate(
        "() => { const e = window.tributaryEditor; e.cy.$(':selected').unselect();"
        " e.nodeByName('report').select(); }"
    )
    page.keyboard.press("Delete")
    page.wait_for_function("() => window.tributaryEditor.cy.edges().length === 0")
    page.click("[data-testid=undo]")
    assert page.evaluate("() => window.tributaryEditor.cy.edges().length") == 1
    assert page.evaluate(count) == 2

    # A refused cycle: its message leaves with its highlight
    connect(page, "report", "extract", allowed=False)
    page.locator("[data-testid=canvas-message]").wait_for()
    page.wait_for_function(
        "() => window.tributaryEditor.cy.$('.refused').length === 0", timeout=10_000
    )
    page.locator("[data-testid=canvas-message]").wait_for(state="detached", timeout=1_000)

    # A refused save names the node and the field in words, not paths
    page.evaluate("""() => {
        const n = window.tributaryEditor.nodeByName('extract');
        n.data({ type: 'sql', config: { sql: 'select 1' } });
        window.tributaryEditor.setDirty(true);
    }""")
    page.click("[data-testid=save]")
    refusal = page.locator("[data-testid=canvas-message]", has_text="Not saved.")
    refusal.wait_for()
    text = refusal.inner_text()
    assert "Node “extract”" in text and "Data source" in text, text
    assert "config." not in text and "nodes." not in text, text

    # The dependency check names this flow for what it is
    page.evaluate("() => window.tributaryEditor.undo()")
    page.click("[data-testid=palette-dependency_check]")
    page.wait_for_function("() => window.tributaryEditor.cy.nodes().length === 3")
    center = page.evaluate("() => window.tributaryEditor.renderedCenter('dependency_check_1')")
    page.mouse.dblclick(center["x"], center["y"])
    page.locator("#node-drawer").wait_for()
    own = page.locator(f"#cfg-flow option[value='{flow.pk}']").inner_text()
    assert "this flow" in own, own
