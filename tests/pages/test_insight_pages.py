"""The O&M overview pages: the run grid, a flow's calendar, its trends card and its lineage
page are served to whoever may see the flow, and are 404 otherwise (as the API is)."""

import pytest

pytestmark = pytest.mark.django_db


def test_grid_page_lists_the_filters_and_loads_its_script(page, owner, flow, private_flow):
    res = page(owner).get("/runs/grid/", {"flow": flow.pk})
    body = res.content.decode()
    assert res.status_code == 200
    assert 'data-testid="run-grid"' in body and "tributary/rungrid.js" in body
    assert "nightly load" in body and "secret project" not in body  # the flow filter


@pytest.mark.parametrize("path", ["/runs/calendar/{pk}/", "/flows/{pk}/lineage/"])
def test_flow_pages_follow_flow_visibility(page, owner, other_member, outsider, flow, path):
    url = path.format(pk=flow.pk)
    assert page(owner).get(url).status_code == 200
    assert page(other_member).get(url).status_code == 404
    assert page(outsider).get(url).status_code == 404
    assert page(owner).get(path.format(pk=2_000_000_000)).status_code == 404


def test_calendar_page_is_in_the_flow_zone(page, owner, flow):
    from tests.factories import ScheduleFactory

    ScheduleFactory(flow=flow, timezone="Asia/Tokyo")
    body = page(owner).get(f"/runs/calendar/{flow.pk}/").content.decode()
    assert "Asia/Tokyo" in body and "tributary/runcalendar.js" in body


def test_the_flows_om_page_has_its_trends_card(page, owner, flow):
    body = page(owner).get("/runs/", {"flow": flow.pk}).content.decode()
    assert 'data-testid="flow-trends"' in body and "tributary/flowtrends.js" in body
    assert f"/runs/calendar/{flow.pk}/" in body and f"/flows/{flow.pk}/lineage/" in body
    # ... but not the runs list of every flow
    assert 'data-testid="flow-trends"' not in page(owner).get("/runs/").content.decode()
