"""Issue 17 §5-6 on the canvas, in a real Chromium: a node's own variables and a flow
variable counted from the bizdate, a dependency check on another flow's node from the
previous hour, and sql_assign's rows and columns, all chosen in words and saved."""

from __future__ import annotations

import pytest

from flows import services
from flows.models import DataSource
from tests.browser.conftest import apply_and_save, open_node, sign_in
from tests.factories import MembershipFactory, UserFactory


@pytest.fixture
def owner(tenant):
    user = UserFactory(username="olivia-owner")
    MembershipFactory(user=user, tenant=tenant, role="member")
    return user


def option_words(page, selector):
    """The words of a select's choices (after the form's "—" for an optional field)."""
    words = page.locator(f"{selector} option").all_inner_texts()
    assert words[0] == "—"
    return words[1:]


def test_node_variables_flow_variable_base_and_new_node_fields(page, tenant, owner, sqlite_dir):
    # Given: a flow with a noop, a dependency check and an SQL assignment, and a feed flow
    feed = services.flow_create(tenant=tenant, user=owner, name="feed")
    services.node_create(flow=feed, user=owner, name="load", type="noop")
    ds = DataSource.objects.create(
        tenant=tenant, name="wh", engine="sqlite", database=str(sqlite_dir / "wh.sqlite3")
    )
    flow = services.flow_create(tenant=tenant, user=owner, name="consumer")
    services.node_create(flow=flow, user=owner, name="tag", type="noop")
    services.node_create(
        flow=flow, user=owner, name="wait", type="dependency_check", config={"flow": feed.pk}
    )
    services.node_create(
        flow=flow,
        user=owner,
        name="ids",
        type="sql_assign",
        config={"datasource": ds.pk, "sql": "select id from t"},
    )
    sign_in(page, owner)
    page.goto(f"/flows/{flow.pk}/")
    page.wait_for_function(
        "() => window.tributaryEditor && window.tributaryEditor.cy"
        " && window.tributaryEditor.cy.nodes().length === 3"
    )

    # When: the node gets its own variable, counted from the bizdate
    open_node(page, "tag")
    page.click("#nd-var-add")
    row = page.locator("#nd-var-rows [data-var-row]").last
    row.locator("[data-k=name]").fill("ds")
    row.locator("[data-k=value]").fill("yyyyMMdd")
    row.locator("[data-k=offset]").fill("")
    assert row.locator("[data-k=base] option").all_inner_texts() == [
        "from business time",
        "from bizdate (a day earlier)",
    ]
    row.locator("[data-k=base]").select_option("bizdate")
    apply_and_save(page)
    # Then it is saved on the node
    assert flow.nodes.get(name="tag").variables == [
        {"name": "ds", "type": "time", "format": "yyyyMMdd", "base": "bizdate"}
    ]

    # The dependency check offers its window in words; its older form shows as today's
    open_node(page, "wait")
    assert page.locator("#cfg-cycle").input_value() == "day"
    assert page.locator("#cfg-require").input_value() == "any"
    assert option_words(page, "#cfg-cycle") == [
        "one hour",
        "one day",
        "one week (Monday to Sunday)",
        "one month",
    ]
    assert option_words(page, "#cfg-require") == [
        "its latest fire time in the window",
        "every fire time in the window",
        "any run in the window",
    ]
    page.fill("#cfg-node", "load")
    page.select_option("#cfg-cycle", "hour")
    page.fill("#cfg-offset", "-1")
    page.select_option("#cfg-require", "latest")
    apply_and_save(page)
    config = flow.nodes.get(name="wait").config
    assert {k: config[k] for k in ("flow", "node", "cycle", "offset", "require")} == {
        "flow": feed.pk,
        "node": "load",
        "cycle": "hour",
        "offset": -1,
        "require": "latest",
    }

    # sql_assign: every row of the first column, chosen in words
    open_node(page, "ids")
    assert option_words(page, "#cfg-rows") == [
        "the first row",
        "every row (one list-valued variable)",
    ]
    page.select_option("#cfg-rows", "all")
    page.select_option("#cfg-columns", "first")
    apply_and_save(page)
    assert flow.nodes.get(name="ids").config["rows"] == "all"

    # The flow's Variables tab sets a base too
    page.click("#panel-toggle")
    page.click(".tab[data-tab=variables]")
    page.click("#var-add")
    row = page.locator("#var-rows [data-var-row]").last
    row.locator("[data-k=name]").fill("month")
    row.locator("[data-k=value]").fill("yyyyMM")
    row.locator("[data-k=base]").select_option("bizdate")
    page.click("#form-variables [data-save]")
    page.get_by_text("Variables saved.").wait_for()
    flow.refresh_from_db()
    assert flow.variables == [
        {"name": "month", "type": "time", "format": "yyyyMM", "offset": "-1d", "base": "bizdate"}
    ]
