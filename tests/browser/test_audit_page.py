"""The tenant-wide audit page (issue 20): entries in words with names and version numbers,
field-level before and after, filters by person, flow, kind and date, a link to the
version diff and a CSV export; auditors read it, members without audit rights get 403."""

from __future__ import annotations

import csv
import io
import re

import pytest

from accounts.choices import Role
from flows import services
from tests.browser.conftest import sign_in
from tests.factories import MembershipFactory, UserFactory


@pytest.fixture
def people(tenant):
    out = {}
    for name, role in (
        ("olivia-owner", Role.MEMBER),
        ("aude-auditor", Role.AUDITOR),
        ("mo-member", Role.MEMBER),
    ):
        user = UserFactory(username=name)
        MembershipFactory(user=user, tenant=tenant, role=role)
        out[role if role != Role.MEMBER or name == "mo-member" else "owner"] = user
    out["owner"] = out.get("owner") or next(
        u for u in [*out.values()] if u.username == "olivia-owner"
    )
    return out


@pytest.fixture
def history(tenant, people):
    """Two published versions of "orders daily", a renamed node and a new description."""
    owner = people["owner"]
    flow = services.flow_create(tenant=tenant, user=owner, name="orders daily")
    services.graph_replace(
        flow=flow,
        user=owner,
        nodes=[
            {"key": "a", "name": "extract", "type": "noop", "position": {"x": 0, "y": 0}},
            {"key": "b", "name": "report", "type": "noop", "position": {"x": 260, "y": 0}},
        ],
        edges=[{"upstream": "a", "downstream": "b"}],
    )
    services.flow_publish(flow=flow, user=owner)
    services.flow_update(flow=flow, user=owner, description="now documented")
    services.flow_publish(flow=flow, user=owner, comment="documented")
    other = services.flow_create(tenant=tenant, user=people[Role.MEMBER], name="scratch")
    return flow, other


def entries(page) -> list[str]:
    page.locator("[data-testid=audit-entry]").first.wait_for()
    return page.locator("[data-testid=audit-entry] .summary").all_inner_texts()


def test_auditor_reads_the_audit_in_words_filters_it_and_exports_it(
    page, people, history, artifacts
):
    flow, other = history
    sign_in(page, people[Role.AUDITOR])
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto("/")
    page.click("[data-testid=nav-audit]")
    page.wait_for_url(re.compile(r"/audit/$"))
    texts = entries(page)
    joined = "\n".join(texts)
    # In words, with names and version numbers; no row ids
    assert "olivia-owner published version 2 of “orders daily”" in joined
    assert "olivia-owner created the connection “extract → report” in “orders daily”" in joined
    assert not re.search(r"edge \d+ → \d+|for user \d+|\(pk=", joined)
    # Field-level before and after: the description, and the published version as a number
    described = (
        page.locator("[data-testid=audit-entry]", has_text="changed the task flow “orders daily”")
        .filter(has=page.locator("tr[data-field=description]"))
        .first
    )
    row = described.locator("tr[data-field=description]")
    assert (
        row.locator("td.old").inner_text() == "—"
        and row.locator("td.new").inner_text() == "now documented"
    )
    published = page.locator("tr[data-field=published_version] td.new").all_inner_texts()
    assert "version 2" in published and "version 1" in published
    # Read-only: nothing to change here
    assert page.locator("main button.primary, main button.danger").count() == 0
    page.screenshot(path=str(artifacts / "audit.png"))

    # Filters: by kind, by person, by flow, by date
    page.select_option("#hf-type", "version")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=audit-entry]')].every(li => li.dataset.type === 'version')"
        " && document.querySelectorAll('[data-testid=audit-entry]').length === 2"
    )
    page.select_option("#hf-type", "")
    page.select_option("#hf-user", str(people[Role.MEMBER].pk))
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=audit-entry] .when')].every(w => w.innerText.includes('mo-member'))"
    )
    texts = entries(page)
    assert all("scratch" in t for t in texts), texts
    page.select_option("#hf-user", "")
    page.select_option("#hf-flow", str(flow.pk))
    page.wait_for_function(
        "() => ![...document.querySelectorAll('[data-testid=audit-entry]')].some(li => li.innerText.includes('scratch'))"
        " && document.querySelectorAll('[data-testid=audit-entry]').length > 3"
    )
    page.fill("#hf-until", "2001-01-01")
    page.locator("#timeline", has_text="No entry matches these filters.").wait_for()
    page.fill("#hf-until", "")

    # The CSV export follows the filters (here: the flow)
    page.locator("#timeline [data-testid=audit-entry]").first.wait_for()
    href = page.locator("[data-testid=audit-export]").get_attribute("href")
    assert f"flow={flow.pk}" in href
    response = page.request.get(href)
    assert response.status == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text())))
    assert rows and {r["task flow"] for r in rows} == {"orders daily"}
    assert any(r["field"] == "description" and r["after"] == "now documented" for r in rows)
    assert any(r["summary"] == "olivia-owner published version 2 of “orders daily”" for r in rows)

    # The link to the version diff opens the versions page comparing 1 and 2
    page.locator("[data-testid=version-diff]", has_text="version 2").first.click()
    page.wait_for_url(re.compile(rf"/flows/{flow.pk}/versions/\?a=1&b=2$"))


def test_member_without_audit_rights_gets_403_on_page_export_and_api(page, people, history):
    sign_in(page, people[Role.MEMBER])
    assert page.locator("[data-testid=nav-audit]").count() == 0
    assert page.goto("/audit/").status == 403
    assert page.request.get("/audit/export.csv").status == 403
    assert page.request.get("/api/v1/audit/").status == 403
