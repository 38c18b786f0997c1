"""/api/v1/datasources/: roles, tenant isolation, write-only password, conflicts, test endpoint."""

import json

import pytest

from flows.models import DataSource
from tests.factories import DataSourceFactory, NodeFactory

pytestmark = pytest.mark.django_db

SECRET = "Pw-Never-Shown-0b9d4"
URL = "/api/v1/datasources/"


def detail(pk, suffix=""):
    return f"{URL}{pk}/{suffix}"


@pytest.fixture
def body(sqlite_dir):
    return {
        "name": "warehouse",
        "engine": "sqlite",
        "database": str(sqlite_dir / "warehouse.sqlite3"),
        "options": {"create": True},
        "password": SECRET,
    }


def assert_no_secret(response):
    assert SECRET not in response.content.decode()
    assert "password_encrypted" not in response.content.decode()


@pytest.mark.parametrize("role_user", ["admin_user", "dba_user"])
def test_admins_and_dbas_create_with_a_write_only_password(role_user, request, api, tenant, body):
    user = request.getfixturevalue(role_user)
    response = api(user, tenant).post(URL, body, format="json")
    assert response.status_code == 201, response.content
    assert_no_secret(response)
    data = response.json()
    assert "password" not in data and data["has_password"] is True
    ds = DataSource.objects.get(pk=data["id"])
    assert ds.tenant == tenant and ds.password == SECRET
    assert SECRET not in ds.password_encrypted
    assert ds.history.get().history_user == user


def test_members_read_but_do_not_manage(api, tenant, member_user, body):
    ds = DataSourceFactory(tenant=tenant, password=SECRET)
    client = api(member_user, tenant)
    listed = client.get(URL)
    assert listed.status_code == 200 and [d["id"] for d in listed.json()["results"]] == [ds.pk]
    assert_no_secret(listed)
    shown = client.get(detail(ds.pk))
    assert shown.status_code == 200 and shown.json()["has_password"] is True
    assert_no_secret(shown)
    assert client.post(URL, body, format="json").status_code == 403
    assert client.patch(detail(ds.pk), {"name": "x"}, format="json").status_code == 403
    assert client.delete(detail(ds.pk)).status_code == 403
    assert DataSource.objects.get(pk=ds.pk).name == ds.name


def test_another_tenants_data_source_answers_404_everywhere(api, tenant, other_tenant, admin_user):
    theirs = DataSourceFactory(tenant=other_tenant, password=SECRET)
    client = api(admin_user, tenant)
    assert client.get(URL).json()["results"] == []
    for method, suffix in [
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("post", "test/"),
        ("get", "history/"),
    ]:
        response = getattr(client, method)(detail(theirs.pk, suffix), {}, format="json")
        assert response.status_code == 404, (method, suffix)
        assert_no_secret(response)
    assert DataSource.objects.filter(pk=theirs.pk).exists()


def test_anonymous_is_refused(api):
    assert api().get(URL).status_code in (401, 403)


def test_patch_keeps_clears_or_replaces_the_password(api, tenant, admin_user):
    ds = DataSourceFactory(tenant=tenant, password=SECRET)
    client = api(admin_user, tenant)
    response = client.patch(detail(ds.pk), {"name": "renamed"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "renamed"
    ds.refresh_from_db()
    assert ds.password == SECRET
    client.patch(detail(ds.pk), {"password": "other-pw"}, format="json")
    ds.refresh_from_db()
    assert ds.password == "other-pw"
    response = client.patch(detail(ds.pk), {"password": ""}, format="json")
    assert response.json()["has_password"] is False
    ds.refresh_from_db()
    assert ds.password_encrypted == ""


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"engine": "oracle"}, "engine", "not a valid choice"),
        ({"engine": "postgresql", "host": "", "database": "dw"}, "host", "host is required"),
        (
            {"engine": "postgresql", "host": "/var/run/postgresql", "database": "dw"},
            "host",
            "not a valid host",
        ),
        (
            {"engine": "postgresql", "host": "10.0.0.5", "database": "dw"},
            "host",
            "loopback or private",
        ),
        (
            {
                "engine": "mysql",
                "host": "127.0.0.1",
                "database": "dw",
                "options": {"read_default_file": "/etc/x"},
            },
            "options",
            "Unknown option 'read_default_file'",
        ),
        ({"database": "relative.db"}, "database", "absolute"),
        ({"port": 70000}, "port", "65535"),
        ({"name": ""}, "name", "blank"),
        ({"name": "x" * 101}, "name", "100"),
        ({"options": ["not", "an", "object"]}, "options", "JSON object"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    change, field, fragment, api, tenant, admin_user, body
):
    response = api(admin_user, tenant).post(URL, {**body, **change}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert fragment in " ".join(response.json()[field])
    assert_no_secret(response)
    assert not DataSource.objects.exists()


def test_the_platform_database_cannot_be_registered(api, tenant, admin_user, body, settings):
    from django.db import connection

    live = connection.settings_dict
    if connection.vendor == "sqlite":
        # The platform's SQLite file lies outside every tenant's folder: the one refusal.
        change = {"database": str(live["NAME"]), "options": {}}
        field, said = "database", "this tenant's folder"
    else:
        change = {
            "engine": "postgresql",
            "host": live["HOST"] or "localhost",
            "port": int(live["PORT"] or 5432),
            "database": live["NAME"],
            "options": {},
        }
        field, said = "host", "platform's own database"
    response = api(admin_user, tenant).post(URL, {**body, **change}, format="json")
    assert response.status_code == 400
    assert said in " ".join(response.json()[field])


def test_names_are_unique_per_tenant(api, tenant, other_tenant, admin_user, body):
    DataSourceFactory(tenant=other_tenant, name="warehouse")
    client = api(admin_user, tenant)
    assert client.post(URL, body, format="json").status_code == 201
    response = client.post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "name": ["A data source named 'warehouse' already exists in this tenant."]
    }


def test_deleting_a_data_source_used_by_a_node_is_a_409_naming_the_nodes(
    api, tenant, admin_user, member_user
):
    ds = DataSourceFactory(tenant=tenant)
    spare = DataSourceFactory(tenant=tenant)
    NodeFactory(
        flow__tenant=tenant,
        flow__owner=member_user,
        flow__name="nightly",
        tenant=tenant,
        name="load facts",
        type="sql",
        config={"datasource": ds.pk, "sql": "SELECT 1"},
    )
    NodeFactory(
        flow__tenant=tenant,
        flow__owner=member_user,
        flow__name="sync",
        tenant=tenant,
        name="copy",
        type="data_sync",
        config={"source": spare.pk, "query": "SELECT 1", "target": ds.pk, "table": "t"},
    )
    client = api(admin_user, tenant)
    response = client.delete(detail(ds.pk))
    assert response.status_code == 409
    message = json.dumps(response.json())
    assert "nightly / load facts" in message and "sync / copy" in message
    assert DataSource.objects.filter(pk=ds.pk).exists()
    # The other one is used too (as a source); a third, unused one goes.
    assert client.delete(detail(spare.pk)).status_code == 409
    unused = DataSourceFactory(tenant=tenant)
    assert client.delete(detail(unused.pk)).status_code == 204
    assert not DataSource.objects.filter(pk=unused.pk).exists()
    assert (
        DataSource.history.filter(id=unused.pk, history_type="-").get().history_user == admin_user
    )


def test_history_lists_changes_without_the_password(api, tenant, admin_user, member_user, body):
    client = api(admin_user, tenant)
    pk = client.post(URL, body, format="json").json()["id"]
    client.patch(
        detail(pk), {"host": "", "password": "another-secret-pw", "name": "dw"}, format="json"
    )
    response = api(member_user, tenant).get(detail(pk, "history/"))
    assert response.status_code == 200
    assert_no_secret(response)
    assert "another-secret-pw" not in response.content.decode()
    entries = response.json()["results"]
    assert [e["action"] for e in entries] == ["changed", "created"]
    assert entries[0]["username"] == admin_user.username
    assert {"field": "name", "old": "warehouse", "new": "dw"} in [
        {k: c[k] for k in ("field", "old", "new")} for c in entries[0]["changes"]
    ]
    assert all("password" not in c["field"] for e in entries for c in e["changes"])


def test_connection_test_endpoint(api, tenant, member_user, body, sqlite_dir):
    ok = DataSourceFactory(tenant=tenant, database=str(sqlite_dir / "ok.db"))
    missing = DataSourceFactory(tenant=tenant, database=str(sqlite_dir / "missing.db"), options={})
    client = api(member_user, tenant)
    assert client.post(detail(ok.pk, "test/")).json() == {"ok": True}
    failed = client.post(detail(missing.pk, "test/")).json()
    assert failed["ok"] is False and "unable to open" in failed["error"]


def test_connection_test_error_never_contains_the_password(api, tenant, admin_user, mysql_server):
    ds = mysql_server.datasource(tenant, password=SECRET)
    response = api(admin_user, tenant).post(detail(ds.pk, "test/"))
    assert response.status_code == 200
    assert response.json()["ok"] is False and "Access denied" in response.json()["error"]
    assert_no_secret(response)


def test_list_query_count_does_not_grow_with_the_data(
    api, tenant, member_user, django_assert_max_num_queries
):
    client = api(member_user, tenant)
    DataSourceFactory(tenant=tenant)
    with django_assert_max_num_queries(10) as few:
        client.get(URL)
    for _ in range(20):
        DataSourceFactory(tenant=tenant, password=SECRET)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(URL)
    assert response.json()["count"] == 21
