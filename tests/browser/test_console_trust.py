"""Issue 20 in a real Chromium: what you save is what you see, one save model, zones labelled,
layouts that hold, messages in words. One test per defect, each failing before its fix.
"""

from __future__ import annotations

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
