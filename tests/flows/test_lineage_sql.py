"""The SQL side of lineage: which tables statements read and write, per engine dialect."""

from __future__ import annotations

import pytest

from flows.lineage.sql import TableRef, default_schema, sql_tables, table_ref


def names(refs) -> list[str]:
    return [r.qualified for r in refs]


def tables(engine, *statements, database=""):
    return sql_tables(
        list(statements), engine=engine, schema=default_schema(engine, database=database)
    )


def test_insert_select_reads_its_sources_and_writes_its_target():
    got = tables(
        "postgresql",
        "INSERT INTO mart.daily (day, n) SELECT o.day, count(*) FROM orders o "
        "JOIN crm.customers c ON c.id = o.customer_id GROUP BY o.day",
    )
    assert names(got.writes) == ["mart.daily"]
    assert names(got.reads) == ["crm.customers", "public.orders"]
    assert got.problems == []


def test_update_delete_merge_truncate_drop_and_ctes():
    got = tables(
        "postgresql",
        "WITH recent AS (SELECT * FROM staging.events) UPDATE facts f SET n = r.n FROM recent r",
        "DELETE FROM facts USING expired WHERE facts.id = expired.id",
        "MERGE INTO dims d USING staging.dims s ON d.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a",
        "TRUNCATE scratch_a, scratch_b",
        "DROP TABLE IF EXISTS old_facts",
        "CREATE INDEX facts_day ON facts (day)",
    )
    assert names(got.writes) == [
        "public.facts",
        "public.dims",
        "public.scratch_a",
        "public.scratch_b",
        "public.old_facts",
    ]
    # The CTE is not a table; an index reads nothing.
    assert names(got.reads) == ["staging.events", "public.expired", "staging.dims"]


def test_a_table_both_read_and_written_is_both():
    got = tables("postgresql", "INSERT INTO totals SELECT sum(n) FROM totals")
    assert names(got.reads) == names(got.writes) == ["public.totals"]


def test_postgresql_folds_unquoted_names_and_keeps_quoted_ones():
    got = tables("postgresql", 'SELECT * FROM Sales.Orders JOIN "Mixed"."CaseTable" ON true')
    assert names(got.reads) == ["Mixed.CaseTable", "sales.orders"]


def test_mysql_keeps_case_and_puts_unqualified_tables_in_the_data_source_database():
    got = tables(
        "mysql",
        "INSERT INTO `Report` SELECT * FROM shop.Orders",
        "REPLACE INTO archive SELECT * FROM Report",
        database="warehouse",
    )
    assert names(got.writes) == ["warehouse.Report", "warehouse.archive"]
    assert names(got.reads) == ["shop.Orders", "warehouse.Report"]


def test_sqlite_ignores_case_in_schema_main():
    got = tables(
        "sqlite",
        "create table if not exists Orders (day text)",
        "insert into ORDERS values ('x')",
    )
    assert names(got.writes) == ["main.orders"]


def test_temporary_tables_made_by_the_node_are_not_lineage():
    got = tables(
        "postgresql",
        "CREATE TEMP TABLE batch AS SELECT * FROM raw.events",
        "INSERT INTO facts SELECT * FROM batch",
        "DROP TABLE batch",
    )
    assert names(got.reads) == ["raw.events"] and names(got.writes) == ["public.facts"]


def test_variables_are_kept_in_table_names_and_ignored_in_literals():
    got = tables(
        "postgresql",
        "INSERT INTO sales_${bizdate} SELECT * FROM orders WHERE day = '${bizdate}' LIMIT ${n}",
    )
    assert names(got.writes) == ["public.sales_${bizdate}"]
    assert names(got.reads) == ["public.orders"]


def test_statements_the_parser_cannot_read_are_reported_by_number():
    got = tables(
        "postgresql",
        "SELECT * FROM ok_table",
        "selec * frm nowhere",
        "EXPLAIN SELECT * FROM t",
        "INSERT INTO (",
        "SELECT " + "(" * 400 + "1" + ")" * 400,
    )
    assert names(got.reads) == ["public.ok_table"]
    assert [p.split(":")[0] for p in got.problems] == [
        "statement 2",
        "statement 3",
        "statement 4",
        "statement 5",
    ]
    assert "EXPLAIN" in got.problems[1]


@pytest.mark.parametrize(
    "engine, text, expected",
    [
        ("postgresql", "Mart.Report", TableRef("mart", "report")),
        ("postgresql", "report", TableRef("public", "report")),
        ("mysql", "Report", TableRef("shop", "Report")),
        ("sqlite", "report_${bizdate}", TableRef("main", "report_${bizdate}")),
        ("mysql", "not a table!", None),
    ],
)
def test_a_configured_table_name(engine, text, expected):
    assert table_ref(text, engine=engine, schema=default_schema(engine, "shop")) == expected
