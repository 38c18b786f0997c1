"""The orchestrator without workers: node tasks run synchronously, in the order they were sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from operations.choices import EventKind
from operations.models import FlowRun, NodeRun, RunEvent
from operations.services import (
    lifecycle,
    run_pause,
    run_resume,
    run_start,
    run_stop,
    watchdog_sweep,
)
from tests.factories import build_flow, chain_flow
from tests.operations.helpers import latest, script

pytestmark = pytest.mark.django_db


def statuses(run) -> dict:
    return {name: nr.status for name, nr in latest(run).items()}


def queued_id(run, name) -> int:
    return NodeRun.objects.get(run=run, node_name=name, is_latest=True, status="queued").pk


def test_try_run_of_a_chain_runs_every_node_in_order(tenant, admin_user, engine):
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=3)

    run = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    assert run.status == "queued" and run.version is None and run.snapshot["nodes"]
    assert statuses(run) == {"n1": "queued", "n2": "pending", "n3": "pending"}
    engine.drain()

    run.refresh_from_db()
    assert run.status == "succeeded" and run.started_at and run.finished_at
    assert run.nodes_open == 0
    nodes = latest(run)
    assert all(nr.status == "succeeded" and nr.attempt == 1 for nr in nodes.values())
    # Each node started only after its upstream finished.
    assert nodes["n1"].finished_at <= nodes["n2"].started_at <= nodes["n2"].finished_at
    assert nodes["n2"].finished_at <= nodes["n3"].started_at
    assert "attempt 1 started" in nodes["n3"].log and "succeeded in" in nodes["n3"].log
    kinds = list(RunEvent.objects.filter(run=run).values_list("kind", flat=True))
    assert kinds == [EventKind.RUN_CREATED, EventKind.RUN_STARTED, EventKind.RUN_FINISHED]
    assert [nid for nid, _ in engine.sent] == [nr.pk for nr in nodes.values()]


def test_a_duplicate_delivery_does_nothing(tenant, admin_user, engine):
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=2)
    run = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    first = queued_id(run, "n1")

    engine.call(lifecycle.node_execute, first)
    engine.call(lifecycle.node_execute, first)  # the broker delivers it again

    n1 = NodeRun.objects.get(pk=first)
    assert n1.status == "succeeded" and n1.log.count("started") == 1
    assert NodeRun.objects.filter(run=run, node_name="n1").count() == 1
    assert [nid for nid, _ in engine.sent].count(queued_id(run, "n2")) == 1


def test_a_late_delivery_for_a_stopped_run_does_nothing(tenant, admin_user, engine):
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=2)
    run = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    n1 = queued_id(run, "n1")

    engine.call(run_stop, run=run, user=admin_user)
    engine.drain()

    run.refresh_from_db()
    assert run.status == "stopped" and run.finished_at
    assert statuses(run) == {"n1": "stopped", "n2": "stopped"}
    assert NodeRun.objects.get(pk=n1).started_at is None


def test_variables_render_against_business_time_flow_values_and_upstream_outputs(
    tenant, admin_user, engine
):
    flow, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        variables=[
            {"name": "region", "type": "constant", "value": "eu"},
            {"name": "month", "type": "time", "format": "yyyyMM", "offset": "-1M"},
        ],
        nodes=[
            script("extract", output={"rows": 42}),
            script("load", text="${bizdate} ${cyctime} ${region} ${month} ${rows} ${extract.rows}"),
        ],
        edges=[("extract", "load")],
    )
    at = datetime(2024, 1, 15, 0, 0, tzinfo=UTC)

    run = engine.call(run_start, flow=flow, mode="point_in_time", user=admin_user, business_time=at)
    engine.drain()

    load = latest(run)["load"]
    assert load.status == "succeeded"
    assert load.rendered_config["text"] == "2024-01-14 2024-01-15 00:00:00 eu 202312 42 42"
    assert latest(run)["extract"].output == {"rows": 42}


def test_an_undefined_variable_fails_the_node_with_its_name(tenant, admin_user, engine):
    flow, _ = build_flow(
        tenant=tenant, owner=admin_user, nodes=[script("a", text="${nope}", retries=3)]
    )
    run = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    engine.drain()

    run.refresh_from_db()
    a = latest(run)["a"]
    assert run.status == "failed" and a.status == "failed" and a.attempt == 1  # no retry
    assert "${nope}" in a.error and "${nope}" in a.log


def test_dry_run_records_every_node_succeeded_without_executing(tenant, admin_user, engine):
    flow, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[script("a", fail=True), script("b", text="${from_a}")],
        edges=[("a", "b")],
    )
    run = engine.call(run_start, flow=flow, mode="dry", user=admin_user)
    engine.drain()

    run.refresh_from_db()
    assert run.status == "succeeded"
    nodes = latest(run)
    assert {nr.status for nr in nodes.values()} == {"succeeded"}
    assert all("dry run" in nr.log for nr in nodes.values())


def test_retries_are_new_attempts_sent_after_the_retry_interval(tenant, admin_user, engine):
    flow, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[script("flaky", fail_attempts=2, retries=2, retry_interval=5)],
    )
    run = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    engine.drain()

    run.refresh_from_db()
    attempts = list(NodeRun.objects.filter(run=run).order_by("attempt"))
    assert [(a.attempt, a.status, a.is_latest) for a in attempts] == [
        (1, "failed", False),
        (2, "failed", False),
        (3, "succeeded", True),
    ]
    assert run.status == "succeeded"
    assert [countdown for _, countdown in engine.sent] == [None, 5, 5]
    assert "scripted failure" in attempts[0].error


def test_a_node_failing_after_its_retries_fails_the_run(tenant, admin_user, engine):
    flow, _ = build_flow(
        tenant=tenant, owner=admin_user, nodes=[script("bad", fail=True, retries=1)]
    )
    run = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    engine.drain()

    run.refresh_from_db()
    assert run.status == "failed" and "bad" in run.error
    assert NodeRun.objects.filter(run=run).count() == 2


def test_a_long_retry_interval_parks_the_attempt_until_the_sweep_sends_it(
    tenant, admin_user, engine
):
    flow, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[script("slow_retry", fail_attempts=1, retries=1, retry_interval=3600)],
    )
    run = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    engine.drain()

    second = NodeRun.objects.get(run=run, attempt=2)
    assert second.status == "queued" and second.queued_at is None and second.next_attempt_at
    assert engine.call(watchdog_sweep)["sent"] == 0  # not due yet
    NodeRun.objects.filter(pk=second.pk).update(
        next_attempt_at=second.next_attempt_at - timedelta(hours=2)
    )
    assert engine.call(watchdog_sweep)["sent"] == 1
    engine.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_a_deferred_node_is_sent_again_as_the_same_attempt_with_its_state(
    tenant, admin_user, engine
):
    flow, _ = build_flow(tenant=tenant, owner=admin_user, nodes=[script("poll", defer=7)])
    run = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    engine.step()

    poll = latest(run)["poll"]
    # It has started and waits without a worker: deferred, which users read as running.
    assert poll.status == "deferred" and poll.defer_state == {"deferred": True, "n": 1}
    assert engine.sent[-1] == (poll.pk, 7.0)
    engine.drain()
    poll.refresh_from_db()
    assert poll.status == "succeeded" and poll.attempt == 1 and poll.defer_count == 1


def test_an_executor_bug_fails_the_node_with_the_reason(tenant, admin_user, engine):
    flow, _ = build_flow(tenant=tenant, owner=admin_user, nodes=[script("buggy", crash=True)])
    run = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    engine.drain()
    assert "internal error: RuntimeError: executor bug" in latest(run)["buggy"].error


def test_a_condition_takes_one_branch_and_skips_the_other(tenant, admin_user, engine):
    flow, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[script("check", branch="true"), "yes", "no", "after_no", "join"],
        edges=[
            ("check", "yes", "true"),
            ("check", "no", "false"),
            ("no", "after_no"),
            ("yes", "join"),
            ("after_no", "join"),
        ],
    )
    run = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    engine.drain()

    run.refresh_from_db()
    assert statuses(run) == {
        "check": "succeeded",
        "yes": "succeeded",
        "no": "skipped",
        "after_no": "skipped",
        "join": "succeeded",
    }
    assert run.status == "succeeded"


# --------------------------------------------------------------------------- error policies

POLICY_GRAPH = dict(
    nodes=[script("fail", fail=True), "slow", "fail_down", "slow_down", "other", "other_down"],
    edges=[("fail", "fail_down"), ("slow", "slow_down"), ("other", "other_down")],
)


def _fail_while_slow_runs(engine, run):
    """`slow` is running (claimed by a worker), `other` is queued, then `fail` fails."""
    slow = lifecycle.node_claim(queued_id(run, "slow"))
    assert slow is not None
    engine.call(lifecycle.node_execute, queued_id(run, "fail"))
    return slow


def test_complete_running_lets_running_nodes_finish_and_starts_nothing_more(
    tenant, admin_user, engine
):
    flow, _ = build_flow(
        tenant=tenant, owner=admin_user, error_policy="complete_running", **POLICY_GRAPH
    )
    run = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    slow = _fail_while_slow_runs(engine, run)

    assert statuses(run) == {
        "fail": "failed",
        "slow": "running",  # finishes
        "fail_down": "upstream_failed",
        "slow_down": "stopped",
        "other": "stopped",  # queued but not started: does not start
        "other_down": "stopped",
    }
    run.refresh_from_db()
    assert run.status == "running"  # failed once nothing runs
    engine.call(lifecycle.node_finish, slow, lifecycle.Success())
    engine.drain()
    run.refresh_from_db()
    assert latest(run)["slow"].status == "succeeded" and run.status == "failed"


def test_stop_all_stops_every_running_node_at_once(tenant, admin_user, engine):
    flow, _ = build_flow(tenant=tenant, owner=admin_user, error_policy="stop_all", **POLICY_GRAPH)
    run = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    slow = _fail_while_slow_runs(engine, run)

    assert statuses(run) == {
        "fail": "failed",
        "slow": "stopped",
        "fail_down": "upstream_failed",
        "slow_down": "stopped",
        "other": "stopped",
        "other_down": "stopped",
    }
    run.refresh_from_db()
    assert run.status == "failed" and run.finished_at
    # The stopped node's late result is discarded, not recorded.
    engine.call(lifecycle.node_finish, slow, lifecycle.Success())
    slow_nr = latest(run)["slow"]
    assert slow_nr.status == "stopped" and "result discarded" in slow_nr.log


def test_complete_unrelated_fails_only_the_failed_nodes_descendants(tenant, admin_user, engine):
    flow, _ = build_flow(
        tenant=tenant, owner=admin_user, error_policy="complete_unrelated", **POLICY_GRAPH
    )
    run = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    slow = _fail_while_slow_runs(engine, run)
    assert statuses(run)["fail_down"] == "upstream_failed"

    engine.call(lifecycle.node_finish, slow, lifecycle.Success())
    engine.drain()
    run.refresh_from_db()
    assert statuses(run) == {
        "fail": "failed",
        "slow": "succeeded",
        "fail_down": "upstream_failed",
        "slow_down": "succeeded",
        "other": "succeeded",
        "other_down": "succeeded",
    }
    assert run.status == "failed"


# --------------------------------------------------------------------------- run actions


def test_pause_holds_new_nodes_and_resume_continues(tenant, admin_user, engine):
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=2)
    run = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    n1 = queued_id(run, "n1")

    engine.call(run_pause, run=run, user=admin_user)
    engine.drain()  # the queued message arrives: it must not start
    run.refresh_from_db()
    assert run.status == "paused" and statuses(run) == {"n1": "pending", "n2": "pending"}
    assert NodeRun.objects.get(pk=n1).started_at is None

    engine.call(run_resume, run=run, user=admin_user)
    engine.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    kinds = set(RunEvent.objects.filter(run=run).values_list("kind", flat=True))
    assert {EventKind.RUN_PAUSED, EventKind.RUN_RESUMED} <= kinds


def test_a_node_finishing_while_paused_queues_nothing_until_resume(tenant, admin_user, engine):
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=2)
    run = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    n1 = lifecycle.node_claim(queued_id(run, "n1"))

    engine.call(run_pause, run=run, user=admin_user)
    engine.call(lifecycle.node_finish, n1, lifecycle.Success())
    assert statuses(run) == {"n1": "succeeded", "n2": "pending"}
    engine.call(run_resume, run=run, user=admin_user)
    engine.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_stopping_a_finished_run_is_a_conflict(tenant, admin_user, engine):
    from accounts.errors import ConflictError

    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=1)
    run = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    engine.drain()
    with pytest.raises(ConflictError):
        run_stop(run=run, user=admin_user)
    with pytest.raises(ConflictError):
        run_resume(run=run, user=admin_user)


# --------------------------------------------------------------------------- lost workers


def test_a_node_whose_worker_stopped_beating_is_run_again(tenant, admin_user, engine):
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=2)
    run = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    claim = lifecycle.node_claim(queued_id(run, "n1"))
    NodeRun.objects.filter(pk=claim.row["id"]).update(
        heartbeat_at=datetime.now(UTC) - timedelta(minutes=5)
    )

    report = engine.call(watchdog_sweep, heartbeat_timeout=60)
    assert report["lost"] == 1
    # The lost worker's late result does not count: attempt 1 is closed.
    engine.call(lifecycle.node_finish, claim, lifecycle.Success())
    engine.drain()

    run.refresh_from_db()
    attempts = list(NodeRun.objects.filter(run=run, node_name="n1").order_by("attempt"))
    assert [(a.attempt, a.status) for a in attempts] == [(1, "failed"), (2, "succeeded")]
    assert attempts[0].error.startswith("worker lost")
    assert run.status == "succeeded"


def test_a_node_queued_for_too_long_is_sent_again(tenant, admin_user, engine):
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=1)
    run = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    engine.nodes.clear()  # the broker lost the message
    NodeRun.objects.filter(run=run).update(queued_at=datetime.now(UTC) - timedelta(hours=1))

    assert engine.call(watchdog_sweep, resend_after=60)["resent"] == 1
    engine.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"


# --------------------------------------------------------------------------- input checks


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"mode": "sometimes"}, "mode"),
        ({"mode": "point_in_time"}, "business_time"),
        ({"mode": "try", "parallelism": 0}, "parallelism"),
        ({"mode": "try", "parallelism": 33}, "parallelism"),
        ({"mode": "try", "order": "random"}, "order"),
        ({"mode": "time_range", "end": datetime(2024, 1, 1, tzinfo=UTC)}, "start"),
        (
            {
                "mode": "time_range",
                "start": datetime(2024, 1, 2, tzinfo=UTC),
                "end": datetime(2024, 1, 1, tzinfo=UTC),
            },
            "end",
        ),
        (
            {
                "mode": "time_range",
                "start": datetime(2024, 1, 1, tzinfo=UTC),
                "end": datetime(2024, 1, 2, tzinfo=UTC),
            },
            "start",  # the flow has no schedule
        ),
    ],
)
def test_bad_input_names_the_field(tenant, admin_user, kwargs, field):
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=1)
    with pytest.raises(ValidationError) as exc:
        run_start(flow=flow, user=admin_user, **kwargs)
    assert field in exc.value.message_dict
    assert not FlowRun.objects.exists()


def test_a_flow_without_nodes_cannot_run(tenant, admin_user):
    flow, _ = build_flow(tenant=tenant, owner=admin_user, nodes=[])
    with pytest.raises(ValidationError) as exc:
        run_start(flow=flow, mode="try", user=admin_user)
    assert "flow" in exc.value.message_dict


# --------------------------------------------------------------------------- logs


def test_a_long_log_keeps_its_beginning_and_end_and_says_it_was_truncated(
    tenant, admin_user, engine
):
    from operations.models import LOG_LIMIT, LOG_TRUNCATED

    lines = [f"line {i:05d} " + "x" * 60 for i in range(2000)]  # ~140 KB
    flow, _ = build_flow(tenant=tenant, owner=admin_user, nodes=[script("chatty", log_lines=lines)])
    run = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    engine.drain()

    log = latest(run)["chatty"].log
    assert len(log) <= LOG_LIMIT
    assert LOG_TRUNCATED in log
    head, _, tail = log.partition(LOG_TRUNCATED)
    assert "line 00000" in head and "attempt 1 started" in head
    assert "line 01999" in tail and "succeeded in" in tail
    assert "line 01000" not in log


def test_bounded_appends_keep_one_marker():
    from operations.services.logs import bounded

    text = ""
    for i in range(500):
        text = bounded(text, f"entry {i:04d} " + "y" * 100 + "\n", limit=4000)
    assert len(text) <= 4000 and text.count("[log truncated]") == 1
    assert text.startswith("entry 0000") and text.rstrip().endswith("y")
    assert "entry 0499" in text


# --------------------------------------------------------------------------- hand-off to self


def test_a_worker_goes_on_with_a_ready_node_while_its_time_limit_covers_it(
    tenant, admin_user, engine
):
    flow, _ = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[
            {"name": "a", "type": "noop", "timeout": 60},
            {"name": "b", "type": "noop", "timeout": 60},
            {"name": "c", "type": "noop", "timeout": 60},
            {"name": "long", "type": "noop", "timeout": 3600},
        ],
        edges=[("a", "b"), ("b", "c"), ("c", "long")],
    )
    run = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    first = engine.nodes.popleft()

    # A task with 100 s left: b and c (60 s each) run in it; `long` (3600 s) does not fit.
    with CaptureQueriesContext(connection) as ctx:
        engine.call(lifecycle.node_execute, first, budget=100)

    assert statuses(run) == {"a": "succeeded", "b": "succeeded", "c": "succeeded", "long": "queued"}
    assert list(engine.nodes) == [queued_id(run, "long")]  # only `long` went to the broker
    workers = set(
        NodeRun.objects.filter(run=run).exclude(node_name="long").values_list("worker", flat=True)
    )
    assert workers == {lifecycle.worker_name()}
    if connection.vendor == "postgresql":
        # b and c were claimed by the statement that recorded their upstream's success:
        # only a's claim is a statement of its own.
        claims = [q for q in ctx.captured_queries if "FOR UPDATE) UPDATE" in q["sql"]]
        assert len(claims) == 1
    engine.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_without_a_budget_every_ready_node_goes_to_the_broker(tenant, admin_user, engine):
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=3)
    run = engine.call(run_start, flow=flow, mode="try", user=admin_user)
    engine.call(lifecycle.node_execute, engine.nodes.popleft())
    assert statuses(run) == {"n1": "succeeded", "n2": "queued", "n3": "pending"}
    assert list(engine.nodes) == [queued_id(run, "n2")]


def test_node_scoped_try_run_runs_only_its_nodes_and_skips_dependency_checks(
    tenant, admin_user, engine
):
    # Given a -> dep (a dependency check that would wait forever) -> b -> c, and d
    other, _ = build_flow(tenant=tenant, owner=admin_user, nodes=["x"], name="other")
    flow, nodes = build_flow(
        tenant=tenant,
        owner=admin_user,
        nodes=[
            script("a", fail=True),
            {"name": "dep", "type": "dependency_check", "config": {"flow": other.pk}},
            "b",
            "c",
            script("d", fail=True),
        ],
        edges=[("a", "dep"), ("dep", "b"), ("b", "c")],
    )
    # When a try run starts from dep
    run = engine.call(run_start, flow=flow, mode="try", user=admin_user, from_node=nodes["dep"].pk)
    engine.drain()
    run.refresh_from_db()
    # Then dep passes without checking, its downstream runs, the rest is not_run (no failure)
    assert run.status == "succeeded" and run.node_scope == sorted(
        [nodes["dep"].pk, nodes["b"].pk, nodes["c"].pk]
    )
    assert statuses(run) == {
        "a": "not_run",
        "dep": "succeeded",
        "b": "succeeded",
        "c": "succeeded",
        "d": "not_run",
    }
    assert "dependency check skipped" in latest(run)["dep"].log
    # One node only.
    run = engine.call(run_start, flow=flow, mode="try", user=admin_user, nodes=[nodes["c"].pk])
    engine.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert {n for n, s in statuses(run).items() if s != "not_run"} == {"c"}


def test_node_scope_is_refused_outside_try_and_for_unknown_nodes(tenant, admin_user, engine):
    flow, nodes = chain_flow(tenant=tenant, owner=admin_user, length=2)
    with pytest.raises(ValidationError) as err:
        run_start(flow=flow, mode="dry", user=admin_user, nodes=[nodes["n1"].pk])
    assert "nodes" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        run_start(flow=flow, mode="try", user=admin_user, from_node=999_999)
    assert "999999" in err.value.message_dict["from_node"][0]
    with pytest.raises(ValidationError) as err:
        run_start(flow=flow, mode="try", user=admin_user, nodes=[], from_node=nodes["n1"].pk)
    assert "from_node" in err.value.message_dict


def test_dry_run_takes_a_business_time(tenant, admin_user, engine):
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=1)
    at = datetime(2024, 1, 15, 9, tzinfo=UTC)
    run = engine.call(run_start, flow=flow, mode="dry", user=admin_user, business_time=at)
    engine.drain()
    run.refresh_from_db()
    assert run.business_time == at and run.status == "succeeded"
