"""Connections to real PostgreSQL, MariaDB and SQLite data sources: timeouts, cancel, secrets."""

import threading
import time

import pytest

from flows.datasources import connectors
from tests.factories import DataSourceFactory

pytestmark = pytest.mark.django_db

SLEEP = {"postgresql": "SELECT pg_sleep(10)", "mysql": "SELECT SLEEP(10)"}
SECRET = "Pw-Never-Shown-7f3a9"


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(params=["postgresql", "mysql"])
def server(request):
    return request.getfixturevalue("pg_server" if request.param == "postgresql" else "mysql_server")


def running_statements(server, marker: str) -> int:
    """How many statements containing `marker` the server is executing right now."""
    with server.connect() as conn:
        cur = conn.cursor()
        if server.engine == "postgresql":
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s "
                "AND pid <> pg_backend_pid()",
                (f"%{marker}%",),
            )
        else:
            cur.execute(
                "SELECT count(*) FROM information_schema.processlist WHERE info LIKE %s AND id <> CONNECTION_ID()",
                (f"%{marker}%",),
            )
        return cur.fetchone()[0]


def test_statement_timeout_cancels_a_long_statement_on_the_server(server, tenant):
    ds = server.datasource(tenant)
    started = time.monotonic()
    with connectors.connect(ds, timeout=1.0) as conn:
        with pytest.raises(connectors.StatementTimeout, match="timeout of 1s"):
            conn.run(SLEEP[server.engine])
    assert time.monotonic() - started < 4


def test_cancel_from_another_thread_stops_the_running_statement(server, tenant):
    ds = server.datasource(tenant)
    marker = f"cancel_me_{server.engine}"
    sql = (
        f"SELECT pg_sleep(10) AS {marker}"
        if server.engine == "postgresql"
        else f"SELECT SLEEP(10) AS {marker}"
    )
    outcome = {}
    conn = connectors.connect(ds, timeout=60)

    def work():
        try:
            conn.run(sql)
        except connectors.ConnectorError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=work)
    started = time.monotonic()
    worker.start()
    try:
        wait_for(lambda: running_statements(server, marker) == 1, what="the statement to run")
        conn.cancel()
        worker.join(timeout=5)
    finally:
        conn.close()
    assert not worker.is_alive()
    assert isinstance(outcome.get("error"), connectors.StatementCancelled)
    assert time.monotonic() - started < 6
    wait_for(
        lambda: running_statements(server, marker) == 0, what="the server to forget the statement"
    )


def test_single_statement_mode_is_enforced_by_the_server(server, tenant):
    ds = server.datasource(tenant)
    with connectors.connect(ds, timeout=10) as conn:
        with pytest.raises(connectors.ConnectorError):
            conn.run("SELECT 1; SELECT 2", single=True)
        assert conn.run("SELECT 1", single=True).rows == [(1,)]


def test_read_only_mode_refuses_writes(server, tenant):
    with server.connect() as raw:
        raw.cursor().execute("DROP TABLE IF EXISTS ro_check")
        raw.cursor().execute("CREATE TABLE ro_check (id int)")
    ds = server.datasource(tenant)
    with connectors.connect(ds, timeout=10) as conn:
        with pytest.raises(connectors.ConnectorError, match="(?i)read.only"):
            conn.run("INSERT INTO ro_check VALUES (1)", read_only=True)
    with server.connect() as raw:
        cur = raw.cursor()
        cur.execute("SELECT count(*) FROM ro_check")
        assert cur.fetchone()[0] == 0


def test_wrong_credentials_fail_without_revealing_the_password(server, tenant):
    # PostgreSQL trusts local users, so an unknown user stands for wrong credentials there.
    username = "no_such_user_x" if server.engine == "postgresql" else server.username
    ds = server.datasource(tenant, username=username, password=SECRET)
    with pytest.raises(connectors.ConnectorError) as caught:
        connectors.connect(ds, timeout=5)
    message = str(caught.value)
    assert SECRET not in message
    assert "Cannot connect" in message and ds.name in message


def test_unreachable_server_fails_fast(tenant):
    ds = DataSourceFactory(
        tenant=tenant, engine="postgresql", host="127.0.0.1", port=1, database="x", options={}
    )
    with pytest.raises(connectors.ConnectorError, match="Cannot connect"):
        connectors.connect(ds, timeout=5)


def test_errors_are_scrubbed_of_the_password_in_any_quoting(tenant):
    ds = DataSourceFactory(tenant=tenant, password="p@ss w'rd-123")
    conn = connectors.SQLiteConnection(ds, ds.password, 5)
    assert conn.scrub("password p@ss w'rd-123 rejected") == "password *** rejected"
    assert conn.scrub("dsn password=p%40ss%20w%27rd-123 host=x") == "dsn password=*** host=x"


# --- SQLite ------------------------------------------------------------------------------


def sqlite_ds(tenant, sqlite_dir, **options):
    return DataSourceFactory(
        tenant=tenant, database=str(sqlite_dir / "w.sqlite3"), options={"create": True, **options}
    )


def test_sqlite_timeout_interrupts_a_runaway_query(tenant, sqlite_dir):
    ds = sqlite_ds(tenant, sqlite_dir)
    runaway = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    )
    started = time.monotonic()
    with connectors.connect(ds, timeout=0.5) as conn:
        with pytest.raises(connectors.StatementTimeout):
            conn.run(runaway)
    assert time.monotonic() - started < 3


def test_sqlite_cancel_from_another_thread(tenant, sqlite_dir):
    ds = sqlite_ds(tenant, sqlite_dir)
    conn = connectors.connect(ds, timeout=60)
    running = threading.Event()
    conn.raw.create_function("mark_running", 0, lambda: running.set() or 1)
    outcome = {}

    def work():
        try:
            conn.run(
                "SELECT mark_running(), (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                "SELECT count(*) FROM c)"
            )
        except connectors.ConnectorError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=work)
    worker.start()
    assert running.wait(5)
    conn.cancel()
    worker.join(timeout=5)
    conn.close()
    assert not worker.is_alive()
    assert isinstance(outcome.get("error"), connectors.StatementCancelled)


def test_sqlite_cannot_attach_other_files(tenant, sqlite_dir):
    ds = sqlite_ds(tenant, sqlite_dir)
    with connectors.connect(ds, timeout=5) as conn:
        with pytest.raises(connectors.ConnectorError, match="not authorized"):
            conn.run(f"ATTACH DATABASE '{sqlite_dir / 'other.db'}' AS other")


def test_sqlite_file_must_exist_unless_create_is_set(tenant, sqlite_dir):
    ds = DataSourceFactory(tenant=tenant, database=str(sqlite_dir / "missing.db"), options={})
    with pytest.raises(connectors.ConnectorError, match="unable to open"):
        connectors.connect(ds, timeout=5)
    assert not (sqlite_dir / "missing.db").exists()


def test_unknown_options_are_refused_before_connecting(tenant, sqlite_dir):
    ds = DataSourceFactory(
        tenant=tenant,
        engine="mysql",
        host="127.0.0.1",
        database="x",
        options={"read_default_file": "/etc/mysql/debian.cnf"},
    )
    with pytest.raises(connectors.ConnectorError, match="Unknown option 'read_default_file'"):
        connectors.connect(ds, timeout=5)
