"""Node type registry: schemas, validation messages that name the field, references."""

import pytest
from jsonschema import Draft202012Validator

from flows.models import DataSource, TaskFlow
from flows.nodes import base
from flows.nodes.base import unseen_flow
from tests.factories import DataSourceFactory, FlowFactory

pytestmark = pytest.mark.django_db

ALL_TYPES = {
    "noop",
    "sql",
    "sql_assign",
    "data_sync",
    "condition",
    "http",
    "wait",
    "dependency_check",
}


@pytest.fixture
def vctx(tenant):
    def make(flow_id=None):
        return base.ValidationContext(
            tenant_id=tenant.pk,
            flow_id=flow_id,
            datasource=lambda pk: DataSource.objects.filter(tenant=tenant, pk=pk).first(),
            flow=lambda pk: TaskFlow.objects.filter(tenant=tenant, pk=pk).first(),
        )

    return make


@pytest.fixture
def ds(tenant):
    return DataSourceFactory(tenant=tenant)


@pytest.fixture
def foreign_ds(other_tenant):
    return DataSourceFactory(tenant=other_tenant)


def problems(type_name, config, ctx):
    return base.get(type_name).validate(config, ctx)


def test_registry_has_every_type_with_a_valid_json_schema():
    types = base.all_types()
    # Other tests may register extra types of their own; the product's eight are all there.
    assert ALL_TYPES <= set(types)
    for name in ALL_TYPES:
        node_type = types[name]
        Draft202012Validator.check_schema(node_type.schema)
        assert node_type.type == name and node_type.label
    assert [n for n in sorted(ALL_TYPES) if types[n].has_branches] == ["condition"]


def test_noop_accepts_nothing_but_an_empty_configuration(vctx):
    assert problems("noop", {}, vctx()) == []
    assert problems("noop", {"x": 1}, vctx()) == [("x", "Unknown field.")]


def test_schema_errors_name_the_field(vctx, ds):
    assert problems("sql", {}, vctx()) == [
        ("datasource", "This field is required."),
        ("sql", "This field is required."),
    ]
    assert problems("sql", {"datasource": "twelve", "sql": "SELECT 1"}, vctx()) == [
        ("datasource", "Must be an integer.")
    ]
    assert problems("wait", {"seconds": 90000}, vctx()) == [("seconds", "Must be at most 86400.")]
    assert problems(
        "data_sync",
        {"source": ds.pk, "query": "SELECT 1", "target": ds.pk, "table": "t", "mode": "replace"},
        vctx(),
    ) == [("mode", "Must be one of: append, overwrite.")]
    assert problems("sql", "not an object", vctx()) == [
        ("config", "The configuration must be a JSON object.")
    ]


@pytest.mark.parametrize("type_name", ["sql", "sql_assign"])
def test_data_source_of_another_tenant_is_refused_like_a_missing_one(
    type_name, vctx, ds, foreign_ds
):
    assert problems(type_name, {"datasource": ds.pk, "sql": "SELECT 1"}, vctx()) == []
    for pk in (foreign_ds.pk, 999999):
        assert problems(type_name, {"datasource": pk, "sql": "SELECT 1"}, vctx()) == [
            ("datasource", f"Data source {pk} does not exist in this tenant.")
        ]


def test_data_sync_checks_both_data_sources_the_query_and_the_table(vctx, ds, foreign_ds):
    good = {"source": ds.pk, "query": "SELECT a FROM t", "target": ds.pk, "table": "dw.facts"}
    assert problems("data_sync", good, vctx()) == []
    bad = {
        **good,
        "target": foreign_ds.pk,
        "table": "facts; DROP TABLE x",
        "query": "SELECT 1; SELECT 2",
    }
    found = dict(problems("data_sync", bad, vctx()))
    assert found["target"] == f"Data source {foreign_ds.pk} does not exist in this tenant."
    assert "Exactly one statement" in found["query"]
    assert "table name" in found["table"]
    assert base.get("data_sync").references(good) == {"datasources": [ds.pk], "flows": []}


def test_sql_assign_and_condition_accept_exactly_one_read_statement(vctx, ds):
    for type_name, extra in (("sql_assign", {}), ("condition", {"mode": "sql"})):
        cfg = {**extra, "datasource": ds.pk}
        assert (
            problems(type_name, {**cfg, "sql": "SELECT 1 AS a; -- trailing comment"}, vctx()) == []
        )
        assert problems(type_name, {**cfg, "sql": "SELECT 1; SELECT 2"}, vctx()) == [
            ("sql", "Exactly one statement is allowed here; found 2.")
        ]
        assert problems(type_name, {**cfg, "sql": "DELETE FROM t"}, vctx()) == [
            ("sql", "This check is read-only: a DELETE statement is not allowed.")
        ]


def test_sql_allows_several_statements(vctx, ds):
    cfg = {
        "datasource": ds.pk,
        "sql": "CREATE TABLE t (a int); INSERT INTO t VALUES (1); SELECT * FROM t;",
    }
    assert problems("sql", cfg, vctx()) == []
    assert problems("sql", {"datasource": ds.pk, "sql": "-- only a comment"}, vctx()) == [
        ("sql", "Write at least one SQL statement.")
    ]


def test_condition_requires_the_fields_of_its_mode(vctx, ds):
    assert problems("condition", {"mode": "sql"}, vctx()) == [
        ("datasource", "This field is required when the check is sql."),
        ("sql", "This field is required when the check is sql."),
    ]
    assert problems("condition", {"mode": "expression"}, vctx()) == [
        ("expression", "This field is required when the check is expression.")
    ]
    assert (
        problems(
            "condition",
            {"mode": "expression", "expression": "${rows} > 0 and '${s}' == 'ok'"},
            vctx(),
        )
        == []
    )
    found = problems(
        "condition", {"mode": "expression", "expression": "__import__('os').system('x')"}, vctx()
    )
    assert found and found[0][0] == "expression"
    assert (
        problems("condition", {"mode": "expression", "expression": "1 >"}, vctx())[0][0]
        == "expression"
    )


def test_http_validates_url_method_status_and_header_names(vctx):
    assert (
        problems(
            "http",
            {"url": "https://api.example.com/x?d=${bizdate}", "expected_status": [200, 204]},
            vctx(),
        )
        == []
    )
    assert problems("http", {"url": "${endpoint}/hook"}, vctx()) == []
    assert problems("http", {"url": "ftp://example.com/x"}, vctx()) == [
        ("url", "Only http:// and https:// URLs are allowed.")
    ]
    assert (
        problems("http", {"url": "https://x.example", "method": "BREW"}, vctx())[0][0] == "method"
    )
    assert (
        problems("http", {"url": "https://x.example", "expected_status": 99}, vctx())[0][0]
        == "expected_status"
    )
    assert problems("http", {"url": "https://x.example", "headers": {"Bad Name": "v"}}, vctx()) == [
        ("headers.Bad Name", "Invalid header name.")
    ]
    assert (
        problems("http", {"url": "https://x.example", "headers": {"X-N": 5}}, vctx())[0][0]
        == "headers.X-N"
    )


def test_dependency_check_refuses_flows_of_other_tenants_and_waiting_on_itself(
    vctx, tenant, other_tenant, member_user, outsider
):
    mine = FlowFactory(tenant=tenant, owner=member_user)
    theirs = FlowFactory(tenant=other_tenant, owner=outsider)
    assert problems("dependency_check", {"flow": mine.pk}, vctx()) == []
    assert problems("dependency_check", {"flow": theirs.pk}, vctx()) == [
        ("flow", unseen_flow(theirs.pk))
    ]
    assert problems("dependency_check", {"flow": mine.pk}, vctx(flow_id=mine.pk))[0][0] == "offset"
    assert (
        problems(
            "dependency_check",
            {"flow": mine.pk, "business_date_offset_days": -1},
            vctx(flow_id=mine.pk),
        )
        == []
    )
    assert base.get("dependency_check").references({"flow": mine.pk}) == {
        "datasources": [],
        "flows": [mine.pk],
    }


def test_references_and_output_names():
    sql_assign = base.get("sql_assign")
    assert sql_assign.references({"datasource": 4, "sql": "x"}) == {"datasources": [4], "flows": []}
    assert sql_assign.output_names(
        {"datasource": 4, "sql": "SELECT max(d) AS last_day, t.n, cnt FROM t"}
    ) == ["last_day", "n", "cnt"]
    assert not sql_assign.outputs_dynamic({"sql": "SELECT a AS x, b AS y FROM t"})
    assert sql_assign.outputs_dynamic({"sql": "SELECT * FROM t"})
    assert sql_assign.outputs_dynamic({"sql": "SELECT count(*) FROM t"})
    assert base.get("condition").references({"mode": "expression", "expression": "1"}) == {
        "datasources": [],
        "flows": [],
    }
    assert base.get("data_sync").output_names({}) == ["rows_read", "rows_written", "rows_deleted"]
    # Never the built-in names: an upstream output would shadow them downstream.
    for node_type in base.all_types().values():
        assert not {"bizdate", "cyctime", "flow_id", "run_id"} & set(node_type.output_names({}))


def test_sql_assign_rows_and_columns_cannot_both_be_all(vctx, ds):
    config = {"datasource": ds.pk, "sql": "SELECT id FROM t"}
    assert problems("sql_assign", {**config, "rows": "all", "columns": "first"}, vctx()) == []
    found = problems("sql_assign", {**config, "rows": "all", "columns": "all"}, vctx())
    assert found == [
        (
            "columns",
            "Rows and columns cannot both be 'all': with every row, assign the first column "
            "only (one list-valued variable).",
        )
    ]
    assert problems("sql_assign", {**config, "rows": "some"}, vctx()) == [
        ("rows", "Must be one of: first, all.")
    ]


def test_sql_assign_outputs_follow_its_columns_choice():
    sql_assign = base.get("sql_assign")
    first = {"sql": "SELECT id, name AS n FROM t", "rows": "all", "columns": "first"}
    assert sql_assign.output_names(first) == ["id"]
    assert sql_assign.outputs_dynamic(first) is False
    # The first column is an expression the text does not name: not known before a run.
    unnamed = {**first, "sql": "SELECT count(*), name FROM t"}
    assert sql_assign.output_names(unnamed) == []
    assert sql_assign.outputs_dynamic(unnamed) is True
    assert sql_assign.output_names({"sql": "SELECT id, name AS n FROM t"}) == ["id", "n"]
