"""A flow's duration trends (GET /api/v1/flows/{id}/stats/): p50/p90 per node over the last N
successful runs, slow runs flagged against the runs before them, visibility, query counts."""

from __future__ import annotations

import datetime as dt
import statistics

import pytest

from operations.models import FlowRun, NodeRun
from operations.services import run_start
from tests.factories import build_flow
from tests.operations.helpers import script

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def stats_url(flow) -> str:
    return f"/api/v1/flows/{flow.pk}/stats/"


@pytest.fixture
def flow(tenant, member_user):
    flow, _ = build_flow(
        tenant=tenant,
        owner=member_user,
        name="trend",
        nodes=[script("extract"), script("load")],
        edges=[("extract", "load")],
        concurrency_policy="ignore",
    )
    return flow


def finished_run(engine, flow, user, mode="point_in_time") -> FlowRun:
    """A real run of the flow driven to its end by the engine."""
    run = engine.call(run_start, flow=flow, mode=mode, user=user, business_time=T0)
    engine.drain()
    run.refresh_from_db()
    return run


def give_durations(run: FlowRun, start: dt.datetime, seconds: dict[str, float]) -> None:
    """The engine ran the nodes in milliseconds: give them the durations of a real night
    (extract then load), and the run the span of both."""
    at = start
    for name in ("extract", "load"):
        node = NodeRun.objects.get(run=run, node_name=name, is_latest=True)
        node.started_at, node.finished_at = at, at + dt.timedelta(seconds=seconds[name])
        node.save(update_fields=["started_at", "finished_at"])
        at = node.finished_at
    FlowRun.objects.filter(pk=run.pk).update(started_at=start, finished_at=at)


def p(values, q):
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 3)


def test_node_percentiles_cover_the_last_n_successful_runs_only(api, engine, flow, member_user):
    # Given six successful runs with known durations, a failed run and a dry run
    extract = [10, 12, 11, 30, 13, 12]
    load = [5, 6, 5, 6, 5, 7]
    runs = []
    for i, (e, ld) in enumerate(zip(extract, load, strict=True)):
        run = finished_run(engine, flow, member_user)
        give_durations(run, T0 + dt.timedelta(days=i), {"extract": e, "load": ld})
        runs.append(run)
    extract_node = flow.nodes.get(name="extract")
    extract_node.config = {"fail": True}
    extract_node.save()
    assert finished_run(engine, flow, member_user).status == "failed"
    assert finished_run(engine, flow, member_user, mode="dry").status == "succeeded"

    # When the owner asks for the last 4
    res = api(member_user).get(stats_url(flow), {"last": 4})

    # Then the 4 newest successful non-dry runs are used, oldest first
    assert res.status_code == 200, res.content
    body = res.json()
    assert [r["id"] for r in body["runs"]] == [r.pk for r in runs[2:]]
    assert [r["duration_s"] for r in body["runs"]] == [16.0, 36.0, 18.0, 19.0]
    nodes = {n["node_name"]: n for n in body["nodes"]}
    assert nodes["extract"]["count"] == 4
    assert nodes["extract"]["p50_s"] == p(extract[2:], 50) == 12.5
    assert nodes["extract"]["p90_s"] == p(extract[2:], 90)
    assert nodes["load"]["p50_s"] == p(load[2:], 50)
    assert [d["duration_s"] for d in nodes["extract"]["durations"]] == [11, 30, 13, 12]
    assert body["duration"] == {
        "count": 4,
        "p50_s": p([16, 36, 18, 19], 50),
        "p90_s": p([16, 36, 18, 19], 90),
    }
    # the slowest node (by p90) comes first
    assert [n["node_name"] for n in body["nodes"]] == ["extract", "load"]


def test_a_run_over_twice_the_p90_of_the_runs_before_it_is_flagged(api, engine, flow, member_user):
    # Given three ordinary runs, one three times as long (its extract node), then one ordinary
    durations = [(10, 5), (12, 5), (11, 6), (40, 6), (12, 5)]
    runs = []
    for i, (e, ld) in enumerate(durations):
        run = finished_run(engine, flow, member_user)
        give_durations(run, T0 + dt.timedelta(days=i), {"extract": e, "load": ld})
        runs.append(run)

    body = api(member_user).get(stats_url(flow)).json()

    # Then only the long run is flagged, against the p90 of the three runs before it
    assert [r["flagged"] for r in body["runs"]] == [False, False, False, True, False]
    (flagged,) = body["flagged"]
    assert flagged["run"] == runs[3].pk and flagged["duration_s"] == 46.0
    assert flagged["p90_before_s"] == p([15, 17, 17], 90)
    assert [n["node_name"] for n in flagged["slow_nodes"]] == ["extract"]
    assert flagged["slow_nodes"][0]["p90_before_s"] == p([10, 12, 11], 90)


def test_the_first_runs_and_millisecond_jitter_are_never_flagged(api, engine, flow, member_user):
    # Twice as long as anything before, but with fewer than 3 runs before it, or only 0.2 s longer
    for i, seconds in enumerate([(0.05, 0.05), (1, 1), (0.05, 0.05), (0.05, 0.05), (0.2, 0.1)]):
        run = finished_run(engine, flow, member_user)
        give_durations(run, T0 + dt.timedelta(days=i), {"extract": seconds[0], "load": seconds[1]})

    body = api(member_user).get(stats_url(flow)).json()
    assert body["flagged"] == [] and len(body["runs"]) == 5


def test_a_flow_without_successful_runs_has_empty_trends(api, flow, member_user):
    body = api(member_user).get(stats_url(flow)).json()
    assert body["runs"] == [] and body["nodes"] == [] and body["flagged"] == []
    assert body["duration"] == {"count": 0, "p50_s": None, "p90_s": None}


def test_stats_follow_flow_visibility(api, engine, flow, member_user, other_member, outsider):
    finished_run(engine, flow, member_user)
    assert api(other_member).get(stats_url(flow)).status_code == 404
    assert api(outsider).get(stats_url(flow)).status_code == 404
    flow.is_public = True
    flow.save()
    assert api(other_member).get(stats_url(flow)).status_code == 200


@pytest.mark.parametrize("last", ["0", "201", "many"])
def test_a_bad_last_is_400_naming_it(api, flow, member_user, last):
    res = api(member_user).get(stats_url(flow), {"last": last})
    assert res.status_code == 400 and "last" in res.json()


def test_stats_query_count_does_not_grow_with_runs(
    api, engine, flow, member_user, django_assert_num_queries
):
    client = api(member_user)
    counts = []
    for more in (2, 12):
        for _ in range(more):
            finished_run(engine, flow, member_user)
        # ctx + the flow + its last runs + their nodes
        with django_assert_num_queries(4):
            body = client.get(stats_url(flow), {"last": 50}).json()
        counts.append(len(body["runs"]))
    assert counts == [2, 14]
