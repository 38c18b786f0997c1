"""A tenant's active-run limit holds when runs of different flows are created at once."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections

from accounts.services import tenant_set_limits
from operations.models import FlowRun
from operations.services import creation, run_start, slots
from tests.factories import build_flow


@pytest.mark.django_db(transaction=True)
def test_runs_of_different_flows_created_at_once_take_the_last_place_once(
    engine, tenant, admin_user, superuser, monkeypatch
):
    if connection.vendor != "postgresql":
        pytest.skip("a real race needs PostgreSQL's row-level concurrency")
    # Given a tenant limited to one active run and four flows (each run locks only its own
    # flow), and activating a run takes a while, so every creation overlaps the others ...
    tenant_set_limits(tenant=tenant, actor=superuser, limits={"active_runs": 1})
    slots.forget_state()
    flows = [
        build_flow(tenant=tenant, owner=admin_user, nodes=["a"], name=f"f{i}")[0] for i in range(4)
    ]
    real_activate = creation._activate

    def slow_activate(run):
        time.sleep(0.2)
        return real_activate(run)

    monkeypatch.setattr(creation, "_activate", slow_activate)
    barrier = threading.Barrier(len(flows))
    errors: list = []

    def start(flow):
        try:
            barrier.wait(timeout=10)
            run_start(flow=flow, mode="try", user=admin_user)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    # ... when four runs are started at the same moment ...
    threads = [threading.Thread(target=start, args=(f,)) for f in flows]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    # ... one becomes active and three wait for the place.
    runs = FlowRun.objects.filter(tenant=tenant)
    assert runs.count() == 4
    assert runs.filter(activated_at__isnull=False).count() == 1
    assert runs.filter(activated_at__isnull=True, status="queued").count() == 3
