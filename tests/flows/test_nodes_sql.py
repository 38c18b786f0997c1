"""sql, sql_assign and condition (sql) executors on real PostgreSQL, MariaDB and SQLite."""

import threading
import time

import pytest

from flows.nodes import base
from flows.nodes.base import NodeFailed
from tests.factories import DataSourceFactory
from tests.factories.datasources import Recorder

pytestmark = pytest.mark.django_db

SECRET = "Pw-Never-Shown-51c2e"


@pytest.fixture(params=["postgresql", "mysql", "sqlite"])
def source(request, tenant, sqlite_dir):
    """A data source of each engine (scratch database or SQLite file)."""
    if request.param == "sqlite":
        return DataSourceFactory(tenant=tenant, database=str(sqlite_dir / "w.sqlite3"))
    server = request.getfixturevalue(
        "pg_server" if request.param == "postgresql" else "mysql_server"
    )
    return server.datasource(tenant)


def run(type_name, tenant, config, **kwargs):
    recorder = Recorder(tenant_id=tenant.pk, config=config, **kwargs)
    result = base.get(type_name).execute(recorder.ctx)
    return result, recorder


def test_sql_runs_every_statement_and_keeps_the_first_rows_of_the_last_query(source, tenant):
    sql = """
        DROP TABLE IF EXISTS node_sql_t;
        CREATE TABLE node_sql_t (id int, name varchar(20));
        -- a comment between statements
        INSERT INTO node_sql_t VALUES (1, 'a'), (2, 'b'), (3, 'c;d');
        SELECT id, name FROM node_sql_t ORDER BY id;
        UPDATE node_sql_t SET name = 'z' WHERE id > 1;
    """
    result, rec = run("sql", tenant, {"datasource": source.pk, "sql": sql})
    assert result.output["statements"] == 5
    assert result.output["rowcount"] == 2  # the last statement's: the UPDATE
    assert result.output["columns"] == ["id", "name"]
    assert result.output["rows"] == [[1, "a"], [2, "b"], [3, "c;d"]]
    assert "statement 4/5: SELECT id, name FROM node_sql_t ORDER BY id" in rec.log
    assert "statement 4/5: 3 row(s) returned" in rec.log
    assert "statement 5/5: 2 row(s) affected" in rec.log


def test_sql_output_keeps_at_most_twenty_rows(source, tenant):
    if source.engine == "postgresql":
        sql = "SELECT g AS n FROM generate_series(1, 50) g"
    else:
        sql = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 50) SELECT n FROM c"
    result, _ = run("sql", tenant, {"datasource": source.pk, "sql": sql})
    assert result.output["rowcount"] == 50
    assert result.output["rows"] == [[n] for n in range(1, 21)]


def test_sql_failure_names_the_statement(source, tenant):
    with pytest.raises(NodeFailed, match=r"statement 2/2 failed: .*no_such_table"):
        run(
            "sql", tenant, {"datasource": source.pk, "sql": "SELECT 1; SELECT * FROM no_such_table"}
        )


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_sql_node_timeout_cancels_the_statement(engine, tenant, request):
    server = request.getfixturevalue("pg_server" if engine == "postgresql" else "mysql_server")
    ds = server.datasource(tenant)
    sleep = "SELECT pg_sleep(10)" if engine == "postgresql" else "SELECT SLEEP(10)"
    started = time.monotonic()
    with pytest.raises(NodeFailed, match="timeout of 1s"):
        run("sql", tenant, {"datasource": ds.pk, "sql": sleep}, timeout=1)
    assert time.monotonic() - started < 4


@pytest.mark.django_db(transaction=True)
def test_stopping_the_run_cancels_the_running_statement(pg_server, tenant):
    ds = pg_server.datasource(tenant)
    sql = "SELECT pg_sleep(10) AS node_stop_marker"
    rec = Recorder(tenant_id=tenant.pk, config={"datasource": ds.pk, "sql": sql}, timeout=60)
    outcome = {}

    def work():
        try:
            base.get("sql").execute(rec.ctx)
        except NodeFailed as exc:
            outcome["error"] = str(exc)

    def active() -> int:
        with pg_server.connect() as conn:
            return conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                "AND query LIKE '%node_stop_marker%' AND pid <> pg_backend_pid()"
            ).fetchone()[0]

    worker = threading.Thread(target=work)
    started = time.monotonic()
    worker.start()
    deadline = time.monotonic() + 10
    while active() == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    rec.cancel()  # what the engine does on stop_all: flag set, cancel hooks called
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert "cancelled" in outcome["error"]
    assert time.monotonic() - started < 6
    assert active() == 0


def test_wrong_credentials_fail_the_node_without_the_password(mysql_server, tenant):
    ds = mysql_server.datasource(tenant, password=SECRET)
    with pytest.raises(NodeFailed) as caught:
        run("sql", tenant, {"datasource": ds.pk, "sql": "SELECT 1"})
    assert "Access denied" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_a_data_source_of_another_tenant_is_never_used(tenant, other_tenant):
    theirs = DataSourceFactory(tenant=other_tenant)
    with pytest.raises(NodeFailed, match=f"data source {theirs.pk} does not exist in this tenant"):
        run("sql", tenant, {"datasource": theirs.pk, "sql": "SELECT 1"})


def test_sql_assign_exports_the_first_row_as_text(source, tenant):
    if source.engine == "postgresql":
        sql = "SELECT 42 AS n, 'x' AS s, NULL AS missing, DATE '2024-01-14' AS d, 1.50::numeric AS amount"
    elif source.engine == "mysql":
        sql = "SELECT 42 AS n, 'x' AS s, NULL AS missing, DATE '2024-01-14' AS d, CAST(1.50 AS DECIMAL(5,2)) AS amount"
    else:
        sql = "SELECT 42 AS n, 'x' AS s, NULL AS missing, '2024-01-14' AS d, '1.50' AS amount"
    result, rec = run(
        "sql_assign",
        tenant,
        {"datasource": source.pk, "sql": sql + " UNION ALL SELECT 1, 'y', NULL, NULL, NULL"},
    )
    assert result.output == {
        "n": "42",
        "s": "x",
        "missing": "",
        "d": "2024-01-14",
        "amount": "1.50",
    }
    assert "assigned 5 variable(s): n, s, missing, d, amount" in rec.log


def test_sql_assign_refuses_several_statements_and_writes_at_run_time(source, tenant):
    with pytest.raises(NodeFailed, match="Exactly one statement"):
        run("sql_assign", tenant, {"datasource": source.pk, "sql": "SELECT 1 AS a; DROP TABLE x"})
    # A write hidden where sqlparse cannot see it still meets the read-only transaction.
    run(
        "sql",
        tenant,
        {"datasource": source.pk, "sql": "DROP TABLE IF EXISTS ro_t; CREATE TABLE ro_t (a int)"},
    )
    hidden = "WITH x AS (SELECT 1 AS a) INSERT INTO ro_t SELECT a FROM x"
    with pytest.raises(NodeFailed):
        run("sql_assign", tenant, {"datasource": source.pk, "sql": hidden})
    result, _ = run(
        "sql", tenant, {"datasource": source.pk, "sql": "SELECT count(*) AS c FROM ro_t"}
    )
    assert result.output["rows"] == [[0]]


def test_sql_assign_every_row_of_the_first_column_is_one_list(source, tenant):
    run(
        "sql",
        tenant,
        {
            "datasource": source.pk,
            "sql": "DROP TABLE IF EXISTS assign_t; CREATE TABLE assign_t (id int, name varchar(9));"
            "INSERT INTO assign_t VALUES (3, 'c'), (1, 'a'), (2, NULL)",
        },
    )
    config = {"datasource": source.pk, "rows": "all", "columns": "first"}

    result, rec = run(
        "sql_assign", tenant, {**config, "sql": "SELECT id, name FROM assign_t ORDER BY id"}
    )
    assert result.output == {"id": ["1", "2", "3"]}
    assert "assigned id = a list of 3 value(s)" in rec.log
    names, _ = run("sql_assign", tenant, {**config, "sql": "SELECT name FROM assign_t ORDER BY id"})
    assert names.output == {"name": ["a", "", "c"]}  # NULL is empty text, as elsewhere
    # No row is an empty list, not a failure: there may be nothing to do today.
    empty, _ = run("sql_assign", tenant, {**config, "sql": "SELECT id FROM assign_t WHERE id > 9"})
    assert empty.output == {"id": []}


def test_sql_assign_first_row_first_column_is_one_value(source, tenant):
    result, _ = run(
        "sql_assign",
        tenant,
        {
            "datasource": source.pk,
            "sql": "SELECT 7 AS n, 8 AS m",
            "rows": "first",
            "columns": "first",
        },
    )
    assert result.output == {"n": "7"}


def test_sql_assign_refuses_a_list_longer_than_its_limit(source, tenant, monkeypatch):
    from flows.nodes import sql_assign

    monkeypatch.setattr(sql_assign, "MAX_LIST_ROWS", 2)
    with pytest.raises(NodeFailed, match="returned 3 rows; a list variable holds at most 2"):
        run(
            "sql_assign",
            tenant,
            {
                "datasource": source.pk,
                "sql": "SELECT 1 AS a UNION ALL SELECT 2 UNION ALL SELECT 3",
                "rows": "all",
                "columns": "first",
            },
        )


def test_sql_assign_fails_when_there_is_no_row(source, tenant):
    with pytest.raises(NodeFailed, match="no row"):
        run("sql_assign", tenant, {"datasource": source.pk, "sql": "SELECT 1 AS a WHERE 1 = 0"})


@pytest.mark.parametrize(
    ("value", "branch"),
    [
        ("1", "true"),
        ("0", "false"),
        ("'yes'", "true"),
        ("'false'", "false"),
        ("''", "false"),
        ("NULL", "false"),
    ],
)
def test_condition_sql_takes_the_branch_of_the_first_value(value, branch, tenant, sqlite_dir):
    ds = DataSourceFactory(tenant=tenant, database=str(sqlite_dir / "c.db"))
    result, _ = run(
        "condition", tenant, {"mode": "sql", "datasource": ds.pk, "sql": f"SELECT {value}"}
    )
    assert result.branch == branch


def test_condition_sql_on_server_engines(source, tenant):
    yes, _ = run(
        "condition", tenant, {"mode": "sql", "datasource": source.pk, "sql": "SELECT 5 > 3"}
    )
    no, _ = run(
        "condition", tenant, {"mode": "sql", "datasource": source.pk, "sql": "SELECT 1 WHERE 1 = 0"}
    )
    assert (yes.branch, no.branch) == ("true", "false")
