"""GET /metrics: who may scrape it, and what it says after real runs, firings and failed
deliveries, parsed with prometheus-client's own text parser."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from config.celery_app import app
from config.monitoring import totals
from flows.services import flow_publish
from operations import alerts
from operations.services import run_start
from scheduling.services import schedule_fire, schedule_save
from tests.factories import build_flow
from tests.operations.helpers import script

pytestmark = pytest.mark.django_db

REMOTE = "203.0.113.7"
TOKEN = "s3cret-metrics-token"


def scrape(client, **headers) -> dict:
    """{sample name: {frozenset(labels): value}} of a successful scrape."""
    res = client.get("/metrics", **headers)
    assert res.status_code == 200, res.content
    assert res["Content-Type"].startswith("text/plain")
    samples: dict = {}
    for family in text_string_to_metric_families(res.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get(name, {}).get(frozenset(labels.items()))


# --------------------------------------------------------------------------- access


def test_loopback_clients_may_scrape_without_a_token(client):
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1


def test_remote_clients_are_refused_without_a_token_configured(client):
    res = client.get("/metrics", REMOTE_ADDR=REMOTE)
    assert res.status_code == 403 and "METRICS_TOKEN" in res.json()["detail"]


@override_settings(METRICS_TOKEN=TOKEN)
def test_remote_clients_need_the_bearer_token(client):
    missing = client.get("/metrics", REMOTE_ADDR=REMOTE)
    assert missing.status_code == 401 and missing["WWW-Authenticate"].startswith("Bearer")
    wrong = client.get("/metrics", REMOTE_ADDR=REMOTE, HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 401
    assert (
        client.get("/metrics", REMOTE_ADDR=REMOTE, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code
        == 200
    )


def test_a_request_through_a_proxy_is_not_a_loopback_client(client):
    res = client.get("/metrics", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert res.status_code == 403


@override_settings(METRICS_ALLOW_LOOPBACK=False, METRICS_TOKEN=TOKEN)
def test_loopback_access_can_be_turned_off(client):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_a_tenant_session_or_api_token_gives_no_access(client, admin_user):
    client.force_login(admin_user)
    assert client.get("/metrics", REMOTE_ADDR=REMOTE).status_code == 403
    assert client.post("/metrics").status_code == 405


# --------------------------------------------------------------------------- content


@pytest.fixture
def flows(tenant, member_user):
    ok, _ = build_flow(
        tenant=tenant,
        owner=member_user,
        name="ok",
        nodes=[script("a"), script("b")],
        edges=[("a", "b")],
        concurrency_policy="ignore",
    )
    bad, _ = build_flow(
        tenant=tenant, owner=member_user, name="bad", nodes=[script("x", fail=True)]
    )
    return ok, bad


def finished(engine, flow, user):
    run = engine.call(run_start, flow=flow, mode="try", user=user)
    engine.drain()
    run.refresh_from_db()
    return run


@override_settings(METRICS_SETTLE_SECONDS=0)
def test_runs_and_node_durations_after_real_runs(client, engine, flows, member_user, tenant):
    ok, bad = flows
    # Given two successful runs, a failed one and one still queued
    for _ in range(2):
        assert finished(engine, ok, member_user).status == "succeeded"
    assert finished(engine, bad, member_user).status == "failed"
    queued = run_start(flow=ok, mode="try", user=member_user)  # never sent: stays queued
    assert queued.status == "queued"

    samples = scrape(client)

    t = tenant.slug
    assert value(samples, "tributary_runs", tenant=t, state="queued") == 1
    assert value(samples, "tributary_runs_finished_total", tenant=t, state="succeeded") == 2
    assert value(samples, "tributary_runs_finished_total", tenant=t, state="failed") == 1
    node = {"node_type": "test_script", "outcome": "succeeded"}
    assert value(samples, "tributary_node_duration_seconds_count", **node) == 4
    assert value(samples, "tributary_node_duration_seconds_bucket", **node, le="+Inf") == 4
    # Cumulative buckets never decrease with `le`.
    buckets = sorted(
        (float(dict(k)["le"]), v)
        for k, v in samples["tributary_node_duration_seconds_bucket"].items()
        if dict(k)["outcome"] == "succeeded"
    )
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)
    failed = {"node_type": "test_script", "outcome": "failed"}
    assert value(samples, "tributary_node_duration_seconds_count", **failed) == 1
    assert value(samples, "tributary_node_runs", tenant=t, state="queued") == 1


@override_settings(METRICS_SETTLE_SECONDS=0)
def test_counters_count_each_event_once_however_often_scraped(client, engine, flows, member_user):
    ok, _bad = flows
    finished(engine, ok, member_user)
    first = scrape(client)
    second = scrape(client)
    name = "tributary_node_duration_seconds_count"
    assert first[name] == second[name]

    finished(engine, ok, member_user)
    third = scrape(client)
    (key,) = [k for k in third[name] if dict(k)["outcome"] == "succeeded"]
    assert third[name][key] == first[name][key] + 2  # the new run's two nodes, no more


def test_work_is_counted_once_it_has_settled(engine, flows, member_user):
    ok, _bad = flows
    run = finished(engine, ok, member_user)
    now = timezone.now()

    early = totals.totals_advance(now=now)["runs_finished_total"]
    later = totals.totals_advance(now=run.finished_at + totals.settle() + dt.timedelta(seconds=1))

    assert early == {}  # finished less than METRICS_SETTLE_SECONDS ago
    assert sum(e["count"] for e in later["runs_finished_total"].values()) == 1


@override_settings(METRICS_SETTLE_SECONDS=0)
def test_scheduling_lateness_is_a_histogram_of_fire_time_to_run(client, tenant, member_user):
    flow, _ = build_flow(tenant=tenant, owner=member_user, name="sched", nodes=["a"])
    schedule = schedule_save(
        flow=flow, user=member_user, cron="* * * * *", start_date=dt.date(2024, 1, 1)
    )
    flow_publish(flow=flow, user=member_user)
    # A fire time ten minutes ago, fired now (beat was down): ~600 s late.
    fire_time = (timezone.now() - dt.timedelta(minutes=10)).replace(second=0, microsecond=0)
    schedule.active_since = fire_time - dt.timedelta(hours=1)
    schedule.save(update_fields=["active_since"])
    assert schedule_fire(schedule_id=schedule.pk, now=fire_time + dt.timedelta(seconds=1))

    samples = scrape(client)

    assert samples["tributary_scheduling_lateness_seconds_count"] == {frozenset(): 1}
    assert value(samples, "tributary_scheduling_lateness_seconds_bucket", le="300.0") == 0
    assert value(samples, "tributary_scheduling_lateness_seconds_bucket", le="+Inf") == 1
    assert 600 <= value(samples, "tributary_scheduling_lateness_seconds_sum") < 700


@override_settings(METRICS_SETTLE_SECONDS=0)
def test_failed_alert_deliveries_are_counted(client, engine, flows, member_user):
    _ok, bad = flows
    run = finished(engine, bad, member_user)
    # A webhook to an address the outbound policy refuses: a real, final delivery failure.
    assert (
        alerts.deliver_webhook(
            run_id=run.pk, event="failed", url="http://10.255.255.1/hook", attempt=1
        )
        is None
    )

    samples = scrape(client)
    assert (
        value(samples, "tributary_alert_delivery_failures_total", channel="webhook", event="failed")
        == 1
    )


def test_queue_depth_per_queue_from_the_broker(client):
    app.control.purge()
    try:
        for _ in range(3):
            app.send_task("tests.metrics.never_run", queue="celery")
        samples = scrape(client)
    finally:
        app.control.purge()
    assert value(samples, "tributary_broker_up") == 1
    assert value(samples, "tributary_queue_depth", queue="celery") == 3
    assert value(samples, "tributary_queue_depth", queue="tributary.scheduling") == 0


def test_the_scrape_answers_when_the_broker_is_down(client, monkeypatch):
    # A broker nobody listens on (stopping the shared Redis is not an option here).
    monkeypatch.setattr(app.conf, "broker_read_url", "redis://127.0.0.1:1/0")
    samples = scrape(client)
    assert value(samples, "tributary_broker_up") == 0
    assert "tributary_queue_depth" not in samples
    # Everything read from the database is still there.
    families = {
        f.name for f in text_string_to_metric_families(client.get("/metrics").content.decode())
    }
    assert {
        "tributary_runs",
        "tributary_runs_finished",
        "tributary_node_duration_seconds",
    } <= families


# --------------------------------------------------------------------------- fair share


def test_pools_and_tenant_limits_are_gauges(client, tenant, other_tenant, admin_user, outsider):
    from flows.models import DataSource
    from operations.models import NodeRun, WorkerSlots

    WorkerSlots.objects.create(name="w", concurrency=5, seen_at=timezone.now())
    flow, _ = build_flow(tenant=tenant, owner=admin_user, nodes=["a"])
    build_flow(tenant=other_tenant, owner=outsider, nodes=["b"])
    ds = DataSource.objects.create(
        tenant=tenant, name="wh", engine="sqlite", database="x.sqlite3", max_concurrency=2
    )
    run = run_start(flow=flow, mode="try", user=admin_user)
    NodeRun.objects.filter(run=run).update(status="running", pools=f",{ds.pk},")
    samples = scrape(client)
    assert value(samples, "tributary_worker_slots") == 5
    # Two tenants with flows, 5 slots: each may use 4 by default.
    assert value(samples, "tributary_tenant_slots_limit", tenant="acme") == 4
    assert value(samples, "tributary_pool_slots_limit", tenant="acme", pool="wh") == 2
    assert value(samples, "tributary_pool_slots_used", tenant="acme", pool="wh") == 1
