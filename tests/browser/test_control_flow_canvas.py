"""Issue 17 §1-5 on the console, in a real Chromium: a node's trigger rule and enabled switch
in the canvas (chosen in words, marked on the node, saved, shown again, in the API), a
disabled node greyed on a real run's page, the node menu's node-scoped test runs on real
workers, and sub-flow and loop runs linked between parent and child pages."""

from __future__ import annotations

import pytest

from tests.browser.conftest import node_center, sign_in
from tests.factories import MembershipFactory, UserFactory, build_flow

RUN_DEADLINE_MS = 60_000


@pytest.fixture
def owner(tenant):
    user = UserFactory(username="olivia-owner")
    MembershipFactory(user=user, tenant=tenant, role="member")
    return user


def open_node(page, name):
    center = node_center(page, name)
    page.mouse.dblclick(center["x"], center["y"])
    page.locator("#node-drawer").wait_for()


def apply_and_save(page):
    page.click("[data-testid=node-apply]")
    page.locator("#node-drawer").wait_for(state="hidden")
    page.click("[data-testid=save]")
    page.locator("#dirty-flag").wait_for(state="hidden")


def canvas_node(page, name) -> dict:
    """What the canvas draws for a node: its label (as rendered) and whether it is greyed."""
    return page.evaluate(
        """name => {
            const n = window.tributaryEditor.nodeByName(name);
            return { label: n.style('label'), opacity: Number(n.style('opacity')),
                     border: n.style('border-style') };
        }""",
        name,
    )


def wait_editor(page, count):
    page.wait_for_function(
        "n => window.tributaryEditor && window.tributaryEditor.cy"
        " && window.tributaryEditor.cy.nodes().length === n",
        arg=count,
    )


def test_trigger_rule_and_enabled_switch_on_the_canvas(page, tenant, owner, api, artifacts):
    # Given: extract -> load -> report, and extract -> cleanup
    flow, _ = build_flow(
        tenant=tenant,
        owner=owner,
        name="nightly load",
        nodes=["extract", "load", "report", "cleanup"],
        edges=[("extract", "load"), ("load", "report"), ("extract", "cleanup")],
    )
    page.set_viewport_size({"width": 1440, "height": 900})
    sign_in(page, owner)
    page.goto(f"/flows/{flow.pk}/")
    wait_editor(page, 4)
    assert canvas_node(page, "cleanup")["opacity"] == 1

    # When: cleanup runs when one upstream failed, chosen from the rules in words
    open_node(page, "cleanup")
    assert page.locator("#nd-trigger-rule").input_value() == "all_success"
    assert page.locator("#nd-trigger-rule option").all_inner_texts() == [
        "all upstreams succeeded (default)",
        "all upstreams finished, whatever the outcome",
        "one upstream succeeded",
        "one upstream failed (cleanup, alert)",
        "every upstream failed",
        "no upstream failed",
    ]
    page.select_option("#nd-trigger-rule", label="one upstream failed (cleanup, alert)")
    page.click("[data-testid=node-apply]")
    page.locator("#node-drawer").wait_for(state="hidden")
    # Then the node carries the rule's mark, in words
    label = canvas_node(page, "cleanup")["label"]
    assert "⚑ when one failed" in label and "one_failed" not in label

    # When: load is switched off
    open_node(page, "load")
    assert page.locator("#nd-enabled").is_checked()
    page.uncheck("#nd-enabled")
    apply_and_save(page)
    # Then it is greyed and says so; the others are not
    load = canvas_node(page, "load")
    assert load["opacity"] < 1 and load["border"] == "dashed"
    assert "disabled" in load["label"]
    assert canvas_node(page, "report")["opacity"] == 1

    # ... saved, and in the API as node fields
    graph = api(owner, tenant).get(f"/api/v1/flows/{flow.pk}/graph/").json()
    fields = {n["name"]: (n["trigger_rule"], n["enabled"]) for n in graph["nodes"]}
    assert fields == {
        "extract": ("all_success", True),
        "load": ("all_success", False),
        "report": ("all_success", True),
        "cleanup": ("one_failed", True),
    }

    # ... and shown again after a reload: the marks, the greying and the form's values
    page.reload()
    wait_editor(page, 4)
    assert "⚑ when one failed" in canvas_node(page, "cleanup")["label"]
    assert canvas_node(page, "load")["opacity"] < 1
    page.click("#btn-fit")
    page.screenshot(path=str(artifacts / "canvas-control-fields.png"))
    open_node(page, "cleanup")
    assert page.locator("#nd-trigger-rule").input_value() == "one_failed"
    assert page.locator("#nd-enabled").is_checked()
    page.click("#nd-cancel")
    open_node(page, "load")
    assert not page.locator("#nd-enabled").is_checked()
    page.click("#nd-cancel")
