"""Admission of parked nodes under concurrency: a worker that frees a slot while another
admission runs does not wait for it, and its slot is not lost (PostgreSQL)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections

from accounts.services import tenant_set_limits
from operations import dispatch
from operations.models import NodeRun
from operations.services import run_start, slots
from tests.factories import build_flow


@pytest.mark.django_db(transaction=True)
def test_a_slot_freed_during_an_admission_is_admitted_by_it_and_nobody_waits(
    tenant, admin_user, superuser, monkeypatch
):
    if connection.vendor != "postgresql":
        pytest.skip("coalesced admission is PostgreSQL's (SQLite's writers are serial)")
    sent: list = []
    monkeypatch.setattr(dispatch, "publisher", lambda items: sent.extend(i[0] for i in items))
    monkeypatch.setattr(dispatch, "run_publisher", lambda name, arg: None)
    # Given a tenant limited to one running node, node a running and node b parked for it ...
    tenant_set_limits(tenant=tenant, actor=superuser, limits={"running_nodes": 1})
    slots.forget_state()
    flow, _ = build_flow(tenant=tenant, owner=admin_user, nodes=["a", "b"])
    run = run_start(flow=flow, mode="try", user=admin_user)
    a = NodeRun.objects.get(run=run, node_name="a")
    b = NodeRun.objects.get(run=run, node_name="b")
    NodeRun.objects.filter(pk=a.pk).update(status="running", worker="w:1")
    NodeRun.objects.filter(pk=b.pk).update(
        status="waiting", waiting_reason="tenant_limit", queued_at=None
    )
    sent.clear()  # the run's start sent both
    # ... and an admission under way in another worker, which looked before a's slot was
    # freed (it found nothing to admit) and has not committed yet ...
    real = slots._admit_locked
    inside, go = threading.Event(), threading.Event()
    calls: list = []

    def paused_once(state):
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            inside.set()
            assert go.wait(timeout=20)
            return 0
        return real(state)

    monkeypatch.setattr(slots, "_admit_locked", paused_once)
    results: dict = {}

    def holder():
        try:
            results["holder"] = slots.admit()
        finally:
            connections.close_all()

    worker = threading.Thread(target=holder, name="holder")
    worker.start()
    assert inside.wait(timeout=20)
    # ... when a finishes (its slot freed and committed) and this worker asks for an
    # admission, it returns at once instead of waiting for the lock ...
    NodeRun.objects.filter(pk=a.pk).update(status="succeeded", worker="")
    started = time.monotonic()
    assert slots.admit() == 0
    assert time.monotonic() - started < 5
    assert NodeRun.objects.get(pk=b.pk).status == "waiting"
    # ... and the admission under way goes round again once it ends, admitting b.
    go.set()
    worker.join(timeout=30)
    assert results.get("holder") == 1
    assert NodeRun.objects.get(pk=b.pk).status == "queued"
    assert sent == [b.pk]
    assert calls == ["holder", "holder"]


@pytest.mark.django_db
def test_the_first_request_for_an_admission_is_seen_as_one():
    if connection.vendor != "postgresql":
        pytest.skip("the request sequence is PostgreSQL's")
    from operations.services import locking

    # Given a request sequence never used (a new database) ...
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER SEQUENCE {locking.ADMISSION_WANTED} RESTART")
    before = locking.admissions_wanted()
    # ... the first request still changes what an admission under way compares.
    locking.want_admission()
    assert locking.admissions_wanted() != before
