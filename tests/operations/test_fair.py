"""The pure rules of fair share (operations.engine.fair): default limits, blocking, admission."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operations.engine import fair
from operations.engine.core import HELD_BY_POOL, HELD_BY_TENANT_LIMIT
from operations.models import NodeRun


def test_a_tenant_alone_is_not_capped():
    assert fair.default_limit(slots=8, tenants_with_flows=1, share=0.2) is None


def test_no_worker_reported_means_no_default_cap():
    assert fair.default_limit(slots=0, tenants_with_flows=3, share=0.2) is None


def test_the_default_keeps_at_least_one_slot_free_and_a_share_of_a_larger_pool():
    assert fair.default_limit(slots=2, tenants_with_flows=2, share=0.2) == 1
    assert fair.default_limit(slots=4, tenants_with_flows=2, share=0.2) == 3
    assert fair.default_limit(slots=20, tenants_with_flows=2, share=0.2) == 16
    # One slot only: the tenant still gets it (a limit of zero would run nothing).
    assert fair.default_limit(slots=1, tenants_with_flows=2, share=0.2) == 1


@given(st.integers(2, 500), st.floats(0, 0.9))
def test_the_default_never_takes_every_slot(slots, share):
    limit = fair.default_limit(slots=slots, tenants_with_flows=2, share=share)
    assert 1 <= limit < slots


def test_own_limit_wins_over_the_default():
    assert fair.effective_limit(5, 3) == 5
    assert fair.effective_limit(None, 3) == 3
    assert fair.effective_limit(None, None) is None


def test_priority_classes():
    assert fair.rank("scheduled") < fair.rank("try") < fair.rank("time_range")
    assert fair.rank("point_in_time") == fair.rank("dry") == fair.MANUAL


def test_blocked_names_the_cause():
    assert fair.blocked(tenant_running=3, limit=3, pools=(), pool_running={}, caps={}) == (
        HELD_BY_TENANT_LIMIT,
        None,
    )
    assert fair.blocked(
        tenant_running=0, limit=None, pools=(7,), pool_running={7: 2}, caps={7: 2}
    ) == (HELD_BY_POOL, 7)
    assert (
        fair.blocked(tenant_running=2, limit=3, pools=(7,), pool_running={7: 1}, caps={7: 2})
        is None
    )


def _c(key, tenant, rank=fair.MANUAL, age=0, pools=()):
    return fair.Candidate(key=key, tenant=tenant, rank=rank, age=(age, key), pools=pools)


def test_scheduled_before_manual_before_backfill():
    chosen = fair.admit(
        [_c(1, "a", fair.BACKFILL, 0), _c(2, "a", fair.MANUAL, 1), _c(3, "a", fair.SCHEDULED, 2)],
        in_flight={},
        limits={},
        pool_in_flight={},
        caps={},
        free=2,
    )
    assert chosen == [3, 2]


def test_the_tenant_with_fewest_running_goes_next_and_oldest_first_within():
    chosen = fair.admit(
        [_c(1, "a", age=0), _c(2, "a", age=1), _c(3, "b", age=5), _c(4, "b", age=6)],
        in_flight={"a": 3, "b": 1},
        limits={},
        pool_in_flight={},
        caps={},
        free=3,
    )
    # b (1 running) twice, then a and b tie at 3: the tie goes to the older node (a's).
    assert chosen == [3, 4, 1]


def test_admission_respects_limits_and_pools():
    chosen = fair.admit(
        [_c(1, "a", pools=(9,)), _c(2, "a", pools=(9,)), _c(3, "b"), _c(4, "b")],
        in_flight={"b": 1},
        limits={"b": 2},
        pool_in_flight={9: 0},
        caps={9: 1},
        free=None,
    )
    assert sorted(chosen) == [1, 3]


candidates = st.lists(
    st.builds(
        _c,
        key=st.integers(0, 10_000),
        tenant=st.sampled_from("abc"),
        rank=st.sampled_from([fair.SCHEDULED, fair.MANUAL, fair.BACKFILL]),
        age=st.integers(0, 50),
        pools=st.sampled_from([(), (1,), (2,), (1, 2)]),
    ),
    max_size=40,
    unique_by=lambda c: c.key,
)


@settings(max_examples=200, deadline=None)
@given(
    candidates,
    st.dictionaries(st.sampled_from("abc"), st.integers(0, 6)),
    st.dictionaries(st.sampled_from("abc"), st.none() | st.integers(1, 6)),
    st.dictionaries(st.sampled_from([1, 2]), st.integers(1, 4)),
    st.none() | st.integers(0, 20),
)
def test_admission_never_exceeds_a_limit_a_pool_or_the_free_slots(
    cands, in_flight, limits, caps, free
):
    pool_in_flight = {1: 0, 2: 0}
    chosen = fair.admit(
        cands,
        in_flight=in_flight,
        limits=limits,
        pool_in_flight=pool_in_flight,
        caps=caps,
        free=free,
    )
    assert len(set(chosen)) == len(chosen)
    if free is not None:
        assert len(chosen) <= free
    by_key = {c.key: c for c in cands}
    for tenant, limit in limits.items():
        if limit is None:
            continue
        added = sum(1 for k in chosen if by_key[k].tenant == tenant)
        assert added == 0 or in_flight.get(tenant, 0) + added <= limit
    for pool, cap in caps.items():
        assert sum(1 for k in chosen if pool in by_key[k].pools) <= cap
    # Work-conserving: whatever is left could not start (limit, pool or no slot left).
    if free is None or len(chosen) < free:
        used = dict(in_flight)
        pools = dict(pool_in_flight)
        for k in chosen:
            used[by_key[k].tenant] = used.get(by_key[k].tenant, 0) + 1
            for p in by_key[k].pools:
                pools[p] += 1
        for c in cands:
            if c.key in chosen:
                continue
            assert fair.blocked(
                tenant_running=used.get(c.tenant, 0),
                limit=limits.get(c.tenant),
                pools=c.pools,
                pool_running=pools,
                caps=caps,
            )


# --------------------------------------------------------------------------- active runs


@pytest.mark.django_db(transaction=True)
def test_runs_over_the_active_run_limit_wait_and_join_best_first(
    engine, tenant, admin_user, superuser
):
    from accounts.services import tenant_set_limits
    from flows.services import flow_publish
    from operations.models import FlowRun
    from operations.services import run_create_scheduled, run_start, slots
    from tests.factories import ScheduleFactory, build_flow

    tenant_set_limits(tenant=tenant, actor=superuser, limits={"active_runs": 1})
    slots.forget_state()
    at = dt.datetime(2024, 1, 15, tzinfo=dt.UTC)
    first, _ = build_flow(tenant=tenant, owner=admin_user, nodes=["a"], name="first")
    backfill, _ = build_flow(
        tenant=tenant, owner=admin_user, nodes=["b"], name="backfill", concurrency_policy="ignore"
    )
    ScheduleFactory(flow=backfill, cron="0 0 * * *", start_date=dt.date(2024, 1, 1))
    manual, _ = build_flow(tenant=tenant, owner=admin_user, nodes=["m"], name="manual")
    scheduled, _ = build_flow(tenant=tenant, owner=admin_user, nodes=["s"], name="scheduled")
    flow_publish(flow=scheduled, user=admin_user)
    # Given one active run (the limit), later runs wait as queued runs, their nodes pending ...
    running = engine.call(run_start, flow=first, mode="try", user=admin_user)
    engine.call(run_start, flow=backfill, mode="time_range", user=admin_user, start=at, end=at)
    engine.call(run_start, flow=manual, mode="try", user=admin_user)
    engine.call(run_create_scheduled, flow_id=scheduled.pk, fire_time=at)
    waiting = FlowRun.objects.filter(tenant=tenant, activated_at__isnull=True)
    assert waiting.count() == 3
    assert set(waiting.values_list("status", flat=True)) == {"queued"}
    assert not NodeRun.objects.filter(run__in=waiting).exclude(status="pending").exists()
    # ... when runs finish, the waiting ones join one at a time, scheduled, manual, backfill.
    engine.drain()
    runs = list(FlowRun.objects.filter(tenant=tenant).order_by("activated_at"))
    assert [r.flow.name for r in runs] == ["first", "scheduled", "manual", "backfill"]
    assert all(r.status == "succeeded" for r in runs), [(r.pk, r.status) for r in runs]
    assert runs[0].pk == running.pk
    for before, after in zip(runs, runs[1:], strict=False):
        assert before.finished_at <= after.activated_at


@pytest.mark.django_db
@pytest.mark.parametrize("shared", [False, True], ids=["tenant-alone", "two-tenants"])
def test_a_cap_set_by_another_process_holds_at_the_next_claim(
    engine, tenant, admin_user, other_tenant, outsider, settings, shared
):
    from django.utils import timezone

    from flows.models import DataSource
    from operations.models import NodeRun
    from operations.services import run_start, slots
    from tests.factories import build_flow
    from tests.factories.datasources import DataSourceFactory

    # Given a worker that read the fair-share state when nothing was capped (and keeps it
    # for an hour), and a data source capped to 1 afterwards by another process ...
    settings.TRIBUTARY_FAIR_REFRESH_SECONDS = 3600
    ds = DataSourceFactory(tenant=tenant, name="warehouse")
    if shared:  # fair share active: a second tenant with flows and worker slots reported
        from operations.models import WorkerSlots

        build_flow(tenant=other_tenant, owner=outsider, nodes=["x"])
        build_flow(tenant=tenant, owner=admin_user, nodes=["y"], name="before")
        WorkerSlots.objects.create(name="w", concurrency=8, seen_at=timezone.now())
    slots.forget_state()
    assert slots.fair_state().active == shared
    assert not slots.fair_state().caps
    DataSource.objects.filter(pk=ds.pk).update(max_concurrency=1)

    def sql_run(name):
        flow, _ = build_flow(
            tenant=tenant,
            owner=admin_user,
            name=name,
            nodes=[
                {"name": "q", "type": "sql", "config": {"datasource": ds.pk, "sql": "SELECT 1"}}
            ],
        )
        run = engine.call(run_start, flow=flow, mode="try", user=admin_user)
        return NodeRun.objects.get(run=run, node_name="q")

    first, second = sql_run("first"), sql_run("second")
    # ... the first claim takes the pool's slot and records the pool ...
    got, _ = slots.claim_fair(first.pk, timezone.now(), "w1")
    assert got is not None
    first.refresh_from_db()
    assert (first.status, first.pools) == ("running", f",{ds.pk},")
    # ... and the second, on the same stale state, is parked naming the pool.
    got, _ = slots.claim_fair(second.pk, timezone.now(), "w2")
    assert got is None
    second.refresh_from_db()
    assert (second.status, second.waiting_reason) == ("waiting", "pool")
    assert second.waiting_detail == "pool warehouse full (1 running)"
    assert second.started_at is None and second.worker == ""


@pytest.mark.django_db
def test_a_limit_set_by_another_process_holds_in_the_next_admission_best_first(
    tenant, admin_user, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from accounts.models import Tenant
    from operations import dispatch
    from operations.services import run_start, slots
    from tests.factories import build_flow

    sent: list = []
    monkeypatch.setattr(dispatch, "publisher", lambda items: sent.extend(i[0] for i in items))
    # Given a worker that read the fair-share state before the tenant had a limit (and keeps
    # it for an hour) ...
    settings.TRIBUTARY_FAIR_REFRESH_SECONDS = 3600
    slots.forget_state()
    assert slots.fair_state().limit(tenant.pk) is None
    # ... two parked nodes, the older run's first, and a limit of one set since by another
    # process, with no node running ...
    nodes = []
    for name in ("older", "newer"):
        flow, _ = build_flow(tenant=tenant, owner=admin_user, nodes=["n"], name=name)
        run = run_start(flow=flow, mode="try", user=admin_user)
        nodes.append(NodeRun.objects.get(run=run))
    NodeRun.objects.filter(pk__in=[n.pk for n in nodes]).update(
        status="waiting", waiting_reason="tenant_limit", queued_at=None
    )
    Tenant.objects.filter(pk=tenant.pk).update(max_running_nodes=1)
    sent.clear()
    # ... the next admission sends one node, the best, not both.
    with django_capture_on_commit_callbacks(execute=True):
        assert slots.admit() == 1
    assert sent == [nodes[0].pk]
    assert list(
        NodeRun.objects.filter(pk__in=[n.pk for n in nodes]).order_by("pk").values_list("status")
    ) == [("queued",), ("waiting",)]
