"""dependency_check: windows in the target's cycle, latest / every fire time, node targets,
the previous cycle of its own flow, and the older configuration form."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from flows.models import TaskFlow
from flows.nodes import base
from flows.nodes.base import NodeDeferred, NodeFailed
from flows.nodes.dependency_check import cycle_window, describe_window, judge
from flows.services._common import TenantLookups
from flows.services.validation import run_validation_context
from operations.models import FlowRun, NodeRun
from operations.services.lifecycle.execute import run_outcomes_lookup
from tests.factories import FlowFactory
from tests.factories.datasources import Recorder
from tests.factories.scheduling import ScheduleFactory

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
DEP = base.get("dependency_check")


def at(*args, tz=UTC):
    return dt.datetime(*args, tzinfo=tz)


# --------------------------------------------------------------------------- windows


@pytest.mark.parametrize(
    ("cycle", "offset", "start", "end"),
    [
        ("hour", 0, (2024, 1, 15, 10), (2024, 1, 15, 11)),
        ("hour", -1, (2024, 1, 15, 9), (2024, 1, 15, 10)),
        ("hour", -11, (2024, 1, 14, 23), (2024, 1, 15, 0)),
        ("day", 0, (2024, 1, 15), (2024, 1, 16)),
        ("day", -1, (2024, 1, 14), (2024, 1, 15)),
        # 2024-01-15 is a Monday: "the same week" runs Monday to Sunday.
        ("week", 0, (2024, 1, 15), (2024, 1, 22)),
        ("week", -1, (2024, 1, 8), (2024, 1, 15)),
        ("month", 0, (2024, 1, 1), (2024, 2, 1)),
        ("month", -1, (2023, 12, 1), (2024, 1, 1)),
        ("month", 1, (2024, 2, 1), (2024, 3, 1)),
    ],
)
def test_the_window_is_counted_in_the_targets_cycle(cycle, offset, start, end):
    assert cycle_window(at(2024, 1, 15, 10, 42), cycle, offset) == (at(*start), at(*end))


def test_week_windows_start_on_monday_even_from_a_sunday():
    assert cycle_window(at(2024, 1, 21, 23, 0), "week", -1) == (at(2024, 1, 8), at(2024, 1, 15))


def test_hour_windows_are_one_real_hour_across_a_clock_change():
    # Berlin, 2024-03-31: 02:00 does not exist. "The previous hour" of 03:30 CEST is 01:00 CET.
    start, end = cycle_window(at(2024, 3, 31, 3, 30, tz=BERLIN), "hour", -1)
    assert start.isoformat() == "2024-03-31T01:00:00+01:00"
    assert end.isoformat() == "2024-03-31T03:00:00+02:00"
    day_start, day_end = cycle_window(at(2024, 3, 31, 3, 30, tz=BERLIN), "day", 0)
    assert day_end.astimezone(UTC) - day_start.astimezone(UTC) == dt.timedelta(hours=23)


@pytest.mark.parametrize(
    ("cycle", "offset", "words"),
    [
        ("hour", -1, "the previous hour"),
        ("day", 0, "the same day"),
        ("week", -1, "last week"),
        ("month", -1, "last month"),
        ("day", -3, "3 days earlier"),
        ("hour", 1, "the next hour"),
    ],
)
def test_windows_in_words(cycle, offset, words):
    assert describe_window(cycle, offset) == words


# --------------------------------------------------------------------------- the verdict

T0, T1, T2 = at(2024, 1, 15, 9, 0), at(2024, 1, 15, 9, 20), at(2024, 1, 15, 9, 40)


@pytest.mark.parametrize(
    ("require", "fire_times", "outcomes", "ok"),
    [
        # A schedule: its fire times are what must have succeeded.
        ("latest", [T0, T1, T2], {T2: True}, True),
        ("latest", [T0, T1, T2], {T0: True, T1: True, T2: False}, False),
        ("latest", [T0, T1, T2], {T0: True, T1: True}, False),  # the latest has not run yet
        ("all", [T0, T1, T2], {T0: True, T1: True, T2: True}, True),
        ("all", [T0, T1, T2], {T0: True, T2: True}, False),
        ("all", [T0, T1, T2], {T0: True, T1: False, T2: True}, False),
        # A run at another business time does not stand in for a fire time.
        ("latest", [T2], {T1: True}, False),
        # No schedule: the runs in the window are what there is.
        ("latest", None, {T0: False, T1: True}, True),
        ("latest", None, {T0: True, T1: False}, False),
        ("all", None, {T0: True, T1: True}, True),
        ("all", None, {T0: True, T1: False}, False),
        ("all", None, {}, False),
        ("latest", [], {}, False),
        # The older form: any run in the window.
        ("any", [T0, T1], {T2: True}, True),
        ("any", None, {T0: False}, False),
    ],
)
def test_latest_every_or_any_fire_time(require, fire_times, outcomes, ok):
    assert judge(require, fire_times, outcomes)[0] is ok


# --------------------------------------------------------------------------- configuration


def test_the_older_form_becomes_cycle_day_offset_require_any():
    assert DEP.normalize({"flow": 3, "business_date_offset_days": -1, "poll_s": 5}) == {
        "flow": 3,
        "poll_s": 5,
        "cycle": "day",
        "offset": -1,
        "require": "any",
    }
    assert DEP.normalize({"flow": 3}) == {"flow": 3, "cycle": "day", "offset": 0, "require": "any"}
    new = {"flow": 3, "cycle": "hour", "offset": -1, "require": "latest"}
    assert DEP.normalize(new) == new


@pytest.fixture
def vctx(tenant, member_user):
    def make(flow_id=None):
        lookups = TenantLookups(tenant.pk, owner_id=member_user.pk)
        return base.ValidationContext(
            tenant_id=tenant.pk,
            flow_id=flow_id,
            datasource=lookups.datasource,
            flow=lookups.flow,
            node_names=lookups.node_names,
        )

    return make


@pytest.fixture
def upstream(tenant, member_user):
    from flows.models import TaskNode

    flow = FlowFactory(tenant=tenant, owner=member_user, name="upstream")
    for name in ("extract", "load"):
        TaskNode.objects.create(tenant=tenant, flow=flow, name=name, type="noop")
    return flow


@pytest.mark.django_db
def test_validation_names_the_field_in_words(vctx, upstream):
    ok = {"flow": upstream.pk, "node": "load", "cycle": "hour", "offset": -1, "require": "all"}
    assert DEP.validate(ok, vctx()) == []
    assert DEP.validate({**ok, "node": "lod"}, vctx()) == [
        ("node", f"Flow {upstream.pk} has no node named 'lod'; its nodes are: extract, load.")
    ]
    assert DEP.validate({**ok, "cycle": "year"}, vctx()) == [
        ("cycle", "Must be one of: hour, day, week, month.")
    ]
    assert DEP.validate({**ok, "require": "most"}, vctx())[0][0] == "require"
    # Its own flow: only an earlier cycle (-1: the previous hour here).
    assert DEP.validate({**ok, "offset": 0}, vctx(flow_id=upstream.pk))[0][0] == "offset"
    assert DEP.validate(ok, vctx(flow_id=upstream.pk)) == []
    # The older field beside the new ones is ambiguous.
    assert DEP.validate({**ok, "business_date_offset_days": -1}, vctx())[0][0] == (
        "business_date_offset_days"
    )


# --------------------------------------------------------------------------- execution


def make_run(flow, business_time, status, *, mode="scheduled", nodes=None):
    run = FlowRun.objects.create(
        tenant=flow.tenant,
        flow=flow,
        mode=mode,
        business_time=business_time,
        status=status,
        error_policy="complete_running",
        concurrency_policy="skip",
    )
    for i, (name, node_status) in enumerate((nodes or {}).items(), start=1):
        NodeRun.objects.create(
            tenant=flow.tenant,
            run=run,
            node_id=i,
            node_name=name,
            node_type="noop",
            status=node_status,
        )
    return run


def execute(config, *, tenant, business_time, run_id=987_654_321, state=None, owner_id=None):
    rec = Recorder(
        tenant_id=tenant.pk, config=config, business_time=business_time, run_id=run_id, state=state
    )
    rec.ctx.run_outcomes = run_outcomes_lookup(tenant.pk, run_id)
    if owner_id is None:  # the run acts for an owner who sees the target: its own owner
        owner_id = TaskFlow.objects.get(pk=config["flow"]).owner_id
    rec.ctx.validation = run_validation_context(
        tenant_id=tenant.pk, flow_id=rec.ctx.flow_id, owner_id=owner_id
    )
    return DEP.execute(rec.ctx), rec


@pytest.mark.django_db
def test_a_node_of_another_flow_in_the_previous_hour(tenant, upstream):
    # Given: the upstream flow fires every 20 minutes; at 09:40 its run failed as a whole,
    # but its "load" node succeeded (a later node failed).
    ScheduleFactory(flow=upstream, cron="*/20 * * * *")
    make_run(upstream, at(2024, 1, 15, 9, 0), "failed", nodes={"load": "failed"})
    make_run(upstream, at(2024, 1, 15, 9, 40), "failed", nodes={"load": "succeeded"})
    config = {"flow": upstream.pk, "node": "load", "cycle": "hour", "offset": -1}

    # When a run at 10:05 checks the latest fire time of the previous hour, it is satisfied
    result, rec = execute(config, tenant=tenant, business_time=at(2024, 1, 15, 10, 5))
    assert result.output["dependency_node"] == "load"
    assert result.output["dependency_window_start"] == "2024-01-15T09:00:00+00:00"
    assert "node 'load' has succeeded: its latest fire time of the previous hour" in rec.log

    # but not the whole flow, nor every fire time of that hour (09:00 failed, 09:20 never ran)
    with pytest.raises(NodeDeferred, match="no succeeded run for fire time"):
        execute({**config, "node": ""}, tenant=tenant, business_time=at(2024, 1, 15, 10, 5))
    with pytest.raises(NodeDeferred) as every:
        execute({**config, "require": "all"}, tenant=tenant, business_time=at(2024, 1, 15, 10, 5))
    assert "2024-01-15 09:00 +0000, 2024-01-15 09:20 +0000" in str(every.value)


@pytest.mark.django_db
def test_every_fire_time_of_last_week(tenant, upstream):
    # A daily 06:00 flow: last week (Mon 8th to Sun 14th) is satisfied once all 7 succeeded.
    ScheduleFactory(flow=upstream, cron="0 6 * * *")
    for day in range(8, 15):
        make_run(upstream, at(2024, 1, day, 6), "succeeded" if day != 11 else "failed")
    config = {"flow": upstream.pk, "cycle": "week", "offset": -1, "require": "all"}
    with pytest.raises(NodeDeferred, match="2024-01-11 06:00"):
        execute(config, tenant=tenant, business_time=at(2024, 1, 17, 6))
    # A rerun of that day's fire time succeeds: every fire time has a succeeded run now.
    make_run(upstream, at(2024, 1, 11, 6), "succeeded")
    result, _ = execute(config, tenant=tenant, business_time=at(2024, 1, 17, 6))
    assert result.output["dependency_window_end"] == "2024-01-15T00:00:00+00:00"


@pytest.mark.django_db
def test_its_own_flows_previous_cycle_ignores_itself_and_counts_a_dry_run(tenant, upstream):
    ScheduleFactory(flow=upstream, cron="0 * * * *")
    own = make_run(upstream, at(2024, 1, 15, 10), "running")
    config = {"flow": upstream.pk, "cycle": "hour", "offset": -1, "require": "latest"}
    make_run(upstream, at(2024, 1, 15, 10), "succeeded", mode="dry")  # not the window
    with pytest.raises(NodeDeferred):
        execute(config, tenant=tenant, business_time=at(2024, 1, 15, 10), run_id=own.pk)
    # A dry run is a successful record that satisfies dependants (DMS).
    make_run(upstream, at(2024, 1, 15, 9), "succeeded", mode="dry")
    result, _ = execute(config, tenant=tenant, business_time=at(2024, 1, 15, 10), run_id=own.pk)
    assert result.output["dependency_flow"] == upstream.pk


@pytest.mark.django_db
def test_a_flow_without_schedule_is_judged_by_its_runs_in_the_window(tenant, upstream):
    make_run(upstream, at(2024, 1, 14, 8), "succeeded")
    make_run(upstream, at(2024, 1, 14, 20), "failed")
    config = {"flow": upstream.pk, "cycle": "day", "offset": -1, "require": "latest"}
    started = {"first_check": "2000-01-01T00:00:00+00:00"}
    with pytest.raises(NodeFailed, match=r"the latest run \(2024-01-14 20:00 \+0000\)"):
        execute(config, tenant=tenant, business_time=at(2024, 1, 15, 1), state=started)
    result, _ = execute(
        {**config, "require": "any"}, tenant=tenant, business_time=at(2024, 1, 15, 1)
    )
    assert result.output["dependency_bizdate"] == "2024-01-13"


@pytest.mark.django_db
def test_never_sees_runs_of_another_tenant(tenant, other_tenant, outsider):
    theirs = FlowFactory(tenant=other_tenant, owner=outsider)
    make_run(theirs, at(2024, 1, 15, 9), "succeeded", nodes={"load": "succeeded"})
    lookup = run_outcomes_lookup(tenant.pk, 1)
    assert lookup(theirs.pk, at(2024, 1, 15), at(2024, 1, 16), None) == {}
    assert lookup(theirs.pk, at(2024, 1, 15), at(2024, 1, 16), "load") == {}


@pytest.mark.django_db
def test_a_window_with_too_many_fire_times_fails_saying_so(tenant, upstream):
    # A month of an every-minute schedule is more fire times than a check walks.
    ScheduleFactory(flow=upstream, cron="* * * * *")
    config = {"flow": upstream.pk, "cycle": "month", "offset": -1, "require": "all"}
    with pytest.raises(
        NodeFailed, match="more than 20160 fire times fall in this range; shorten it"
    ):
        execute(config, tenant=tenant, business_time=at(2024, 2, 10))


@pytest.mark.django_db
def test_a_disabled_schedule_counts_as_none(tenant, upstream):
    ScheduleFactory(flow=upstream, cron="0 * * * *", enabled=False)
    make_run(upstream, at(2024, 1, 15, 9, 30), "succeeded")
    config = {"flow": upstream.pk, "cycle": "hour", "offset": -1, "require": "latest"}
    result, _ = execute(config, tenant=tenant, business_time=at(2024, 1, 15, 10, 5))
    assert result.output["dependency_flow"] == upstream.pk
