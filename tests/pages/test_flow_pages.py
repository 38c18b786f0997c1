"""Flow list, canvas, history and version pages: what each role sees, and 404s across tenants."""

import json
import re

import pytest

from flows import services
from tests.factories import MembershipFactory, TenantFactory

pytestmark = pytest.mark.django_db


def json_script(response, element_id):
    match = re.search(
        rf'<script id="{element_id}" type="application/json">(.*?)</script>',
        response.content.decode(),
        re.S,
    )
    assert match, f"no json_script {element_id}"
    return json.loads(match.group(1))


# ------------------------------------------------------------------ list


def test_flow_list_shows_visible_flows_only(
    page, owner, flow, public_flow, private_flow, foreign_flow
):
    body = page(owner).get("/flows/").content.decode()
    assert "nightly load" in body and "shared report" in body
    assert "secret project" not in body and "globex flow" not in body


def test_admin_sees_every_flow_of_the_tenant_only(
    page, admin_user, flow, private_flow, foreign_flow
):
    body = page(admin_user).get("/flows/").content.decode()
    assert "nightly load" in body and "secret project" in body and "globex flow" not in body


@pytest.mark.parametrize(
    "query, expected, absent",
    [
        ("q=nightly", ["nightly load"], ["shared report"]),
        ("scenario=Reporting", ["nightly load"], ["shared report"]),
        ("public=yes", ["shared report"], ["nightly load"]),
        ("public=no", ["nightly load"], ["shared report"]),
        ("status=draft", ["nightly load", "shared report"], []),
        ("status=published", [], ["nightly load", "shared report"]),
    ],
)
def test_flow_list_filters(page, owner, flow, public_flow, query, expected, absent):
    body = page(owner).get(f"/flows/?{query}").content.decode()
    table = body.split('data-testid="flow-table"')[-1] if 'data-testid="flow-table"' in body else ""
    for name in expected:
        assert name in table
    for name in absent:
        assert name not in table


def test_flow_list_filters_by_owner(page, owner, other_member, flow, public_flow):
    body = page(owner).get(f"/flows/?owner={other_member.pk}").content.decode()
    table = body.split('data-testid="flow-table"')[-1]
    assert "shared report" in table and "nightly load" not in table


def test_flow_list_has_the_create_dialog(page, owner):
    body = page(owner).get("/flows/").content.decode()
    assert (
        'id="create-flow"' in body and 'name="business_scenario"' in body and 'name="name"' in body
    )


# ------------------------------------------------------------------ canvas


def controls(response):
    body = response.content.decode()
    return {
        "palette": 'data-testid="palette"' in body,
        "save": 'id="btn-save"' in body,
        "run": 'data-testid="try-run"' in body,
        "publish": 'data-testid="publish"' in body,
        "readonly": 'data-testid="readonly-badge"' in body,
    }


def test_owner_gets_the_full_editor(page, owner, flow):
    response = page(owner).get(f"/flows/{flow.pk}/")
    assert response.status_code == 200
    assert controls(response) == {
        "palette": True,
        "save": True,
        "run": True,
        "publish": True,
        "readonly": False,
    }
    data = json_script(response, "page-data")
    assert data["rights"]["edit"] is True and data["flow_id"] == flow.pk


def test_stakeholder_sees_it_read_only_but_may_test_run(page, stakeholder, flow):
    response = page(stakeholder).get(f"/flows/{flow.pk}/")
    assert response.status_code == 200
    assert controls(response) == {
        "palette": False,
        "save": False,
        "run": True,
        "publish": False,
        "readonly": True,
    }
    assert json_script(response, "page-data")["rights"]["edit"] is False


def test_admin_may_run_and_manage_people_but_not_edit(page, admin_user, flow):
    response = page(admin_user).get(f"/flows/{flow.pk}/")
    assert controls(response) == {
        "palette": False,
        "save": False,
        "run": True,
        "publish": False,
        "readonly": True,
    }
    rights = json_script(response, "page-data")["rights"]
    assert rights["change_owner"] and rights["manage_stakeholders"] and not rights["edit"]


def test_public_viewer_only_looks(page, owner, public_flow):
    response = page(owner).get(f"/flows/{public_flow.pk}/")
    assert response.status_code == 200
    assert controls(response) == {
        "palette": False,
        "save": False,
        "run": False,
        "publish": False,
        "readonly": True,
    }


def test_private_flow_of_someone_else_is_404(page, owner, private_flow):
    assert page(owner).get(f"/flows/{private_flow.pk}/").status_code == 404


@pytest.mark.parametrize("suffix", ["", "history/", "versions/"])
def test_another_tenants_flow_is_404_on_every_flow_page(page, owner, foreign_flow, suffix):
    response = page(owner).get(f"/flows/{foreign_flow.pk}/{suffix}")
    assert response.status_code == 404
    assert b"globex flow" not in response.content


def test_admin_of_another_tenant_gets_404_for_our_flow(page, outsider, flow):
    assert page(outsider).get(f"/flows/{flow.pk}/").status_code == 404


def test_canvas_page_exposes_the_node_type_registry_with_schemas(page, owner, flow):
    types = {t["type"]: t for t in json_script(page(owner).get(f"/flows/{flow.pk}/"), "node-types")}
    assert {"sql", "noop", "condition", "data_sync"} <= set(types)
    assert types["sql"]["schema"]["properties"]["datasource"]["x-widget"] == "datasource"
    assert types["condition"]["has_branches"] is True


def test_canvas_page_lists_only_active_members_of_the_tenant(page, owner, flow, outsider):
    members = {m["username"] for m in json_script(page(owner).get(f"/flows/{flow.pk}/"), "members")}
    assert owner.username in members and outsider.username not in members


def test_canvas_page_loads_vendored_libraries_locally(page, owner, flow):
    body = page(owner).get(f"/flows/{flow.pk}/").content.decode()
    for lib in (
        "vendor/cytoscape/cytoscape.min.js",
        "vendor/cytoscape-edgehandles/",
        "vendor/cytoscape-dagre/",
    ):
        assert lib in body
    assert "://" not in "".join(re.findall(r'<script src="([^"]+)"', body))


# ------------------------------------------------------------------ history and versions


def test_history_page_renders_for_a_stakeholder(page, stakeholder, flow):
    response = page(stakeholder).get(f"/flows/{flow.pk}/history/")
    assert response.status_code == 200
    assert b'data-testid="history"' in response.content


def test_versions_page_diffs_two_published_versions(page, owner, flow):
    services.flow_publish(flow=flow, user=owner, comment="first")
    services.graph_replace(
        flow=flow,
        user=owner,
        nodes=[{"id": n.pk, "name": n.name, "type": n.type} for n in flow.nodes.all()]
        + [{"key": "c", "name": "report", "type": "noop"}],
        edges=[
            {"upstream": "extract", "downstream": "load"},
            {"upstream": "load", "downstream": "c"},
        ],
    )
    services.flow_publish(flow=flow, user=owner, comment="second")
    response = page(owner).get(f"/flows/{flow.pk}/versions/?a=1&b=2")
    assert response.status_code == 200
    body = response.content.decode()
    assert "From version 1 to version 2" in body
    comparison = json_script(response, "comparison")
    assert [n["name"] for n in comparison["diff"]["nodes"]["added"]] == ["report"]
    assert [
        (e["upstream_name"], e["downstream_name"]) for e in comparison["diff"]["edges"]["added"]
    ] == [("load", "report")]


def test_versions_page_defaults_to_the_latest_version_against_the_editing_one(page, owner, flow):
    services.flow_publish(flow=flow, user=owner)
    response = page(owner).get(f"/flows/{flow.pk}/versions/")
    assert "From version 1 to editing version" in response.content.decode()


def test_unknown_version_is_404(page, owner, flow):
    assert page(owner).get(f"/flows/{flow.pk}/versions/?a=7&b=current").status_code == 404


def test_flow_of_a_second_tenant_is_404_after_switching_away(page, owner, flow):
    second = TenantFactory(slug="initech", name="Initech")
    MembershipFactory(user=owner, tenant=second)
    client = page(owner)
    client.post("/tenant/switch/", {"tenant": "initech"})
    # The same user, now acting in another tenant: the flow of "acme" is not found there.
    assert client.get(f"/flows/{flow.pk}/").status_code == 404


# ------------------------------------------------------------------ data sources


def test_data_sources_page_offers_registration_only_to_admins_and_dbas(
    page, admin_user, dba_user, member_user
):
    assert b'data-testid="datasource-new"' in page(admin_user).get("/datasources/").content
    assert b'data-testid="datasource-new"' in page(dba_user).get("/datasources/").content
    assert b'data-testid="datasource-new"' not in page(member_user).get("/datasources/").content


def test_versions_page_shows_changed_fields_of_a_node(page, owner, flow):
    services.flow_publish(flow=flow, user=owner)
    services.graph_replace(
        flow=flow,
        user=owner,
        nodes=[
            {"id": n.pk, "name": n.name, "type": n.type, "retries": 3 if n.name == "load" else 0}
            for n in flow.nodes.all()
        ],
        edges=[{"upstream": "extract", "downstream": "load"}],
    )
    services.flow_update(flow=flow, user=owner, notifications={"on_success": True})
    body = page(owner).get(f"/flows/{flow.pk}/versions/?a=1&b=current").content.decode()
    assert '<span class="badge warn">changed</span> load' in body
    assert '<td class="field">retries</td><td class="old">0</td><td class="new">3</td>' in body
    assert (
        '<td class="field">notifications.on_success</td><td class="old">false</td><td class="new">true</td>'
        in body
    )


def test_run_dialogs_offer_the_version_defaulting_to_the_latest_published(page, owner, flow):
    # Given a flow published twice (it needs a node to publish)
    flow.nodes.create(tenant=flow.tenant, name="n1", type="noop", config={})
    services.flow_publish(flow=flow, user=owner)
    flow.refresh_from_db()
    services.flow_publish(flow=flow, user=owner)

    html = page(owner).get(f"/flows/{flow.pk}/").content.decode()

    for prefix in ("rp", "rr"):
        select = re.search(rf'<select id="{prefix}-version".*?</select>', html, re.S).group(0)
        assert re.findall(r'<option value="([^"]+)"', select) == ["published", "draft", "1"]
        assert '<option value="published" selected>Latest published (v2)' in select


def test_run_dialogs_of_an_unpublished_flow_offer_the_draft(page, owner, flow):
    html = page(owner).get(f"/flows/{flow.pk}/").content.decode()

    select = re.search(r'<select id="rp-version".*?</select>', html, re.S).group(0)
    assert re.findall(r'<option value="([^"]+)"', select) == ["draft"]
