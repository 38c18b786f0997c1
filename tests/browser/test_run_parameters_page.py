"""The console's run buttons ask for the declared parameters (a form generated from them),
and the point-in-time dialog offers the version; the Parameters tab edits the declarations."""

from __future__ import annotations

import pytest

from flows import services
from operations.models import FlowRun
from tests.browser.conftest import sign_in
from tests.factories import MembershipFactory, UserFactory

DECLARED = [
    {"name": "region", "type": "string", "required": True, "choices": ["eu", "us"]},
    {"name": "limit", "type": "integer", "default": 10, "description": "rows at most"},
]


@pytest.fixture
def owner(tenant):
    user = UserFactory(username="olivia-owner")
    MembershipFactory(user=user, tenant=tenant, role="member")
    return user


@pytest.fixture
def flow(tenant, owner):
    flow = services.flow_create(tenant=tenant, user=owner, name="params", parameters=DECLARED)
    services.graph_replace(
        flow=flow,
        user=owner,
        nodes=[{"key": "a", "name": "only", "type": "noop", "position": {"x": 0, "y": 0}}],
        edges=[],
    )
    services.flow_publish(flow=flow, user=owner)
    return flow


def _new_run(page, flow) -> FlowRun:
    page.wait_for_url(lambda url: "/runs/" in url)
    return FlowRun.objects.filter(flow=flow).latest("id")


def test_try_run_asks_for_the_parameters_then_runs_with_them(page, owner, flow):
    sign_in(page, owner)
    page.goto(f"/flows/{flow.pk}/")
    page.wait_for_function("() => window.tributaryEditor.cy.nodes().length === 1")

    page.click("[data-testid=try-run]")
    form = page.locator("[data-testid=rt-params]")
    form.locator("[data-param-input=region]").wait_for()
    assert form.locator("[data-param-input=limit]").input_value() == "10"
    assert "rows at most" in form.inner_text()
    form.locator("[data-param-input=region]").select_option("us")
    form.locator("[data-param-input=limit]").fill("7")
    page.click("[data-testid=params-run]")

    run = _new_run(page, flow)
    assert run.mode == "try" and run.version_id is None
    assert run.parameters == {"region": "us", "limit": 7}
    page.locator("[data-testid=run-parameters]").wait_for()
    assert "region = us" in page.locator("[data-testid=run-parameters]").inner_text()


def test_a_missing_required_parameter_is_shown_on_its_field(page, owner, flow):
    sign_in(page, owner)
    page.goto(f"/flows/{flow.pk}/")
    page.wait_for_function("() => window.tributaryEditor.cy.nodes().length === 1")

    page.click("[data-testid=try-run]")
    page.locator("[data-testid=rt-params] [data-param-input=region]").wait_for()
    page.click("[data-testid=params-run]")

    error = page.locator("#form-params [data-field='parameters.region'] .field-error")
    error.wait_for()
    assert "required" in error.inner_text()
    assert not FlowRun.objects.exists()


def test_point_in_time_dialog_runs_the_chosen_version_with_parameters(page, owner, flow):
    sign_in(page, owner)
    page.goto(f"/flows/{flow.pk}/")
    page.wait_for_function("() => window.tributaryEditor.cy.nodes().length === 1")

    page.click("[data-open=dlg-point]")
    assert page.locator("#rp-version").input_value() == "published"
    page.locator("[data-testid=rp-params] [data-param-input=region]").select_option("eu")
    page.click("#form-point button[type=submit]")

    run = _new_run(page, flow)
    assert run.mode == "point_in_time" and run.version.number == 1
    assert run.parameters == {"region": "eu", "limit": 10}


def test_the_parameters_tab_saves_declarations(page, owner, flow):
    sign_in(page, owner)
    page.goto(f"/flows/{flow.pk}/")
    page.click("[data-tab=parameters]")
    rows = page.locator("[data-testid=parameter-rows] [data-param-row]")
    rows.nth(1).wait_for()
    page.click("#param-add")
    last = rows.nth(2)
    last.locator("[data-k=name]").fill("day")
    last.locator("[data-k=type]").select_option("date")
    last.locator("[data-k=default]").fill("2024-01-31")
    page.click("#form-parameters [data-save]")

    page.wait_for_function(
        "() => document.querySelectorAll('#param-rows [data-param-row]').length === 3"
        " && document.querySelector('.toast') !== null"
    )
    flow.refresh_from_db()
    assert flow.parameters[2] == {
        "name": "day",
        "type": "date",
        "required": False,
        "default": "2024-01-31",
        "choices": None,
        "description": "",
    }
