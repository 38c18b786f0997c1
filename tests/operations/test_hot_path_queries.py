"""The engine's hot path, pinned in statements per node (PostgreSQL).

A node costs one statement to claim it and one to record its success and queue what follows
(store.claim, store.complete_in_one); fair share, once active (a second tenant with flows),
adds the slot check under its lock. A change that adds a query per node shows up here as a
count, before it shows up in `manage.py benchmark` as a slower engine.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from operations.models import WorkerSlots
from operations.services import run_start, slots
from tests.factories import build_flow

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the hot path's single statements are PostgreSQL's"
)

CHAIN = 20


def _statements(captured) -> list[str]:
    """The statements sent, without the savepoints the test's outer transaction adds."""
    return [
        q["sql"]
        for q in captured
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT"))
    ]


def _run_chain(engine, tenant, user) -> list[str]:
    names = [f"n{i}" for i in range(CHAIN)]
    flow, _ = build_flow(
        tenant=tenant, owner=user, nodes=names, edges=list(zip(names, names[1:], strict=False))
    )
    run = engine.call(run_start, flow=flow, mode="try", user=user)
    with CaptureQueriesContext(connection) as captured:
        engine.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    return _statements(captured.captured_queries)


def test_a_node_costs_two_statements_without_fair_share(engine, tenant, admin_user):
    # Given one tenant (fair share inactive), a 20-node chain costs 2 statements per node,
    # plus 10 for the run's start and finish (its events, its webhooks, its outcome).
    slots.forget_state()
    statements = _run_chain(engine, tenant, admin_user)
    assert len(statements) == 2 * CHAIN + 10, "\n".join(s[:120] for s in statements)


def test_fair_share_adds_its_slot_check_and_nothing_more(
    engine, tenant, admin_user, other_tenant, outsider
):
    # Given a second tenant with a flow and 8 worker slots: every tenant has a default limit,
    # so each claim takes the tenant's slot lock, counts and reads the limit in one statement,
    # and each finished node asks whether a parked node waits.
    build_flow(tenant=other_tenant, owner=outsider, nodes=["x"])
    WorkerSlots.objects.create(name="w1", concurrency=8, seen_at=timezone.now())
    slots.forget_state()
    statements = _run_chain(engine, tenant, admin_user)
    locks = [s for s in statements if "pg_advisory_xact_lock" in s]
    assert len(locks) == CHAIN
    per_node = 2 + 4  # claim, complete; its row, lock, slots and limits, admission check
    assert len(statements) == per_node * CHAIN + 10, "\n".join(s[:120] for s in statements)


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.parametrize("prepared", [True, False], ids=["prepared", "turned-off"])
def test_the_claim_and_the_recording_are_planned_once_per_connection(
    engine, tenant, admin_user, settings, prepared
):
    # Given prepared statements on (the default) or turned off for a pooler that cannot keep
    # them, a chain's claims and recordings are prepared on the connection, or nothing is.
    settings.TRIBUTARY_PREPARED_STATEMENTS = 1 if prepared else 0
    slots.forget_state()
    statements = _run_chain(engine, tenant, admin_user)
    on_connection = _prepared()
    claims = [s for s in on_connection if "FOR UPDATE" in s and "clock_timestamp()" in s]
    recordings = [s for s in on_connection if s.startswith("WITH r AS (UPDATE")]
    if prepared:
        assert len(claims) == 1 and len(recordings) >= 1, on_connection
        # ... and Django's query log still shows each execution with its statement.
        assert len([s for s in statements if s.startswith("WITH r AS (UPDATE")]) == CHAIN
    else:
        assert on_connection == []
