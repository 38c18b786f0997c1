"""Secrets: /api/v1/secrets/, ${secret.NAME} in node configurations, validation that knows
them, previews and exports that never hold a value, key rotation, the admin and the page.

The real-worker proof (an http node sends the value, everything stored shows ***) is in
tests/operations/test_secrets_workers.py.
"""

import json

import pytest
import yaml
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.test import Client, override_settings

from accounts.choices import Role
from accounts.selectors import TenantContext
from flows import services
from flows.models import Secret
from flows.secrets import services as secret_services
from flows.secrets.runtime import Redactor, UndefinedSecrets, render_with_secrets
from flows.variables import UndefinedVariables

pytestmark = pytest.mark.django_db

VALUE = "sk-live-7c1d0e5a-Never-Shown"
URL = "/api/v1/secrets/"


def ctx(tenant, user, role=Role.ADMIN):
    return TenantContext(tenant=tenant, user=user, role=role)


def make_secret(tenant, user, name="API_TOKEN", value=VALUE, flow=None):
    return secret_services.secret_create(ctx=ctx(tenant, user), name=name, value=value, flow=flow)


def assert_no_value(response, *values):
    text = response.content.decode()
    for value in values or (VALUE,):
        assert value not in text
    assert "value_encrypted" not in text


# --------------------------------------------------------------------------- the API


@pytest.mark.parametrize("role_user", ["admin_user", "dba_user"])
def test_admins_and_dbas_create_secrets_whose_value_is_never_returned(
    role_user, request, api, tenant
):
    user = request.getfixturevalue(role_user)
    client = api(user, tenant)
    created = client.post(URL, {"name": "API_TOKEN", "value": VALUE}, format="json")
    assert created.status_code == 201, created.content
    assert created.json() == {
        "id": created.json()["id"],
        "name": "API_TOKEN",
        "flow": None,
        "flow_name": None,
        "reference": "${secret.API_TOKEN}",
        "created_at": created.json()["created_at"],
        "updated_at": created.json()["updated_at"],
    }
    secret = Secret.objects.get(pk=created.json()["id"])
    assert secret.tenant == tenant and secret.value == VALUE
    assert VALUE not in secret.value_encrypted
    for response in (
        created,
        client.get(URL),
        client.get(f"{URL}{secret.pk}/"),
        client.patch(f"{URL}{secret.pk}/", {"value": "a-new-value"}, format="json"),
        client.get(f"{URL}{secret.pk}/history/"),
        client.get("/api/v1/audit/") if user.username.endswith("admin") else created,
    ):
        assert response.status_code in (200, 201)
        assert_no_value(response, VALUE, "a-new-value")
    secret.refresh_from_db()
    assert secret.value == "a-new-value"
    history = client.get(f"{URL}{secret.pk}/history/").json()["results"]
    assert [e["action"] for e in history] == ["changed", "created"]
    assert all("value" not in c["field"] for e in history for c in e["changes"])


def test_members_list_names_they_may_reference_but_manage_nothing(
    api, tenant, admin_user, member_user, flow, other_member
):
    public = make_secret(tenant, admin_user, "SHARED")
    own_flow = make_secret(tenant, admin_user, "FLOW_ONLY", flow=flow.pk)
    hidden_flow = services.flow_create(tenant=tenant, user=other_member, name="private")
    hidden = make_secret(tenant, admin_user, "HIDDEN", flow=hidden_flow.pk)
    client = api(member_user, tenant)  # the owner of `flow`, not of the private one
    listed = client.get(URL)
    assert [s["name"] for s in listed.json()["results"]] == ["FLOW_ONLY", "SHARED"]
    assert_no_value(listed)
    assert client.get(f"{URL}{own_flow.pk}/").json()["flow_name"] == flow.name
    assert client.get(f"{URL}{hidden.pk}/").status_code == 404
    assert client.post(URL, {"name": "X_1", "value": VALUE}, format="json").status_code == 403
    assert client.patch(f"{URL}{public.pk}/", {"value": "zzzz"}, format="json").status_code == 403
    assert client.delete(f"{URL}{public.pk}/").status_code == 403
    assert client.patch(f"{URL}{hidden.pk}/", {"value": "zzzz"}, format="json").status_code == 404
    assert Secret.objects.get(pk=public.pk).value == VALUE


def test_another_tenants_secret_and_flow_answer_like_missing_ones(
    api, tenant, other_tenant, admin_user, outsider
):
    theirs = make_secret(other_tenant, outsider, "THEIRS")
    their_flow = services.flow_create(tenant=other_tenant, user=outsider, name="theirs")
    client = api(admin_user, tenant)
    for method in ("get", "patch", "delete"):
        assert getattr(client, method)(f"{URL}{theirs.pk}/").status_code == 404
    assert client.get(f"{URL}?flow={their_flow.pk}").json()["results"] == []
    refused = client.post(URL, {"name": "X", "value": VALUE, "flow": their_flow.pk}, format="json")
    missing = client.post(URL, {"name": "X", "value": VALUE, "flow": 2_000_000}, format="json")
    assert refused.status_code == missing.status_code == 400
    assert "flow" in refused.json() and "flow" in missing.json()
    assert Secret.objects.get(pk=theirs.pk).value == VALUE


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "has-dash", "value": VALUE}, "name"),
        ({"name": "secret.X", "value": VALUE}, "name"),
        ({"name": "", "value": VALUE}, "name"),
        ({"name": "SHORT", "value": "abc"}, "value"),
        ({"name": "NUL", "value": "abc\x00def"}, "value"),
        ({"name": "NO_VALUE"}, "value"),
        ({"name": "API_TOKEN", "value": VALUE}, "name"),  # taken in the tenant scope
    ],
)
def test_bad_secrets_are_refused_naming_the_field(api, tenant, admin_user, body, field):
    make_secret(tenant, admin_user)
    response = api(admin_user, tenant).post(URL, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert Secret.objects.filter(tenant=tenant).count() == 1


def test_a_flow_may_have_its_own_secret_of_a_tenant_wide_name_but_not_change_scope(
    api, tenant, admin_user, flow
):
    make_secret(tenant, admin_user)
    client = api(admin_user, tenant)
    scoped = client.post(
        URL, {"name": "API_TOKEN", "value": "flow-value", "flow": flow.pk}, format="json"
    )
    assert scoped.status_code == 201, scoped.content
    moved = client.patch(f"{URL}{scoped.json()['id']}/", {"flow": None}, format="json")
    assert moved.status_code == 400 and "flow" in moved.json()


def test_a_referenced_secret_cannot_be_deleted(api, tenant, admin_user, flow, owner):
    secret = make_secret(tenant, admin_user)
    services.node_create(
        flow=flow,
        user=owner,
        name="call api",
        type="http",
        config={"url": "https://api.example.com/", "headers": {"X-Key": "${secret.API_TOKEN}"}},
    )
    response = api(admin_user, tenant).delete(f"{URL}{secret.pk}/")
    assert response.status_code == 409
    assert f"{flow.name} / call api" in json.dumps(response.json())
    assert Secret.objects.filter(pk=secret.pk).exists()


# --------------------------------------------------------------------------- validation


def http_config(header: str = "Bearer ${secret.API_TOKEN}") -> dict:
    return {"url": "https://api.example.com/v1", "headers": {"Authorization": header}}


def test_a_node_referencing_an_undefined_secret_is_refused_naming_node_and_field(
    as_user, owner, flow
):
    res = as_user(owner).post(
        f"/api/v1/flows/{flow.pk}/nodes/",
        {"name": "call", "type": "http", "config": http_config()},
        format="json",
    )
    assert res.status_code == 400
    assert res.json()["config"] == [
        "call.headers.Authorization: undefined secret ${secret.API_TOKEN}: create it on the "
        "Secrets page (for the tenant or for this flow)"
    ]


def test_a_defined_secret_passes_save_and_publish_and_another_flows_does_not(
    as_user, tenant, admin_user, owner, flow
):
    other = services.flow_create(tenant=tenant, user=owner, name="other flow")
    make_secret(tenant, admin_user, "OTHERS", flow=other.pk)
    make_secret(tenant, admin_user, "API_TOKEN", flow=flow.pk)
    client = as_user(owner)
    graph = {
        "nodes": [
            {"key": "a", "name": "call", "type": "http", "config": http_config()},
            {
                "key": "b",
                "name": "theirs",
                "type": "http",
                "config": {"url": "https://api.example.com/?k=${secret.OTHERS}"},
            },
        ],
        "edges": [],
    }
    refused = client.put(f"/api/v1/flows/{flow.pk}/graph/", graph, format="json")
    assert refused.status_code == 400
    assert refused.json()["problems"] == {
        "theirs": [
            "config.url: undefined secret ${secret.OTHERS}: create it on the Secrets page "
            "(for the tenant or for this flow)"
        ]
    }
    graph["nodes"].pop()
    assert client.put(f"/api/v1/flows/{flow.pk}/graph/", graph, format="json").status_code == 200
    published = client.post(f"/api/v1/flows/{flow.pk}/publish/", {}, format="json")
    assert published.status_code in (200, 201), published.content


def test_publishing_refuses_a_reference_whose_secret_is_gone(as_user, tenant, admin_user, flow):
    secret = make_secret(tenant, admin_user, "API_TOKEN", flow=flow.pk)
    services.node_create(flow=flow, user=flow.owner, name="call", type="http", config=http_config())
    Secret.objects.filter(pk=secret.pk).delete()  # e.g. removed in the admin's database shell
    res = as_user(flow.owner).post(f"/api/v1/flows/{flow.pk}/publish/", {}, format="json")
    assert res.status_code == 400
    assert res.json()["problems"]["call"] == [
        "config.headers.Authorization: undefined secret ${secret.API_TOKEN}: create it on the "
        "Secrets page (for the tenant or for this flow)"
    ]


def test_flow_variables_cannot_take_a_secrets_name(as_user, owner, flow):
    res = as_user(owner).patch(
        f"/api/v1/flows/{flow.pk}/",
        {"variables": [{"name": "secret.API_TOKEN", "type": "constant", "value": "x"}]},
        format="json",
    )
    assert res.status_code == 400
    assert "kept for secrets" in json.dumps(res.json())


def test_preview_shows_stars_and_export_carries_the_reference(
    as_user, tenant, admin_user, owner, flow, other_tenant, outsider, api
):
    make_secret(tenant, admin_user)
    node = services.node_create(
        flow=flow, user=owner, name="call", type="http", config=http_config()
    )
    client = as_user(owner)
    preview = client.post(
        f"/api/v1/flows/{flow.pk}/preview/", {"business_time": "2024-01-15T00:00:00Z"}
    )
    [shown] = preview.json()["nodes"]
    assert shown["config"]["headers"]["Authorization"] == "Bearer ***"
    assert shown["undefined"] == []
    assert_no_value(preview)
    page = Client()
    page.force_login(owner)
    panel = page.post(
        f"/flows/{flow.pk}/variables/preview/",
        json.dumps({"business_time": "2024-01-15T00:00", "config": node.config}),
        content_type="application/json",
    )
    assert panel.json()["rendered"]["headers"]["Authorization"] == "Bearer ***"
    exported = client.get(f"/api/v1/flows/{flow.pk}/export/?format=yaml")
    assert exported.status_code == 200
    assert_no_value(exported)
    text = exported.content.decode()
    document = yaml.safe_load(text)
    assert document["nodes"][0]["config"]["headers"]["Authorization"] == (
        "Bearer ${secret.API_TOKEN}"
    )
    # Another tenant has no such secret: its import names the node and field; once it
    # defines its own, the same document imports.
    theirs = api(outsider, other_tenant)
    refused = theirs.post("/api/v1/flows/import/", {"document": text}, format="json")
    assert refused.status_code == 400
    assert "undefined secret ${secret.API_TOKEN}" in json.dumps(refused.json())
    make_secret(other_tenant, outsider, value="their-own-value")
    imported = theirs.post("/api/v1/flows/import/", {"document": text}, format="json")
    assert imported.status_code == 201, imported.content


# --------------------------------------------------------------------------- worker side


def test_rendering_resolves_the_flows_own_secret_first_and_redacts_every_form(
    tenant, admin_user, flow
):
    make_secret(tenant, admin_user, "KEY", value="tenant-wide-value")
    make_secret(tenant, admin_user, "KEY", value="a b/c&d", flow=flow.pk)
    config = {"url": "https://x.example/${secret.KEY}?q=${day}", "n": 1}
    rendered = render_with_secrets(
        config, {"day": "2024-01-14"}, tenant_id=tenant.pk, flow_id=flow.pk
    )
    assert rendered.executed == {"url": "https://x.example/a b/c&d?q=2024-01-14", "n": 1}
    assert rendered.shown == {"url": "https://x.example/***?q=2024-01-14", "n": 1}
    for text in ("a b/c&d", "a%20b%2Fc%26d", "a+b%2Fc%26d", "a%20b/c&d", "a%20b/c%26d"):
        assert rendered.redact(f"GET {text} failed") == "GET *** failed"
    assert rendered.redact.value({"body": ["x a b/c&d"], "n": 2}) == {"body": ["x ***"], "n": 2}
    with pytest.raises(UndefinedSecrets, match=r"undefined secret \$\{secret.NOPE\}"):
        render_with_secrets({"h": "${secret.NOPE}"}, {}, tenant_id=tenant.pk, flow_id=flow.pk)
    with pytest.raises(UndefinedVariables):
        render_with_secrets({"h": "${nope}"}, {}, tenant_id=tenant.pk, flow_id=flow.pk)
    assert not Redactor() and Redactor().text("plain") == "plain"


def test_key_rotation_re_encrypts_secrets(tenant, admin_user, capsys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(FIELD_ENCRYPTION_KEYS=[old]):
        secret = make_secret(tenant, admin_user)
    history = Secret.history.count()
    with override_settings(FIELD_ENCRYPTION_KEYS=[new, old]):
        call_command("rotate_encryption_keys")
        assert "secrets: rotated 1, already current 0" in capsys.readouterr().out
    with override_settings(FIELD_ENCRYPTION_KEYS=[new]):
        secret.refresh_from_db()
        assert secret.value == VALUE
    assert Secret.history.count() == history  # a rotation is not an audited change


# --------------------------------------------------------------------------- admin, page


@pytest.fixture
def staff_admin(admin_user):
    admin_user.is_staff = True
    admin_user.save()
    return admin_user


def test_admin_writes_through_the_services_and_never_shows_the_value(client, staff_admin, tenant):
    client.force_login(staff_admin)
    added = client.post(
        "/admin/flows/secret/add/",
        {"tenant": tenant.pk, "name": "API_TOKEN", "flow": "", "value": VALUE},
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    secret = Secret.objects.get(name="API_TOKEN")
    assert secret.value == VALUE and secret.history.get().history_user == staff_admin
    duplicate = client.post(
        "/admin/flows/secret/add/",
        {"tenant": tenant.pk, "name": "API_TOKEN", "flow": "", "value": VALUE},
    )
    assert duplicate.status_code == 200
    assert "A secret of this name exists for this tenant." in duplicate.content.decode()
    for path in ("change", "history"):
        page = client.get(f"/admin/flows/secret/{secret.pk}/{path}/")
        assert page.status_code == 200
        assert VALUE not in page.content.decode()
        assert secret.value_encrypted not in page.content.decode()
    # Saving without a value keeps it; a revert of a history row is refused.
    kept = client.post(f"/admin/flows/secret/{secret.pk}/change/", {"name": "RENAMED", "value": ""})
    assert kept.status_code == 302
    secret.refresh_from_db()
    assert (secret.name, secret.value) == ("RENAMED", VALUE)
    first = secret.history.order_by("history_id").first()
    revert = client.post(
        f"/admin/flows/secret/{secret.pk}/history/{first.history_id}/", {"name": "API_TOKEN"}
    )
    assert revert.status_code == 403
    secret.refresh_from_db()
    assert secret.name == "RENAMED"


def test_the_secrets_page_offers_management_to_admins_and_dbas_only(
    tenant, admin_user, dba_user, member_user
):
    for user, manages in ((admin_user, True), (dba_user, True), (member_user, False)):
        page = Client()
        page.force_login(user)
        response = page.get("/secrets/")
        assert response.status_code == 200
        assert (b'data-testid="secret-new"' in response.content) is manages
        assert b"${secret.NAME}" in response.content
