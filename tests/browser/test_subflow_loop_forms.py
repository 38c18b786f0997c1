"""Issue 17 §3-4 on the canvas, in a real Chromium: a data engineer adds a sub-flow node and a
loop node from the palette and configures them through the node form (the target chosen in the
flow picker, parameters, literal items, at most so many at once), saves, sees them kept after a
reload and in the API's graph; a bad value is named on the node and its field, and the rest of
the graph is kept."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import drag_type_onto_canvas, open_node, sign_in
from tests.factories import MembershipFactory, UserFactory, build_flow


@pytest.fixture
def engineer(tenant):
    user = UserFactory(username="dana-engineer")
    MembershipFactory(user=user, tenant=tenant, role="member")
    return user


def wait_editor(page, count):
    page.wait_for_function(
        "n => window.tributaryEditor && window.tributaryEditor.cy"
        " && window.tributaryEditor.cy.nodes().length === n",
        arg=count,
    )


def add_from_palette(page, node_type, x, y) -> str:
    """Drag a type from the palette onto the canvas; returns the new node's name."""
    before = set(page.evaluate("() => window.tributaryEditor.cy.nodes().map(n => n.data('name'))"))
    page.locator(f"[data-testid=palette-{node_type}]").scroll_into_view_if_needed()
    drag_type_onto_canvas(page, node_type, x, y)
    after = page.evaluate("() => window.tributaryEditor.cy.nodes().map(n => n.data('name'))")
    added = [n for n in after if n not in before]
    assert len(added) == 1, (before, after)
    return added[0]


def apply(page):
    page.click("[data-testid=node-apply]")
    page.locator("#node-drawer").wait_for(state="hidden")


def save(page):
    page.click("[data-testid=save]")
    page.locator("#dirty-flag").wait_for(state="hidden")


def picker_words(page) -> list[str]:
    return page.locator("#cfg-flow option").all_inner_texts()


def chosen_flow(page) -> str:
    return page.evaluate(
        "() => { const s = document.getElementById('cfg-flow');"
        " return s.options[s.selectedIndex].textContent; }"
    )


def graph_configs(api, engineer, tenant, flow) -> dict:
    graph = api(engineer, tenant).get(f"/api/v1/flows/{flow.pk}/graph/").json()
    return {n["name"]: (n["type"], n["config"]) for n in graph["nodes"]}


def field_errors(page, field) -> str:
    return page.locator(f"#nd-config [data-field='config.{field}'] .field-error").inner_text()


def test_subflow_node_configured_through_the_form(page, tenant, engineer, api, artifacts):
    # Given: a flow to reuse (its "region" parameter) and the flow being edited
    child, _ = build_flow(tenant=tenant, owner=engineer, name="regional load", nodes=["step"])
    build_flow(tenant=tenant, owner=engineer, name="archive", nodes=["step"])
    flow, _ = build_flow(tenant=tenant, owner=engineer, name="daily report", nodes=["extract"])
    page.set_viewport_size({"width": 1440, "height": 900})
    sign_in(page, engineer)
    page.goto(f"/flows/{flow.pk}/")
    wait_editor(page, 1)

    # When: a sub-flow node is dragged from the palette and opened
    name = add_from_palette(page, "subflow", 260, 160)
    open_node(page, name)
    assert page.locator("#nd-type").input_value() == "Sub-flow"
    # Then: the flow picker offers the tenant's other flows by name (not ids), none chosen
    words = picker_words(page)
    assert words[0] == "Choose…"
    assert "regional load" in words and "archive" in words
    assert not any("earlier cycle" in w for w in words), words  # a dependency's wording
    assert not any(w.startswith("daily report") for w in words), words  # cannot run itself

    # When: applied without a target
    page.fill("#nd-name", "load regions")
    apply_button = page.locator("[data-testid=node-apply]")
    apply_button.click()
    # Then: the form stays open and says the flow is needed, next to the picker
    assert page.locator("#node-drawer").is_visible()
    assert "required" in field_errors(page, "flow")
    page.screenshot(path=str(artifacts / "subflow-form-missing-flow.png"))

    # When: the target and a parameter are given, applied and saved
    page.select_option("#cfg-flow", label="regional load")
    # ... (the error goes once the picker is changed)
    assert page.locator("#nd-config [data-field='config.flow'] .field-error").count() == 0
    page.fill("#cfg-parameters", '{"region": "${bizdate}", "tier": "gold"}')
    page.screenshot(path=str(artifacts / "subflow-form.png"))
    apply(page)
    save(page)

    # Then: the API's graph holds the node as the issue specifies
    configs = graph_configs(api, engineer, tenant, flow)
    assert configs == {
        "extract": ("noop", {}),
        "load regions": (
            "subflow",
            {"flow": child.pk, "parameters": {"region": "${bizdate}", "tier": "gold"}},
        ),
    }

    # ... and a reload shows the form as it was saved, the target by its name
    page.reload()
    wait_editor(page, 2)
    open_node(page, "load regions")
    assert page.locator("#cfg-flow").input_value() == str(child.pk)
    assert chosen_flow(page) == "regional load"
    assert json.loads(page.locator("#cfg-parameters").input_value()) == {
        "region": "${bizdate}",
        "tier": "gold",
    }
    page.click("#nd-cancel")


def test_loop_node_configured_through_the_form(page, tenant, engineer, api, artifacts):
    # Given: a flow to run per item and the flow being edited
    child, _ = build_flow(tenant=tenant, owner=engineer, name="load one region", nodes=["step"])
    flow, _ = build_flow(
        tenant=tenant,
        owner=engineer,
        name="all regions",
        nodes=["extract", "report"],
        edges=[("extract", "report")],
    )
    page.set_viewport_size({"width": 1440, "height": 900})
    sign_in(page, engineer)
    page.goto(f"/flows/{flow.pk}/")
    wait_editor(page, 2)

    # When: a loop node is dragged from the palette and configured with literal items
    name = add_from_palette(page, "foreach", 260, 160)
    open_node(page, name)
    assert page.locator("#nd-type").input_value() == "Loop (for each)"
    assert page.locator("#cfg-max_parallel").input_value() == "4"  # the default, shown
    page.fill("#nd-name", "each region")
    page.select_option("#cfg-flow", label="load one region")
    items = [{"region": "eu", "tier": 1}, {"region": "us", "tier": 2}]
    page.fill("#cfg-items", json.dumps(items))
    page.fill("#cfg-parameters", '{"region": "${item.region}", "day": "${bizdate}"}')
    page.fill("#cfg-max_parallel", "2")
    page.screenshot(path=str(artifacts / "foreach-form.png"))
    page.locator("#nd-name").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "foreach-form-top.png"))
    apply(page)
    save(page)

    # Then: the API's graph holds it, next to the nodes that were there
    expected = {
        "flow": child.pk,
        "items": items,
        "parameters": {"region": "${item.region}", "day": "${bizdate}"},
        "max_parallel": 2,
    }
    assert graph_configs(api, engineer, tenant, flow) == {
        "extract": ("noop", {}),
        "report": ("noop", {}),
        "each region": ("foreach", expected),
    }

    # ... and a reload shows it again
    page.reload()
    wait_editor(page, 3)
    open_node(page, "each region")
    assert chosen_flow(page) == "load one region"
    assert json.loads(page.locator("#cfg-items").input_value()) == items
    assert page.locator("#cfg-max_parallel").input_value() == "2"

    # When: the items are not JSON at all
    page.fill("#cfg-items", '[{"region": "eu"')
    page.click("[data-testid=node-apply]")
    # Then: the form says so under Items, in view, and stays open
    assert "Not valid JSON" in field_errors(page, "items")
    expect(page.locator("#nd-config [data-field='config.items'] .field-error")).to_be_in_viewport()
    assert page.locator("#node-drawer").is_visible()

    # When: the items are an object, not a list, and the graph is saved
    page.fill("#cfg-items", '{"region": "eu"}')
    apply(page)
    page.click("[data-testid=save]")
    # Then: the canvas names the node and the field, and keeps every node as it was
    message = page.locator("[data-testid=canvas-message]")
    message.wait_for()
    text = message.inner_text()
    assert "Not saved" in text and "each region" in text and "Items" in text, text
    assert "config.items" not in text and "nodes." not in text, text
    assert sorted(
        page.evaluate("() => window.tributaryEditor.cy.nodes().map(n => n.data('name'))")
    ) == ["each region", "extract", "report"]
    assert page.evaluate("() => window.tributaryEditor.cy.edges().length") == 1
    assert page.evaluate("() => window.tributaryEditor.isDirty()")
    page.screenshot(path=str(artifacts / "foreach-not-saved.png"))
    # ... the saved graph is untouched
    assert graph_configs(api, engineer, tenant, flow)["each region"] == ("foreach", expected)
    # ... and the node's form shows the problem under Items, the other fields as typed
    open_node(page, "each region")
    assert "list" in field_errors(page, "items")
    # ... scrolled to the field at fault, far down the form
    expect(page.locator("#nd-config [data-field='config.items'] .field-error")).to_be_in_viewport()
    assert chosen_flow(page) == "load one region"
    assert page.locator("#cfg-max_parallel").input_value() == "2"
    page.screenshot(path=str(artifacts / "foreach-form-error.png"))

    # When: fixed and saved again
    page.fill("#cfg-items", json.dumps(items))
    apply(page)
    save(page)
    # Then: the banner is gone and the graph is as before
    assert page.locator("[data-testid=canvas-message]").count() == 0
    assert graph_configs(api, engineer, tenant, flow)["each region"] == ("foreach", expected)
