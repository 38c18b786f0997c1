"""data_sync: PostgreSQL → MariaDB (and SQLite) in batches, counts and contents checked."""

import datetime as dt
import sqlite3
from decimal import Decimal

import pytest

from flows.nodes import base
from flows.nodes.base import NodeFailed
from tests.factories import DataSourceFactory
from tests.factories.datasources import Recorder

pytestmark = pytest.mark.django_db

ROWS = 25


@pytest.fixture
def pg_source(pg_server, tenant):
    with pg_server.connect() as conn:
        conn.execute("DROP TABLE IF EXISTS sync_src")
        conn.execute(
            "CREATE TABLE sync_src (id int PRIMARY KEY, name text, amount numeric(10,2), day date, "
            "at timestamptz, flag boolean, note text)"
        )
        conn.execute(
            "INSERT INTO sync_src SELECT g, 'name ' || g, g * 1.25, DATE '2024-01-01' + g, "
            "TIMESTAMPTZ '2024-01-01 10:00:00+02' + g * INTERVAL '1 hour', g %% 2 = 0, "
            "CASE WHEN g %% 5 = 0 THEN NULL ELSE 'n' || g END FROM generate_series(1, %s) g",
            (ROWS,),
        )
    return pg_server.datasource(tenant, name="pg source")


@pytest.fixture
def my_target(mysql_server, tenant):
    with mysql_server.connect() as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS sync_dst")
        cur.execute(
            "CREATE TABLE sync_dst (id int PRIMARY KEY, name varchar(50), amount decimal(10,2), day date, "
            "at datetime, flag tinyint(1), note varchar(50))"
        )
    return mysql_server.datasource(tenant, name="maria target")


def target_rows(
    server, sql="SELECT id, name, amount, day, at, flag, note FROM sync_dst ORDER BY id"
):
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def sync(tenant, **config):
    rec = Recorder(tenant_id=tenant.pk, config=config)
    return base.get("data_sync").execute(rec.ctx), rec


def test_postgresql_to_mariadb_copies_every_row_in_batches(
    tenant, pg_source, my_target, mysql_server
):
    result, rec = sync(
        tenant,
        source=pg_source.pk,
        query="SELECT * FROM sync_src ORDER BY id",
        target=my_target.pk,
        table="sync_dst",
        mode="append",
        batch_size=7,
    )
    assert result.output == {"rows_read": ROWS, "rows_written": ROWS, "rows_deleted": 0}
    rows = target_rows(mysql_server)
    assert len(rows) == ROWS
    assert rows[0] == (
        1,
        "name 1",
        Decimal("1.25"),
        dt.date(2024, 1, 2),
        dt.datetime(2024, 1, 1, 9, 0),
        0,
        "n1",
    )
    # timestamptz arrives as UTC wall time; NULLs stay NULL.
    assert rows[4] == (
        5,
        "name 5",
        Decimal("6.25"),
        dt.date(2024, 1, 6),
        dt.datetime(2024, 1, 1, 13, 0),
        0,
        None,
    )
    assert rows[-1][0] == ROWS
    assert f"copied {ROWS} row(s)" in rec.log


def test_overwrite_replaces_the_target_rows_and_append_adds(
    tenant, pg_source, my_target, mysql_server
):
    with mysql_server.connect() as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO sync_dst (id, name) VALUES (1000, 'old'), (1001, 'old')")
    result, _ = sync(
        tenant,
        source=pg_source.pk,
        query="SELECT * FROM sync_src WHERE id <= 10",
        target=my_target.pk,
        table="sync_dst",
        mode="overwrite",
        batch_size=3,
    )
    assert result.output == {"rows_read": 10, "rows_written": 10, "rows_deleted": 2}
    assert [r[0] for r in target_rows(mysql_server)] == list(range(1, 11))
    result, _ = sync(
        tenant,
        source=pg_source.pk,
        query="SELECT * FROM sync_src WHERE id > 10",
        target=my_target.pk,
        table="sync_dst",
        mode="append",
    )
    assert result.output["rows_written"] == ROWS - 10
    assert [r[0] for r in target_rows(mysql_server)] == list(range(1, ROWS + 1))


def test_a_failed_batch_rolls_back_the_whole_sync_including_the_delete(
    tenant, pg_source, my_target, mysql_server
):
    with mysql_server.connect() as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO sync_dst (id, name) VALUES (7, 'kept')")
    # Row 7 collides with the primary key on the second batch (append), after 5 rows went in.
    with pytest.raises(NodeFailed, match=r"^target: .*Duplicate entry"):
        sync(
            tenant,
            source=pg_source.pk,
            query="SELECT * FROM sync_src ORDER BY id",
            target=my_target.pk,
            table="sync_dst",
            mode="append",
            batch_size=5,
        )
    assert target_rows(mysql_server, "SELECT id, name FROM sync_dst") == ((7, "kept"),)


def test_source_errors_name_the_source(tenant, pg_source, my_target):
    with pytest.raises(NodeFailed, match=r"^source: .*no_such_table"):
        sync(
            tenant,
            source=pg_source.pk,
            query="SELECT * FROM no_such_table",
            target=my_target.pk,
            table="sync_dst",
        )


def test_counts_that_differ_fail_the_node_and_roll_back(tenant, sqlite_dir):
    path = sqlite_dir / "w.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE src (id int); INSERT INTO src VALUES (1), (2), (3), (4);"
            "CREATE TABLE dst (id int);"
            # The target silently drops odd rows: what was read is not what was written.
            "CREATE TRIGGER skip_odd BEFORE INSERT ON dst WHEN NEW.id % 2 = 1 BEGIN SELECT RAISE(IGNORE); END;"
        )
    ds = DataSourceFactory(tenant=tenant, database=str(path), options={})
    with pytest.raises(NodeFailed, match="Read 4 row.* 2 written"):
        sync(tenant, source=ds.pk, query="SELECT id FROM src", target=ds.pk, table="dst")
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM dst").fetchone() == (0,)


def test_sqlite_to_postgresql_with_a_schema_qualified_table(tenant, sqlite_dir, pg_server):
    path = sqlite_dir / "src.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            'CREATE TABLE src (id integer, label text, "odd name%" text);'
            "INSERT INTO src VALUES (1, 'one', 'x'), (2, NULL, 'y');"
        )
    with pg_server.connect() as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS dw")
        conn.execute("DROP TABLE IF EXISTS dw.facts")
        conn.execute('CREATE TABLE dw.facts (id int, label text, "odd name%" text)')
    source = DataSourceFactory(tenant=tenant, database=str(path), options={})
    target = pg_server.datasource(tenant)
    result, _ = sync(
        tenant, source=source.pk, query="SELECT * FROM src", target=target.pk, table="dw.facts"
    )
    assert result.output["rows_written"] == 2
    with pg_server.connect() as conn:
        assert conn.execute(
            'SELECT id, label, "odd name%" FROM dw.facts ORDER BY id'
        ).fetchall() == [(1, "one", "x"), (2, None, "y")]


def test_invalid_table_names_are_refused_at_run_time(tenant, sqlite_dir):
    ds = DataSourceFactory(tenant=tenant, database=str(sqlite_dir / "w.db"))
    with pytest.raises(NodeFailed, match="not a valid table name"):
        sync(tenant, source=ds.pk, query="SELECT 1", target=ds.pk, table="t; DROP TABLE x")
