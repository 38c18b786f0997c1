"""Many triggers at the same moment, each in its own thread and connection (PostgreSQL).

The concurrency policy is applied under the flow's row lock, so whatever the interleaving the
outcome is the one a serial order would give.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection, connections

from flows.services import flow_publish
from operations import dispatch
from operations.models import FlowRun, NodeRun
from operations.services import run_create_scheduled, run_start
from tests.factories import chain_flow

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="concurrent triggers need row locks; SQLite serialises every writer anyway",
    ),
]

TRIGGERS = 50  # issue 8: 50 concurrent triggers per policy


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    """Runs are created, not executed: nothing is sent to a broker."""
    monkeypatch.setattr(dispatch, "publisher", lambda items: None)
    monkeypatch.setattr(dispatch, "relay_publisher", lambda items: None)
    monkeypatch.setattr(dispatch, "run_publisher", lambda name, arg: None)


def fire_together(n, action):
    """Call `action()` from n threads released at the same instant; return results/errors."""
    barrier = threading.Barrier(n)
    results, errors = [], []

    def worker():
        try:
            barrier.wait()
            results.append(action())
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


def trigger_all(flow, user):
    return fire_together(TRIGGERS, lambda: run_start(flow=flow, mode="try", user=user))


def test_skip_lets_exactly_one_of_many_simultaneous_triggers_run(tenant, admin_user):
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=2, concurrency_policy="skip")
    trigger_all(flow, admin_user)

    runs = FlowRun.objects.filter(flow=flow)
    assert runs.count() == TRIGGERS
    assert runs.exclude(status="skipped").count() == 1
    running = runs.exclude(status="skipped").get()
    assert all(f"run {running.pk}" in r.skip_reason for r in runs.filter(status="skipped"))


def test_ignore_starts_every_simultaneous_trigger(tenant, admin_user):
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=2, concurrency_policy="ignore")
    trigger_all(flow, admin_user)

    runs = FlowRun.objects.filter(flow=flow)
    assert runs.count() == TRIGGERS
    assert set(runs.values_list("status", flat=True)) == {"queued"}
    assert not runs.filter(previous_run__isnull=False).exists()
    assert (
        NodeRun.objects.filter(run__flow=flow, node_name="n1", status="queued").count() == TRIGGERS
    )


@pytest.mark.parametrize("policy", ["parallel_same_node", "parallel_downstream"])
def test_parallel_policies_chain_simultaneous_triggers_one_after_another(
    tenant, admin_user, policy
):
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=2, concurrency_policy=policy)
    trigger_all(flow, admin_user)

    runs = list(FlowRun.objects.filter(flow=flow).order_by("activated_at", "id"))
    assert len(runs) == TRIGGERS
    # Each run waits for the one activated just before it: one chain, no fork, no gap.
    assert runs[0].previous_run_id is None
    assert [r.previous_run_id for r in runs[1:]] == [r.pk for r in runs[:-1]]
    first_nodes = dict(
        NodeRun.objects.filter(run__flow=flow, node_name="n1").values_list("run_id", "status")
    )
    assert first_nodes[runs[0].pk] == "queued"
    assert {first_nodes[r.pk] for r in runs[1:]} == {"waiting"}
    assert {r.status for r in runs[1:]} == {"waiting"}


def test_a_fire_time_fired_many_times_at_once_runs_once(tenant, admin_user):
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=1, concurrency_policy="ignore")
    flow_publish(flow=flow, user=admin_user)
    at = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)

    results = fire_together(20, lambda: run_create_scheduled(flow_id=flow.pk, fire_time=at))

    assert len([r for r in results if r is not None]) == 1
    assert FlowRun.objects.filter(flow=flow, fire_time=at).count() == 1
