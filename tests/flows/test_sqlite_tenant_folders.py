"""SQLite data sources live in their tenant's own folder, `<dir>/<tenant slug>/`.

Any other path (another tenant's folder, an allowed directory itself, a symlink out, a
relative path) is refused with one message, whether the file exists or not, by the API,
the Django admin, the connection test and the node executors the workers run.
"""

import sqlite3
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

from accounts.models import Tenant
from flows.datasources import netpolicy
from flows.models import DataSource
from flows.nodes import base
from flows.nodes.base import NodeFailed
from tests.factories import DataSourceFactory, TenantFactory
from tests.factories.datasources import Recorder

pytestmark = pytest.mark.django_db


def refusal(roots: list[Path], slug: str = "acme") -> str:
    folders = ", ".join(f"{root / slug}/" for root in roots)
    return f"A SQLite data source must be the absolute path of a file in this tenant's folder: {folders}."


@pytest.fixture
def roots(tmp_path):
    """Two allowed directories; tenants get their own folder inside each."""
    dirs = [tmp_path / "one", tmp_path / "two"]
    with override_settings(SQLITE_DATASOURCE_DIRS=[str(d) for d in dirs]):
        yield dirs


@pytest.fixture
def theirs(roots):
    """Another tenant's existing SQLite file, with data in it."""
    folder = roots[0] / "globex"
    folder.mkdir(parents=True)
    path = folder / "payroll.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE salaries (amount int)")
    return path


def test_only_files_in_the_tenants_own_folders_pass(roots, tmp_path):
    inside = roots[1] / "acme" / "sub" / "w.db"
    assert netpolicy.check_sqlite_path(str(inside), tenant_slug="acme") == inside
    (roots[0] / "acme").mkdir(parents=True)
    (roots[0] / "acme" / "link.db").symlink_to(tmp_path / "elsewhere.db")
    outside = [
        str(roots[0] / "globex" / "w.db"),  # another tenant's folder
        str(roots[0] / "w.db"),  # the shared directory itself
        str(roots[0] / "acme"),  # the folder, not a file in it
        str(roots[0] / "acme" / ".." / "globex" / "w.db"),
        str(roots[0] / "acme" / "link.db"),  # a symlink out is resolved first
        str(tmp_path / "elsewhere.db"),
        "relative.db",
        "file:/tmp/x.db?mode=rw",
        ":memory:",
        "",
    ]
    messages = set()
    for path in outside:
        with pytest.raises(netpolicy.NetworkPolicyError) as caught:
            netpolicy.check_sqlite_path(path, tenant_slug="acme")
        messages.add(str(caught.value))
    assert messages == {refusal(roots)}


def test_api_refuses_another_tenants_file_the_same_way_whether_it_exists_or_not(
    api, tenant, admin_user, roots, theirs
):
    client = api(admin_user, tenant)
    answers = []
    for path in (theirs, theirs.with_name("missing.db")):
        response = client.post(
            "/api/v1/datasources/",
            {"name": path.stem, "engine": "sqlite", "database": str(path)},
            format="json",
        )
        assert response.status_code == 400
        answers.append(response.json())
    assert answers[0] == answers[1] == {"database": [refusal(roots)]}
    assert str(roots[0] / "globex") not in answers[0]["database"][0]
    assert not DataSource.objects.filter(tenant=tenant).exists()


def test_creating_a_sqlite_data_source_makes_the_tenants_folders(api, tenant, admin_user, roots):
    path = roots[0] / "acme" / "w.db"
    response = api(admin_user, tenant).post(
        "/api/v1/datasources/",
        {"name": "w", "engine": "sqlite", "database": str(path), "options": {"create": True}},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert (roots[0] / "acme").is_dir() and (roots[1] / "acme").is_dir()
    tested = api(admin_user, tenant).post(f"/api/v1/datasources/{response.json()['id']}/test/")
    assert tested.json() == {"ok": True} and path.exists()


def test_connection_test_and_execution_refuse_a_stored_path_outside_the_folder(
    api, tenant, member_user, roots, theirs
):
    """A data source saved before tenants had folders (or written around the services)."""
    sources = [
        DataSourceFactory(tenant=tenant, database=str(path), options={})
        for path in (theirs, theirs.with_name("missing.db"))
    ]
    client = api(member_user, tenant)
    tested = [client.post(f"/api/v1/datasources/{ds.pk}/test/").json() for ds in sources]
    errors = {t["error"].split(": ", 1)[1] for t in tested}
    assert [t["ok"] for t in tested] == [False, False]
    assert errors == {refusal(roots)}
    failures = set()
    for ds in sources:
        recorder = Recorder(
            tenant_id=tenant.pk, config={"datasource": ds.pk, "sql": "SELECT * FROM salaries"}
        )
        with pytest.raises(NodeFailed) as caught:
            base.get("sql").execute(recorder.ctx)
        failures.add(str(caught.value).split(": ", 2)[2])
    assert failures == errors
    with sqlite3.connect(theirs) as conn:  # untouched
        assert conn.execute("SELECT count(*) FROM salaries").fetchone() == (0,)


def test_admin_refuses_a_path_outside_the_tenants_folder(client, tenant, admin_user, theirs):
    admin_user.is_staff = True
    admin_user.save()
    client.force_login(admin_user)
    response = client.post(
        "/admin/flows/datasource/add/",
        {
            "tenant": tenant.pk,
            "name": "stolen",
            "engine": "sqlite",
            "database": str(theirs),
            "options": "{}",
        },
    )
    assert response.status_code == 200
    assert "A SQLite data source must be the absolute path" in response.content.decode()
    assert not DataSource.objects.filter(name="stolen").exists()


def test_load_demo_moves_the_demo_files_into_the_demo_tenants_folder(settings, tmp_path):
    # Given: a demo loaded before tenant folders, its files directly in the allowed directory
    settings.SQLITE_DATASOURCE_DIRS = [str(tmp_path)]
    demo = TenantFactory(slug="demo", name="Demo")
    old = tmp_path / "demo_warehouse.sqlite3"
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE orders (id int)")
        conn.execute("INSERT INTO orders VALUES (7)")
    DataSource.objects.create(
        tenant=demo, name="demo-warehouse", engine="sqlite", database=str(old)
    )
    # When: the demo is loaded again (make run does it on every start)
    call_command("load_demo", stdout=StringIO())
    # Then: both data sources point into tmp_path/demo/, the warehouse kept its data
    demo = Tenant.objects.get(slug="demo")
    paths = dict(DataSource.objects.filter(tenant=demo).values_list("name", "database"))
    assert paths == {
        "demo-warehouse": str(tmp_path / "demo" / "demo_warehouse.sqlite3"),
        "demo-mart": str(tmp_path / "demo" / "demo_mart.sqlite3"),
    }
    assert not old.exists()
    with sqlite3.connect(tmp_path / "demo" / "demo_warehouse.sqlite3") as conn:
        assert conn.execute("SELECT id FROM orders").fetchall() == [(7,)]
