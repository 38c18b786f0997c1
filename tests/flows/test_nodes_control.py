"""noop, wait, dependency_check and the condition expression evaluator."""

import datetime as dt

import pytest
from django.utils import timezone

from flows.models import TaskFlow
from flows.nodes import base
from flows.nodes.base import NodeDeferred, NodeFailed, NodeResult
from flows.nodes.condition import ExpressionError, evaluate
from flows.services.validation import run_validation_context
from operations.services.lifecycle.execute import run_outcomes_lookup
from tests.factories import FlowFactory
from tests.factories.datasources import Recorder

UTC = dt.UTC


def execute(type_name, config, **kwargs):
    rec = Recorder(tenant_id=kwargs.pop("tenant_id", 1), config=config, **kwargs)
    # The run lookups a worker's engine gives every executor.
    rec.ctx.run_outcomes = run_outcomes_lookup(rec.ctx.tenant_id, rec.ctx.run_id)
    # and the owner's view: here the run acts for the owner of the flow it waits on, if any.
    if type_name == "dependency_check":
        target = TaskFlow.objects.filter(pk=config["flow"], tenant_id=rec.ctx.tenant_id).first()
        rec.ctx.validation = run_validation_context(
            tenant_id=rec.ctx.tenant_id,
            flow_id=rec.ctx.flow_id,
            owner_id=target.owner_id if target else None,
        )
    return base.get(type_name).execute(rec.ctx), rec


def test_noop_succeeds_with_no_output():
    result, _ = execute("noop", {})
    assert result == NodeResult()


# --- wait ----------------------------------------------------------------------------------


def test_wait_defers_then_succeeds_once_the_time_has_come():
    with pytest.raises(NodeDeferred) as first:
        execute("wait", {"seconds": 120})
    assert first.value.seconds == 120
    until = dt.datetime.fromisoformat(first.value.state["until"])
    assert dt.timedelta(seconds=118) < until - timezone.now() <= dt.timedelta(seconds=120)
    # Called again early (a spurious wake-up): deferred for the rest, same deadline.
    with pytest.raises(NodeDeferred) as again:
        execute("wait", {"seconds": 120}, state=first.value.state)
    assert again.value.state == first.value.state and 0 < again.value.seconds <= 120
    # Called after the deadline: done.
    past = {"until": (timezone.now() - dt.timedelta(seconds=1)).isoformat()}
    result, _ = execute("wait", {"seconds": 120}, state=past)
    assert result.output == {"waited_s": 120}


def test_wait_of_zero_seconds_succeeds_at_once():
    result, _ = execute("wait", {"seconds": 0})
    assert result.output == {"waited_s": 0}


# --- dependency_check ----------------------------------------------------------------------


@pytest.fixture
def upstream_flow(tenant, member_user):
    return FlowFactory(tenant=tenant, owner=member_user, name="upstream")


def make_run(flow, business_time, status, mode="scheduled"):
    from operations.models import FlowRun

    return FlowRun.objects.create(
        tenant=flow.tenant,
        flow=flow,
        mode=mode,
        business_time=business_time,
        status=status,
        error_policy="complete_running",
        concurrency_policy="skip",
    )


BT = dt.datetime(2024, 1, 15, 0, 0, tzinfo=UTC)  # bizdate 2024-01-14


@pytest.mark.django_db
def test_dependency_check_succeeds_when_the_same_business_date_succeeded(tenant, upstream_flow):
    make_run(upstream_flow, dt.datetime(2024, 1, 15, 3, 0, tzinfo=UTC), "succeeded")
    result, rec = execute(
        "dependency_check", {"flow": upstream_flow.pk}, tenant_id=tenant.pk, business_time=BT
    )
    # The older form {"flow"} means: some run of the same day succeeded.
    assert result.output == {
        "dependency_flow": upstream_flow.pk,
        "dependency_node": "",
        "dependency_bizdate": "2024-01-14",
        "dependency_window_start": "2024-01-15T00:00:00+00:00",
        "dependency_window_end": "2024-01-16T00:00:00+00:00",
    }
    assert f"flow {upstream_flow.pk} has succeeded: a run of the same day" in rec.log


@pytest.mark.django_db
def test_dependency_check_polls_until_its_timeout_then_fails(tenant, upstream_flow):
    # Another date succeeded (a dry run of it too), this date failed: none of them counts.
    make_run(upstream_flow, dt.datetime(2024, 1, 14, 0, 0, tzinfo=UTC), "succeeded")
    make_run(upstream_flow, dt.datetime(2024, 1, 15, 0, 0, tzinfo=UTC), "failed")
    make_run(upstream_flow, dt.datetime(2024, 1, 14, 0, 0, tzinfo=UTC), "succeeded", mode="dry")
    config = {"flow": upstream_flow.pk, "timeout_s": 600, "poll_s": 45}
    with pytest.raises(NodeDeferred) as first:
        execute("dependency_check", config, tenant_id=tenant.pk, business_time=BT)
    assert first.value.seconds == 45
    assert "first_check" in first.value.state
    started_long_ago = {"first_check": (timezone.now() - dt.timedelta(seconds=601)).isoformat()}
    with pytest.raises(
        NodeFailed,
        match=r"flow \d+ has not succeeded \(a run of the same day \(2024-01-15 00:00 \+0000 to "
        r"2024-01-16 00:00 \+0000\); no succeeded run in the window\) after 60[0-9]s",
    ):
        execute(
            "dependency_check",
            config,
            tenant_id=tenant.pk,
            business_time=BT,
            state=started_long_ago,
        )


@pytest.mark.django_db
def test_dependency_check_offset_looks_at_an_earlier_business_date(tenant, upstream_flow):
    make_run(
        upstream_flow, dt.datetime(2024, 1, 14, 0, 0, tzinfo=UTC), "succeeded"
    )  # bizdate 01-13
    result, _ = execute(
        "dependency_check",
        {"flow": upstream_flow.pk, "business_date_offset_days": -1},
        tenant_id=tenant.pk,
        business_time=BT,
    )
    assert result.output["dependency_bizdate"] == "2024-01-13"


@pytest.mark.django_db
def test_dependency_check_never_sees_runs_of_another_tenant(tenant, other_tenant, outsider):
    theirs = FlowFactory(tenant=other_tenant, owner=outsider)
    make_run(theirs, BT, "succeeded")
    # Another tenant's flow is one nobody here can see: the node fails at once, saying so.
    with pytest.raises(NodeFailed, match="cannot see flow"):
        execute("dependency_check", {"flow": theirs.pk}, tenant_id=tenant.pk, business_time=BT)


# --- condition expressions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "branch"),
    [
        ("5 > 3", "true"),
        ("'abc' == 'abc'", "true"),
        ("10 >= 2 and 1 < 2", "true"),
        ("0 < 1 < 2", "true"),
        ("2 + 2 * 3 == 8", "true"),
        ("'b' in ('a', 'b')", "true"),
        ("not (3 > 5) or false", "true"),
        ("'2024-01-14' < '2024-02-01'", "true"),
        ("3 > 5", "false"),
        ("'ok' != 'ok'", "false"),
        ("0", "false"),
        ("'false'", "false"),
        ("null", "false"),
        ("7 % 2 == 0", "false"),
    ],
)
def test_condition_expression_takes_the_right_branch(expression, branch):
    result, rec = execute("condition", {"mode": "expression", "expression": expression})
    assert result.branch == branch
    assert result.output == {"result": branch == "true"}
    assert expression in rec.log


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('id')",
        "open('/etc/passwd').read()",
        "(1).__class__",
        "x > 1",
        "[c for c in 'abc']",
        "lambda: 1",
        "2 ** 10000",
        "'a' * 100000000",
        "'%s' % 'x'",
        "{'a': 1}",
        "f'{1}'",
        "1 if True else 2",
        "b'x' == b'x'",
        "1 / 0",
        "'a' < 1",
        "not " * 100 + "1",
        "1 + " * 1000 + "1",
    ],
)
def test_condition_expression_refuses_anything_but_safe_constructs(expression):
    with pytest.raises(ExpressionError):
        evaluate(expression)
    with pytest.raises(NodeFailed, match="^expression: "):
        execute("condition", {"mode": "expression", "expression": expression})


@pytest.mark.django_db
def test_dependency_check_on_its_own_flow_ignores_its_own_run(tenant, upstream_flow):
    own = make_run(upstream_flow, BT, "succeeded")
    with pytest.raises(NodeDeferred):
        execute(
            "dependency_check",
            {"flow": upstream_flow.pk},
            tenant_id=tenant.pk,
            business_time=BT,
            run_id=own.pk,
        )
