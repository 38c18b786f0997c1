"""A node's message can arrive before the transaction that queued it commits: the recording
sends the next nodes' messages just before its COMMIT (lifecycle.record), and the receiving
worker's claim waits for that commit. Under fair share the claim reads the node first;
that read must wait too, or the message is dropped and the node stays queued."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from accounts.services import tenant_set_limits
from operations import dispatch
from operations.models import NodeRun
from operations.services import run_start, slots
from tests.factories import build_flow
from tests.integration.workers import wait_for


@pytest.mark.django_db(transaction=True)
def test_a_message_that_beats_the_commit_is_claimed_under_fair_share(
    tenant, admin_user, superuser, monkeypatch
):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's writers are serial: the reader's transaction waits for the writer")
    monkeypatch.setattr(dispatch, "publisher", lambda items: None)
    monkeypatch.setattr(dispatch, "run_publisher", lambda name, arg: None)
    # Fair share applies: the tenant has a limit, with room.
    tenant_set_limits(tenant=tenant, actor=superuser, limits={"running_nodes": 2})
    slots.forget_state()
    flow, _ = build_flow(tenant=tenant, owner=admin_user, nodes=["a", "b"], edges=[("a", "b")])
    run = run_start(flow=flow, mode="try", user=admin_user)
    a = NodeRun.objects.get(run=run, node_name="a")
    b = NodeRun.objects.get(run=run, node_name="b")
    NodeRun.objects.filter(pk=a.pk).update(status="succeeded", worker="")
    assert b.status == "pending"
    # Another worker's transaction queues b and has not committed yet ...
    queued, commit, deciding = threading.Event(), threading.Event(), {}

    def decide():
        try:
            with transaction.atomic():
                deciding["pid"] = connection.connection.info.backend_pid
                NodeRun.objects.filter(pk=b.pk).update(status="queued", queued_at=timezone.now())
                queued.set()
                assert commit.wait(timeout=20)
        finally:
            connections.close_all()

    # ... when b's message reaches this worker, whose claim starts meanwhile.
    claimed: dict = {}

    def claim():
        try:
            claimed["got"] = slots.claim_fair(b.pk, timezone.now(), "w:2")
        finally:
            connections.close_all()

    decider = threading.Thread(target=decide)
    decider.start()
    assert queued.wait(timeout=20)
    claimer = threading.Thread(target=claim)
    claimer.start()
    # The claim waits for the deciding transaction (it does not give up on a pending node).
    assert wait_for(
        lambda: not claimer.is_alive() or _waiting_on_a_lock_any(exclude=deciding["pid"]),
        timeout=20,
        what="the claim to wait on the row's lock",
    )
    assert claimer.is_alive(), f"the claim gave up before the commit: {claimed}"
    commit.set()
    decider.join(timeout=20)
    claimer.join(timeout=20)
    got, admit = claimed["got"]
    assert got is not None and got["id"] == b.pk
    assert admit is False
    b.refresh_from_db()
    assert (b.status, b.worker) == ("running", "w:2")


def _waiting_on_a_lock_any(*, exclude: int) -> bool:
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND datname = current_database() AND pid <> %s",
            [exclude],
        )
        return cursor.fetchone()[0] > 0
