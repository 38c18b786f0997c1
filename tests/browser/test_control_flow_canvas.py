"""Issue 17 §1-5 on the console, in a real Chromium: a node's trigger rule and enabled switch
in the canvas (chosen in words, marked on the node, saved, shown again, in the API), a
disabled node greyed on a real run's page, the node menu's node-scoped test runs on real
workers, and sub-flow and loop runs linked between parent and child pages."""

from __future__ import annotations

import re

import pytest

from flows.services import flow_publish
from operations.models import FlowRun
from tests.browser.conftest import open_node, sign_in
from tests.factories import MembershipFactory, UserFactory, build_flow

RUN_DEADLINE_MS = 60_000


@pytest.fixture
def owner(tenant):
    user = UserFactory(username="olivia-owner")
    MembershipFactory(user=user, tenant=tenant, role="member")
    return user


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
    page.click("[data-testid=node-apply]")
    page.locator("#node-drawer").wait_for(state="hidden")
    assert canvas_node(page, "load")["opacity"] < 1
    # ... undo brings it back as it was, redo switches it off again, greyed each time
    page.click("#btn-undo")
    assert canvas_node(page, "load")["opacity"] == 1
    assert "disabled" not in canvas_node(page, "load")["label"]
    page.click("#btn-redo")
    page.click("[data-testid=save]")
    page.locator("#dirty-flag").wait_for(state="hidden")
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
    page.screenshot(path=str(artifacts / "canvas-node-form.png"))
    assert page.locator("#nd-enabled").is_checked()
    page.click("#nd-cancel")
    open_node(page, "load")
    assert not page.locator("#nd-enabled").is_checked()
    page.click("#nd-cancel")


def run_page_settled(page, statuses: dict) -> None:
    """Wait (with the run page's own polling) until the run has finished and its nodes read
    as `statuses` ({name: status})."""
    page.wait_for_function(
        """want => { const r = window.tributaryRun && window.tributaryRun.current();
            if (!r || !['succeeded', 'failed', 'stopped'].includes(r.status)) return false;
            const got = {}; r.node_runs.forEach(n => { got[n.node_name] = n.status; });
            return Object.keys(want).every(k => got[k] === want[k]); }""",
        arg=statuses,
        timeout=RUN_DEADLINE_MS,
    )


def run_node(page, name) -> dict:
    """What the run page shows for a node: the table's status words, and the canvas's
    label and greying."""
    words = page.locator(f"[data-testid='node-status-{name}']").inner_text()
    drawn = page.evaluate(
        """name => { const n = window.tributaryRun.cy.nodes().filter(x => x.data('name') === name)[0];
            return { label: n.style('label'), opacity: Number(n.style('opacity')) }; }""",
        name,
    )
    return {"words": words, **drawn}


def test_node_menu_test_runs_and_a_disabled_node_on_real_workers(
    page, tenant, owner, celery_workers, artifacts
):
    # Given: extract -> load -> report (runs when none failed), and load -> archive, switched off
    flow, _ = build_flow(
        tenant=tenant,
        owner=owner,
        name="scoped",
        nodes=[
            "extract",
            "load",
            {"name": "report", "trigger_rule": "none_failed"},
            {"name": "archive", "enabled": False},
        ],
        edges=[("extract", "load"), ("load", "report"), ("load", "archive")],
    )
    sign_in(page, owner)
    page.goto(f"/flows/{flow.pk}/")
    wait_editor(page, 4)

    # When: "Run this node" on load's menu
    open_node(page, "load")
    page.click("[data-testid=run-node]")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    # Then only load ran; the others read "not run", greyed, never as failed
    run_page_settled(page, {"load": "succeeded"})
    assert page.locator("[data-testid=run-status]").inner_text() == "succeeded"
    for name in ("extract", "report", "archive"):
        shown = run_node(page, name)
        assert shown["words"].lower().startswith("not run"), (name, shown)
        assert "not run" in shown["label"] and shown["opacity"] < 1
    assert run_node(page, "load")["opacity"] == 1
    run = FlowRun.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1]))
    assert run.mode == "try" and run.flow_id == flow.pk
    assert dict(run.node_runs.values_list("node_name", "status")) == {
        "extract": "not_run",
        "load": "succeeded",
        "report": "not_run",
        "archive": "not_run",
    }

    # When: "Run from here" on load's menu
    page.goto(f"/flows/{flow.pk}/")
    wait_editor(page, 4)
    open_node(page, "load")
    page.click("[data-testid=run-from-node]")
    page.wait_for_url(
        lambda url: (m := re.search(r"/runs/(\d+)/$", url)) is not None and int(m[1]) != run.pk
    )
    # Then load and what follows it ran, extract did not, and the switched-off archive
    # reads "disabled", greyed
    run_page_settled(page, {"load": "succeeded", "report": "succeeded", "archive": "disabled"})
    assert run_node(page, "extract")["words"].lower().startswith("not run")
    archive = run_node(page, "archive")
    assert archive["words"].lower() == "disabled"
    assert "disabled" in archive["label"] and archive["opacity"] < 1
    report = run_node(page, "report")
    assert report["opacity"] == 1
    # ... and report's trigger rule is marked on it, in words, as in the editor
    assert report["label"].endswith("⚑ when none failed"), report
    page.screenshot(path=str(artifacts / "run-from-here.png"), full_page=True)


def published(tenant, owner, name, nodes):
    flow, _ = build_flow(tenant=tenant, owner=owner, name=name, nodes=nodes)
    flow_publish(flow=flow, user=owner)
    return flow


def test_sub_flow_and_loop_runs_link_parent_and_child(
    page, tenant, owner, celery_workers, artifacts
):
    # Given: a published child flow, and a parent with a sub-flow node and a loop over two items
    child = published(tenant, owner, "child load", ["step"])
    parent, _ = build_flow(
        tenant=tenant,
        owner=owner,
        name="parent",
        nodes=[
            {"name": "call child", "type": "subflow", "config": {"flow": child.pk}},
            {
                "name": "each day",
                "type": "foreach",
                "config": {"flow": child.pk, "items": [{"d": "mon"}, {"d": "tue"}]},
            },
        ],
        edges=[("call child", "each day")],
    )
    sign_in(page, owner)
    page.goto(f"/flows/{parent.pk}/")
    wait_editor(page, 2)

    # When: a try run of the parent, from the editor
    page.click("[data-testid=try-run]")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    run_page_settled(page, {"call child": "succeeded", "each day": "succeeded"})
    run = FlowRun.objects.get(flow=parent)
    sub = FlowRun.objects.get(parent_run=run, parent_node_run__node_name="call child")
    items = list(
        FlowRun.objects.filter(parent_run=run, parent_node_run__node_name="each day").order_by(
            "parent_key"
        )
    )
    assert len(items) == 2

    # Then: the loop node lists its item runs with their status, under the node
    page.locator("tr[data-node]", has_text="each day").click()
    listed = page.locator("[data-testid=node-child-runs] li")
    listed.first.wait_for()
    assert listed.count() == 2
    texts = listed.all_inner_texts()
    assert all("succeeded" in t for t in texts), texts
    assert "item 1" in texts[0] and "item 2" in texts[1]
    page.screenshot(path=str(artifacts / "run-loop-items.png"), full_page=True)

    # ... the sub-flow node links to its child run, whose page links back to the parent
    page.locator("tr[data-node]", has_text="call child").click()
    link = page.locator("[data-testid=node-child-runs] a")
    assert link.count() == 1
    link.click()
    page.wait_for_url(f"**/runs/{sub.pk}/")
    back = page.locator("[data-testid=parent-run]")
    back.wait_for()
    assert "call child" in back.inner_text() and "parent" in back.inner_text()
    back.click()
    page.wait_for_url(f"**/runs/{run.pk}/")

    # ... and an item run's page names the loop node and the item
    page.goto(f"/runs/{items[1].pk}/")
    back = page.locator("[data-testid=parent-run]")
    back.wait_for()
    assert "each day" in back.inner_text() and "item 2" in back.inner_text()
