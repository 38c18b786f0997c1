"""Lineage through the API: recorded when a version is published, who reads and writes a
table (GET /api/v1/lineage/?table=), the flows up- and downstream of a flow through tables
and dependency checks (GET /api/v1/flows/{id}/lineage/), visibility and query counts."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from flows import services
from flows.models import DataSource, LineageEntry

pytestmark = pytest.mark.django_db


def datasource(tenant, name, engine, database):
    return DataSource.objects.create(
        tenant=tenant, name=name, engine=engine, host="db.example", database=database
    )


def make_flow(tenant, owner, name, nodes, *, publish=True, **fields):
    """A flow with one node per (name, type, config), published through the service."""
    flow = services.flow_create(tenant=tenant, user=owner, name=name, **fields)
    for node_name, node_type, config in nodes:
        services.node_create(flow=flow, user=owner, name=node_name, type=node_type, config=config)
    if publish:
        services.flow_publish(flow=flow, user=owner)
    return flow


@pytest.fixture
def sources(tenant):
    return {
        "pg": datasource(tenant, "warehouse", "postgresql", "warehouse"),
        "my": datasource(tenant, "reports", "mysql", "reports"),
    }


@pytest.fixture
def pipeline(tenant, member_user, other_member, sources):
    """A writes mart.daily → B copies it to MySQL reports.report → C reads that → D waits for C."""
    pg, my = sources["pg"], sources["my"]
    a = make_flow(
        tenant,
        member_user,
        "A load",
        [
            (
                "aggregate",
                "sql",
                {
                    "datasource": pg.pk,
                    "sql": "INSERT INTO Mart.Daily SELECT day, count(*) FROM orders GROUP BY day",
                },
            )
        ],
    )
    b = make_flow(
        tenant,
        other_member,
        "B export",
        [
            (
                "copy",
                "data_sync",
                {
                    "source": pg.pk,
                    "query": "SELECT * FROM mart.daily",
                    "target": my.pk,
                    "table": "report",
                },
            )
        ],
    )
    c = make_flow(
        tenant,
        member_user,
        "C check",
        [
            (
                "count",
                "sql_assign",
                {"datasource": my.pk, "sql": "SELECT count(*) AS n FROM reports.report"},
            )
        ],
    )
    d = make_flow(tenant, member_user, "D notify", [("wait", "dependency_check", {"flow": c.pk})])
    # Same table name, another data source: not the same table.
    e = make_flow(
        tenant,
        member_user,
        "E elsewhere",
        [("peek", "sql", {"datasource": pg.pk, "sql": "SELECT * FROM report"})],
    )
    return {"A": a, "B": b, "C": c, "D": d, "E": e}


def lineage(client, flow) -> dict:
    res = client.get(f"/api/v1/flows/{flow.pk}/lineage/")
    assert res.status_code == 200, res.content
    return res.json()


def graph(body, pipeline) -> tuple[dict, set]:
    names = {f.pk: key for key, f in pipeline.items()}
    flows = {
        names[f["id"]]: ("up" if f["upstream"] else "") + ("down" if f["downstream"] else "")
        for f in body["flows"]
    }
    edges = {
        (names[e["upstream"]], names[e["downstream"]], ",".join(e["tables"]) or "dependency")
        for e in body["edges"]
    }
    return flows, edges


def test_publishing_records_the_tables_each_node_reads_and_writes(pipeline, sources):
    facts = {
        (e.flow.name, e.access, e.datasource_id, e.schema, e.name, e.depends_on)
        for e in LineageEntry.objects.select_related("flow")
    }
    pg, my = sources["pg"].pk, sources["my"].pk
    assert facts == {
        ("A load", "write", pg, "mart", "daily", None),
        ("A load", "read", pg, "public", "orders", None),
        ("B export", "read", pg, "mart", "daily", None),
        ("B export", "write", my, "reports", "report", None),
        ("C check", "read", my, "reports", "report", None),
        ("D notify", "depends", None, "", "", pipeline["C"].pk),
        ("E elsewhere", "read", pg, "public", "report", None),
    }


def test_flow_lineage_follows_tables_and_dependency_checks_both_ways(api, admin_user, pipeline):
    client = api(admin_user)

    flows, edges = graph(lineage(client, pipeline["A"]), pipeline)
    assert flows == {"A": "", "B": "down", "C": "down", "D": "down"}
    assert edges == {
        ("A", "B", "mart.daily"),
        ("B", "C", "reports.report"),
        ("C", "D", "dependency"),
    }

    body = lineage(client, pipeline["C"])
    flows, _ = graph(body, pipeline)
    assert flows == {"A": "up", "B": "up", "C": "", "D": "down"}
    assert [(r["node_name"], r["table"]) for r in body["reads"]] == [("count", "reports.report")]
    assert body["writes"] == [] and body["problems"] == []

    flows, edges = graph(lineage(client, pipeline["E"]), pipeline)
    assert flows == {"E": ""} and edges == set()


def test_table_lineage_lists_readers_and_writers(api, admin_user, pipeline, sources):
    client = api(admin_user)

    def who(query):
        res = client.get("/api/v1/lineage/", query)
        assert res.status_code == 200, res.content
        body = res.json()
        return (
            sorted((r["flow_name"], r["node_name"], r["table"]) for r in body["readers"]),
            sorted((w["flow_name"], w["node_name"], w["table"]) for w in body["writers"]),
        )

    daily = ([("B export", "copy", "mart.daily")], [("A load", "aggregate", "mart.daily")])
    assert who({"table": "daily"}) == daily
    assert who({"table": "mart.daily"}) == daily
    assert who({"table": "MART.Daily"}) == daily  # unquoted names are stored folded
    assert who({"table": "public.daily"}) == ([], [])
    report = who({"table": "report"})
    assert report == (
        [("C check", "count", "reports.report"), ("E elsewhere", "peek", "public.report")],
        [("B export", "copy", "reports.report")],
    )
    assert who({"table": "report", "datasource": sources["my"].pk}) == (
        [("C check", "count", "reports.report")],
        [("B export", "copy", "reports.report")],
    )


def test_only_the_latest_published_version_counts(api, member_user, admin_user, pipeline, sources):
    # Given A republished without its write (a draft change alone changes nothing)
    a = pipeline["A"]
    node = a.nodes.get()
    services.node_update(
        node=node, user=member_user, config={"datasource": sources["pg"].pk, "sql": "SELECT 1"}
    )
    client = api(admin_user)
    assert graph(lineage(client, a), pipeline)[0]["B"] == "down"

    services.flow_publish(flow=a, user=member_user)

    flows, edges = graph(lineage(client, a), pipeline)
    assert flows == {"A": ""} and edges == set()
    writers = client.get("/api/v1/lineage/", {"table": "daily"}).json()["writers"]
    assert writers == []


def test_flows_a_member_cannot_see_are_neither_shown_nor_followed(api, member_user, pipeline):
    # B is other_member's private flow: member_user does not see it, nor what lies beyond it.
    client = api(member_user)
    flows, edges = graph(lineage(client, pipeline["A"]), pipeline)
    assert flows == {"A": ""} and edges == set()
    flows, edges = graph(lineage(client, pipeline["C"]), pipeline)
    assert flows == {"C": "", "D": "down"} and edges == {("C", "D", "dependency")}
    body = client.get("/api/v1/lineage/", {"table": "mart.daily"}).json()
    assert [w["flow_name"] for w in body["writers"]] == ["A load"] and body["readers"] == []
    assert client.get(f"/api/v1/flows/{pipeline['B'].pk}/lineage/").status_code == 404


def test_another_tenant_sees_nothing(api, outsider, pipeline):
    client = api(outsider)
    assert client.get(f"/api/v1/flows/{pipeline['A'].pk}/lineage/").status_code == 404
    body = client.get("/api/v1/lineage/", {"table": "daily"}).json()
    assert body == {"table": "daily", "readers": [], "writers": []}


def test_sql_the_parser_cannot_read_is_reported_on_the_flow(api, tenant, member_user, sources):
    flow = make_flow(
        tenant,
        member_user,
        "odd",
        [
            (
                "vacuum",
                "sql",
                {"datasource": sources["pg"].pk, "sql": "VACUUM big; INSERT INTO t SELECT 1"},
            )
        ],
    )
    body = lineage(api(member_user), flow)
    assert [(p["node_name"], p["detail"][:11]) for p in body["problems"]] == [
        ("vacuum", "statement 1")
    ]
    assert [w["table"] for w in body["writes"]] == ["public.t"]


def test_publishing_through_the_api_records_lineage(api, tenant, member_user, sources):
    flow = make_flow(
        tenant,
        member_user,
        "via api",
        [("s", "sql", {"datasource": sources["pg"].pk, "sql": "DELETE FROM stale"})],
        publish=False,
    )
    res = api(member_user).post(f"/api/v1/flows/{flow.pk}/publish/", {}, format="json")
    assert res.status_code in (200, 201), res.content
    writes = lineage(api(member_user), flow)["writes"]
    assert [(w["table"], w["datasource_name"]) for w in writes] == [("public.stale", "warehouse")]


@pytest.mark.parametrize(
    "query, field",
    [({}, "table"), ({"table": "  "}, "table"), ({"table": "x", "datasource": "y"}, "datasource")],
)
def test_bad_table_queries_are_400_naming_the_parameter(api, member_user, query, field):
    res = api(member_user).get("/api/v1/lineage/", query)
    assert res.status_code == 400 and field in res.json(), res.content


def test_rebuild_command_recomputes_published_lineage(pipeline):
    LineageEntry.objects.all().delete()
    call_command("rebuild_lineage")
    assert LineageEntry.objects.count() == 7
    call_command("rebuild_lineage")
    assert LineageEntry.objects.count() == 7


def test_lineage_query_counts_do_not_grow_with_the_graph(
    api, admin_user, member_user, tenant, sources, django_assert_num_queries
):
    pg = sources["pg"]

    def chain(prefix, length):
        """prefix0 writes t_prefix0, prefix1 reads it and writes t_prefix1, …"""
        flows = []
        for i in range(length):
            sql = (
                f"INSERT INTO {prefix}_{i} SELECT * FROM {prefix}_{i - 1}"
                if i
                else f"INSERT INTO {prefix}_0 SELECT 1"
            )
            flows.append(
                make_flow(
                    tenant,
                    member_user,
                    f"{prefix}{i}",
                    [("n", "sql", {"datasource": pg.pk, "sql": sql})],
                )
            )
        return flows

    for who in (admin_user, member_user):
        client = api(who)
        small = chain(f"s{who.pk}_", 2)
        with django_assert_num_queries(5):  # ctx, the flow, the walk, the flows, their facts
            assert len(lineage(client, small[0])["flows"]) == 2
        with django_assert_num_queries(2):  # ctx, the facts
            client.get("/api/v1/lineage/", {"table": f"s{who.pk}__0"})
        large = chain(f"l{who.pk}_", 12)
        with django_assert_num_queries(5):
            assert len(lineage(client, large[5])["flows"]) == 12
        with django_assert_num_queries(2):
            body = client.get("/api/v1/lineage/", {"table": f"l{who.pk}__3"}).json()
        assert len(body["readers"]) == len(body["writers"]) == 1


def test_a_failing_parser_never_stops_a_publish(monkeypatch, tenant, member_user, sources):
    from flows.nodes import base as node_types

    def broken(config, datasource):
        raise RuntimeError("parser bug")

    monkeypatch.setattr(node_types.get("sql"), "lineage", broken)
    flow = make_flow(
        tenant,
        member_user,
        "still publishes",
        [("s", "sql", {"datasource": sources["pg"].pk, "sql": "select 1"})],
    )
    assert flow.versions.count() == 1
    (fact,) = LineageEntry.objects.filter(flow=flow)
    assert fact.access == "unparsed" and "failed" in fact.detail
