"""Row locks of the engine, taken in one order so that two transactions never wait on each other.

The order: flows (by primary key), then runs (by primary key), then node runs (by primary
key). A transaction may skip a level, never go back up one: a service holding a run's lock
may lock its node runs, never a flow. Fair share's slot locks (PostgreSQL advisory locks:
the admission's, then a tenant's, then pools by id) come before any row lock; a tenant's
run lock (its active-run limit) comes after the flow locks and before any run row lock. The statements of the store that lock implicitly
(store.complete_in_one updates the run row before its node rows) follow the same order.
"""

from __future__ import annotations

from django.db import connection

from flows.models import TaskFlow
from operations.models import FlowRun, NodeRun

from .store import RUN_FIELDS


def lock_flow(flow_id: int) -> TaskFlow | None:
    """The flow row, locked for the rest of the transaction (runs of a flow line up on it)."""
    return TaskFlow.objects.select_for_update().filter(pk=flow_id).first()


def lock_flows_to_fire(flow_ids) -> dict[int, TaskFlow]:
    """Flows with their published versions (not their snapshots), locked in primary-key order."""
    return {
        flow.pk: flow
        for flow in TaskFlow.objects.select_for_update(of=("self",))
        .select_related("published_version")
        .defer("published_version__snapshot")
        .filter(pk__in=sorted(flow_ids))
        .order_by("pk")
    }


def lock_run(run_id: int) -> FlowRun | None:
    """The run row (the columns the engine reads), locked for the rest of the transaction."""
    return (
        FlowRun.objects.select_for_update(of=("self",))
        .select_related("version")
        .only(*RUN_FIELDS)
        .filter(pk=run_id)
        .first()
    )


def lock_node_run(node_run_id: int, *fields: str) -> NodeRun | None:
    """A node run row (only `fields` when given), locked for the rest of the transaction."""
    rows = NodeRun.objects.select_for_update()
    if fields:
        rows = rows.only(*fields)
    return rows.filter(pk=node_run_id).first()


# Namespaces of the slot locks (pg_advisory_xact_lock(namespace, key)).
_ADMISSION, _TENANT, _POOL, _TENANT_RUNS = 7301, 7302, 7303, 7304


def lock_tenant_runs(tenant_id: int) -> None:
    """Serialise the activations that count a tenant's active runs against its limit, until
    commit. Taken after the flow locks of the transaction, before any run row lock it takes
    afterwards (its own new run's rows are not visible to anyone else yet).

    PostgreSQL only: SQLite's transactions are IMMEDIATE, so writers are serial already.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_TENANT_RUNS, int(tenant_id)])


# Requests for an admission (migrations/0012_admission_wanted.py).
ADMISSION_WANTED = "operations_admission_wanted"


def admission_coalesces() -> bool:
    """Whether an admission may leave its work to the one under way (PostgreSQL)."""
    return connection.vendor == "postgresql"


def want_admission() -> None:
    """Say that a slot was freed and committed: the admission under way, if any, looks again
    when it ends (outside any transaction: the request is seen at once)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(%s)", [ADMISSION_WANTED])


def admissions_wanted() -> int:
    """How many admissions were requested so far (compare before and after one); 0 until
    the first request (a new sequence's last_value is already 1)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {ADMISSION_WANTED}"
        )
        return cursor.fetchone()[0]


def try_lock_admission() -> bool:
    """The admission's slot lock until commit, if nobody holds it (else False at once)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [_ADMISSION, 0])
        return bool(cursor.fetchone()[0])


def lock_slots(
    *, tenant_id: int | None = None, pools=(), admission: bool = False, relaxed: bool = False
) -> None:
    """Serialise the claims that count a tenant's and these pools' slots until commit.

    `relaxed`: the transaction's commit need not wait for the disk (a claim or a park,
    which the watchdog recovers after a crash), set in the same statement.

    PostgreSQL only: SQLite's transactions are IMMEDIATE, so writers are serial already.
    """
    if connection.vendor != "postgresql":
        return
    keys = [(_ADMISSION, 0)] if admission else []
    if tenant_id is not None:
        keys.append((_TENANT, int(tenant_id)))
    keys += [(_POOL, int(pool)) for pool in sorted(set(pools))]
    parts = ["pg_advisory_xact_lock(%s, %s)" for _ in keys]
    if relaxed:
        parts.insert(0, "set_config('synchronous_commit', 'off', true)")
    if not parts:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts), [value for key in keys for value in key])
