"""The metric families of /metrics, for prometheus-client's exposition.

| metric | type | labels |
|---|---|---|
| tributary_runs | gauge | tenant, state (queued, waiting, running, paused) |
| tributary_runs_finished_total | counter | tenant, state |
| tributary_node_runs | gauge | tenant, state (queued, waiting, running) |
| tributary_tenant_slots_used | gauge | tenant (nodes running) |
| tributary_tenant_slots_limit | gauge | tenant (its running-node limit, own or default) |
| tributary_pool_slots_used | gauge | tenant, pool (nodes running on a capped data source) |
| tributary_pool_slots_limit | gauge | tenant, pool (its max_concurrency) |
| tributary_worker_slots | gauge | (the pool sizes of the workers up) |
| tributary_node_duration_seconds | histogram | node_type, outcome |
| tributary_queue_depth | gauge | queue |
| tributary_broker_up | gauge | |
| tributary_scheduling_lateness_seconds | histogram | |
| tributary_scheduling_lateness_recent_max_seconds | gauge | |
| tributary_alert_delivery_failures_total | counter | channel, event |
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from operations.choices import NodeStatus

from . import readings, totals

PREFIX = "tributary_"

# Readings other apps add to every scrape (register_reading, from an AppConfig.ready()).
EXTRA_READINGS: list[Callable[[], Iterable[Metric]]] = []


def register_reading(reading: Callable[[], Iterable[Metric]]) -> None:
    """Add metric families to every scrape (call from an AppConfig.ready())."""
    if reading not in EXTRA_READINGS:
        EXTRA_READINGS.append(reading)


def _histogram(name, doc, labels, bounds, data) -> HistogramMetricFamily:
    family = HistogramMetricFamily(PREFIX + name, doc, labels=list(labels))
    if not labels and not data:  # one unlabelled series: it exists from the start, at zero
        data = {"": {"buckets": [0] * (len(bounds) + 1), "sum": 0.0, "count": 0}}
    for key, entry in sorted(data.items()):
        values = key.split("|") if labels else []
        cumulative, buckets = 0, []
        for bound, count in zip(bounds, entry["buckets"], strict=False):
            cumulative += count
            buckets.append((repr(float(bound)), cumulative))
        buckets.append(("+Inf", entry["count"]))
        family.add_metric(values, buckets, sum_value=round(entry["sum"], 6))
    return family


def _counter(name, doc, labels, data) -> CounterMetricFamily:
    family = CounterMetricFamily(PREFIX + name, doc, labels=list(labels))
    for key, entry in sorted(data.items()):
        family.add_metric(key.split("|"), entry["count"])
    return family


def _fair_share() -> Iterable[Metric]:
    """Tenant limits and data-source pools (operations.engine.fair), read at scrape time."""
    numbers = readings.fair_share()
    workers = GaugeMetricFamily(
        PREFIX + "worker_slots", "Worker slots up (pool sizes the workers reported)."
    )
    workers.add_metric([], numbers["worker_slots"])
    yield workers
    limit = GaugeMetricFamily(
        PREFIX + "tenant_slots_limit",
        "Nodes a tenant may run at once (its own limit, else the platform's default).",
        labels=["tenant"],
    )
    for tenant, n in numbers["tenant_limits"]:
        limit.add_metric([tenant], n)
    yield limit
    used = GaugeMetricFamily(
        PREFIX + "pool_slots_used",
        "Nodes running on a data source with a pool.",
        labels=["tenant", "pool"],
    )
    cap = GaugeMetricFamily(
        PREFIX + "pool_slots_limit",
        "A data source's pool: nodes that may run on it at once.",
        labels=["tenant", "pool"],
    )
    for tenant, pool, n_cap, n_used in numbers["pools"]:
        used.add_metric([tenant, pool], n_used)
        cap.add_metric([tenant, pool], n_cap)
    yield used
    yield cap


class TributaryCollector(Collector):
    """Reads everything at scrape time; holds no state of its own."""

    def collect(self) -> Iterable[Metric]:
        running = GaugeMetricFamily(
            PREFIX + "runs", "Runs not finished yet, by state.", labels=["tenant", "state"]
        )
        for tenant, state, n in readings.active_runs():
            running.add_metric([tenant, state], n)
        yield running

        nodes = GaugeMetricFamily(
            PREFIX + "node_runs",
            "Node runs queued, waiting or running, by state.",
            labels=["tenant", "state"],
        )
        slots = GaugeMetricFamily(
            PREFIX + "tenant_slots_used",
            "Worker slots a tenant's nodes hold (nodes running).",
            labels=["tenant"],
        )
        for tenant, state, n in readings.active_node_runs():
            nodes.add_metric([tenant, state], n)
            if state == NodeStatus.RUNNING:
                slots.add_metric([tenant], n)
        yield nodes
        yield slots
        yield from _fair_share()

        depths = readings.queue_depths()
        up = GaugeMetricFamily(PREFIX + "broker_up", "1 when the broker answered this scrape.")
        up.add_metric([], 0 if depths is None else 1)
        yield up
        queue = GaugeMetricFamily(
            PREFIX + "queue_depth", "Messages waiting in a broker queue.", labels=["queue"]
        )
        for name, n in sorted((depths or {}).items()):
            queue.add_metric([name], n)
        yield queue

        worst = readings.recent_lateness()
        recent = GaugeMetricFamily(
            PREFIX + "scheduling_lateness_recent_max_seconds",
            "Largest lateness (fire time to run created) of the last five minutes' fire times.",
        )
        if worst is not None:
            recent.add_metric([], worst)
        yield recent

        done = totals.totals_advance()
        yield _histogram(
            "node_duration_seconds",
            "Durations of finished node attempts.",
            ("node_type", "outcome"),
            totals.NODE_BUCKETS,
            done["node_duration_seconds"],
        )
        yield _counter(
            "runs_finished",
            "Runs finished, by final state.",
            ("tenant", "state"),
            done["runs_finished_total"],
        )
        yield _histogram(
            "scheduling_lateness_seconds",
            "Seconds from a fire time to its run being created.",
            (),
            totals.LATENESS_BUCKETS,
            done["scheduling_lateness_seconds"],
        )
        yield _counter(
            "alert_delivery_failures",
            "Failed alert deliveries (e-mail, webhook attempts).",
            ("channel", "event"),
            done["alert_delivery_failures_total"],
        )
        for reading in EXTRA_READINGS:
            yield from reading()
