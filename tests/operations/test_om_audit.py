"""O&M actions in the tenant's audit trail (GET /api/v1/audit/): who, when, which run, why.

Every action goes through the API as an operator would send it, with a reason; the audit
trail is read back as a tenant admin.
"""

from __future__ import annotations

import datetime as dt
from datetime import datetime

import pytest
from django.utils import timezone

from operations.models import REASON_MAX_LENGTH, FlowRun, OperationRecord
from operations.services import run_start
from tests.factories import ScheduleFactory, build_flow
from tests.operations.helpers import latest, script

pytestmark = pytest.mark.django_db


@pytest.fixture
def flow(tenant, member_user):
    """a -> b -> c with b failing its first attempt, on a daily schedule (for backfills)."""
    flow, _ = build_flow(
        tenant=tenant,
        owner=member_user,
        nodes=["a", script("b", fail_attempts=1), "c"],
        edges=[("a", "b"), ("b", "c")],
        concurrency_policy="ignore",
        name="audited-flow",
    )
    ScheduleFactory(flow=flow, cron="0 0 * * *", timezone="UTC", start_date=dt.date(2024, 1, 1))
    return flow


def post(client, engine, url, body=None):
    return engine.call(client.post, url, body or {}, format="json")


def om_entries(api, admin_user, **query) -> list[dict]:
    res = api(admin_user).get("/api/v1/audit/", {"object_type": "run", "page_size": 200, **query})
    assert res.status_code == 200, res.content
    return res.json()["results"]


def test_every_om_action_is_in_the_tenant_audit_with_who_when_which_run_and_why(
    api, flow, member_user, admin_user, engine
):
    client = api(member_user)
    before = timezone.now()
    # Given a failed run (b fails its first attempt)
    failed = engine.call(run_start, flow=flow, mode="try", user=member_user)
    engine.drain()
    failed.refresh_from_db()
    assert failed.status == "failed"

    # When the operator reruns it, then marks b succeeded in the rerun and reruns from a
    rerun = post(client, engine, f"/api/v1/runs/{failed.pk}/rerun/", {"reason": "r-rerun"})
    assert rerun.status_code == 201, rerun.content
    new_id = rerun.json()["id"]
    engine.drain()
    new = FlowRun.objects.get(pk=new_id)
    assert new.status == "failed"
    b = latest(new)["b"]
    res = post(client, engine, f"/api/v1/node-runs/{b.pk}/mark-success/", {"reason": "r-mark"})
    assert res.status_code == 200, res.content
    engine.drain()
    a = latest(new)["a"]
    res = post(client, engine, f"/api/v1/node-runs/{a.pk}/rerun-from/", {"reason": "r-from"})
    assert res.status_code == 200, res.content
    engine.drain()
    # ... restores the first run
    res = post(client, engine, f"/api/v1/runs/{failed.pk}/restore/", {"reason": "r-restore"})
    assert res.status_code == 200, res.content
    engine.drain()
    # ... pauses, resumes and stops an active run (no reason for resume: it is optional)
    active = engine.call(run_start, flow=flow, mode="dry", user=member_user)
    for action, body in (("pause", {"reason": "r-pause"}), ("resume", {}), ("stop", None)):
        body = {"reason": "r-stop"} if action == "stop" else body
        res = post(client, engine, f"/api/v1/runs/{active.pk}/{action}/", body)
        assert res.status_code == 200, (action, res.content)
    engine.drain()
    # ... and backfills three days
    res = post(
        client,
        engine,
        f"/api/v1/flows/{flow.pk}/runs/",
        {
            "mode": "time_range",
            "start": "2024-01-10T00:00:00Z",
            "end": "2024-01-12T00:00:00Z",
            "reason": "r-backfill",
        },
    )
    assert res.status_code == 201, res.content
    backfilled = [r["id"] for r in res.json()["runs"]]
    assert len(backfilled) == 3

    # Then the admin reads each action in the audit trail, newest first
    entries = om_entries(api, admin_user)
    got = [(e["action"], e["object_id"], e["reason"]) for e in entries]
    assert got == [
        ("backfill", None, "r-backfill"),
        ("stop", active.pk, "r-stop"),
        ("resume", active.pk, ""),
        ("pause", active.pk, "r-pause"),
        ("restore", failed.pk, "r-restore"),
        ("rerun_from", new_id, "r-from"),
        ("mark_success", new_id, "r-mark"),
        ("rerun", failed.pk, "r-rerun"),
    ]
    for e in entries:
        assert e["object_type"] == "run" and e["flow"] == flow.pk
        assert (e["user"], e["username"]) == (member_user.pk, member_user.username)
        assert before <= datetime.fromisoformat(e["at"]) <= timezone.now()
    by_action = {e["action"]: e for e in entries}
    changes = {a: {c["field"]: c["new"] for c in e["changes"]} for a, e in by_action.items()}
    assert changes["rerun"] == {"new_run": new_id}
    assert changes["mark_success"]["node"] == "b"
    assert changes["rerun_from"]["node"] == "a" and changes["rerun_from"]["nodes"] == 3
    assert changes["backfill"]["runs"] == backfilled
    pause = by_action["pause"]["changes"][0]
    assert (pause["field"], pause["old"], pause["new"]) == ("status", "queued", "paused")
    assert by_action["backfill"]["object_repr"] == "3 run(s) of audited-flow"
    assert by_action["stop"]["object_repr"] == f"run {active.pk} of audited-flow"
    # ... each in words, with names
    who = member_user.username
    summaries = {a: e["summary"] for a, e in by_action.items()}
    assert summaries == {
        "stop": f"{who} stopped run #{active.pk} of “audited-flow”",
        "pause": f"{who} paused run #{active.pk} of “audited-flow”",
        "resume": f"{who} resumed run #{active.pk} of “audited-flow”",
        "restore": f"{who} restored run #{failed.pk} of “audited-flow” (2 node(s) rerun)",
        "rerun": f"{who} reran run #{failed.pk} of “audited-flow” as run #{new_id}",
        "rerun_from": f"{who} reran run #{new_id} of “audited-flow” from node “a” (3 node(s))",
        "mark_success": f"{who} marked node “b” succeeded in run #{new_id} of “audited-flow”",
        "backfill": f"{who} backfilled 3 run(s) of “audited-flow” "
        "from 2024-01-10T00:00:00+00:00 to 2024-01-12T00:00:00+00:00",
    }
    assert all("_summary" not in e for e in entries)
    # The audit's own filters apply: by user, and by time.
    assert len(om_entries(api, admin_user, user=member_user.pk)) == 8
    assert om_entries(api, admin_user, user=admin_user.pk) == []
    assert om_entries(api, admin_user, until=before.isoformat()) == []


@pytest.mark.parametrize(
    "reason, message",
    [
        (123, "as text"),
        (["why"], "as text"),
        ({"why": 1}, "as text"),
        ("x" * (REASON_MAX_LENGTH + 1), f"{REASON_MAX_LENGTH} characters"),
        ("nul\x00byte", "NUL"),
    ],
)
def test_a_bad_reason_is_a_400_naming_reason_and_nothing_happens(
    api, flow, member_user, engine, reason, message
):
    failed = engine.call(run_start, flow=flow, mode="try", user=member_user)
    engine.drain()
    active = engine.call(run_start, flow=flow, mode="dry", user=member_user)
    b = latest(FlowRun.objects.get(pk=failed.pk))["b"]
    urls = [
        f"/api/v1/runs/{active.pk}/stop/",
        f"/api/v1/runs/{active.pk}/pause/",
        f"/api/v1/runs/{failed.pk}/rerun/",
        f"/api/v1/runs/{failed.pk}/restore/",
        f"/api/v1/node-runs/{b.pk}/mark-success/",
        f"/api/v1/node-runs/{b.pk}/rerun-from/",
        f"/api/v1/flows/{flow.pk}/runs/",
    ]
    runs_before = FlowRun.objects.count()
    for url in urls:
        body = {"reason": reason}
        if url.endswith(f"{flow.pk}/runs/"):
            body.update(mode="time_range", start="2024-01-10T00:00:00Z", end="2024-01-11T00:00:00Z")
        res = post(api(member_user), engine, url, body)
        assert res.status_code == 400, (url, res.content)
        assert list(res.json()) == ["reason"] and message in res.json()["reason"][0], url
    assert not OperationRecord.objects.exists()
    assert FlowRun.objects.count() == runs_before
    active.refresh_from_db()
    assert active.status in ("queued", "running")


def test_a_reason_is_trimmed_and_a_blank_one_is_fine(api, flow, member_user, admin_user, engine):
    active = engine.call(run_start, flow=flow, mode="dry", user=member_user)
    res = post(api(member_user), engine, f"/api/v1/runs/{active.pk}/pause/", {"reason": "  why  "})
    assert res.status_code == 200
    res = post(api(member_user), engine, f"/api/v1/runs/{active.pk}/resume/", {"reason": ""})
    assert res.status_code == 200
    assert [e["reason"] for e in om_entries(api, admin_user)] == ["", "why"]


def test_a_refused_action_leaves_no_record(api, flow, member_user, other_member, engine):
    active = engine.call(run_start, flow=flow, mode="dry", user=member_user)
    client = api(member_user)
    assert post(client, engine, f"/api/v1/runs/{active.pk}/resume/").status_code == 409
    assert post(client, engine, f"/api/v1/runs/{active.pk}/restore/").status_code == 409
    # Another member may not operate the owner's private flow: not even told it exists.
    res = post(api(other_member), engine, f"/api/v1/runs/{active.pk}/stop/", {"reason": "x"})
    assert res.status_code == 404
    assert not OperationRecord.objects.exists()


def test_members_do_not_read_the_audit_and_other_tenants_see_nothing(
    api, flow, member_user, admin_user, outsider, other_tenant, engine
):
    active = engine.call(run_start, flow=flow, mode="dry", user=member_user)
    assert post(api(member_user), engine, f"/api/v1/runs/{active.pk}/stop/").status_code == 200
    assert api(member_user).get("/api/v1/audit/").status_code == 403
    res = api(outsider, other_tenant).get("/api/v1/audit/", {"page_size": 200})
    assert res.status_code == 200
    assert not [e for e in res.json()["results"] if e["object_type"] == "run"]
    assert "audited-flow" not in res.content.decode()
    assert len(om_entries(api, admin_user)) == 1


def test_the_record_outlives_the_flow_it_names(api, flow, member_user, admin_user, engine):
    active = engine.call(run_start, flow=flow, mode="dry", user=member_user)
    assert post(api(member_user), engine, f"/api/v1/runs/{active.pk}/stop/").status_code == 200
    engine.drain()
    FlowRun.objects.filter(flow=flow).delete()
    flow.delete()
    (entry,) = om_entries(api, admin_user)
    assert (entry["action"], entry["object_id"]) == ("stop", active.pk)
    assert entry["object_repr"] == f"run {active.pk} of audited-flow"


def test_an_audit_page_costs_the_same_queries_however_many_actions(
    api, flow, member_user, admin_user, engine, django_assert_max_num_queries
):
    def stop_runs(n):
        for _ in range(n):
            run = engine.call(run_start, flow=flow, mode="dry", user=member_user)
            assert post(api(member_user), engine, f"/api/v1/runs/{run.pk}/stop/").status_code == 200

    stop_runs(2)
    client = api(admin_user)
    with django_assert_max_num_queries(50) as few:
        assert client.get("/api/v1/audit/", {"page_size": 50}).status_code == 200
    count = len(few)
    assert count > 0
    stop_runs(10)
    with django_assert_max_num_queries(count):
        res = client.get("/api/v1/audit/", {"page_size": 50})
    assert len([e for e in res.json()["results"] if e["object_type"] == "run"]) == 12


def test_a_backfill_without_fire_times_records_nothing(api, flow, member_user, engine):
    res = post(
        api(member_user),
        engine,
        f"/api/v1/flows/{flow.pk}/runs/",
        {"mode": "time_range", "start": "2023-01-10T00:00:00Z", "end": "2023-01-10T01:00:00Z"},
    )
    # The schedule starts in 2024: no fire time, no run, no record.
    assert res.status_code == 400 and "start" in res.json(), res.content
    assert not OperationRecord.objects.exists()


def test_the_audit_flow_filter_keeps_that_flows_om_actions(
    api, flow, tenant, member_user, admin_user, engine
):
    other, _ = build_flow(tenant=tenant, owner=member_user, nodes=["x"], name="other-flow")
    mine = engine.call(run_start, flow=flow, mode="dry", user=member_user)
    theirs = engine.call(run_start, flow=other, mode="dry", user=member_user)
    for run in (mine, theirs):
        assert post(api(member_user), engine, f"/api/v1/runs/{run.pk}/stop/").status_code == 200
    only = om_entries(api, admin_user, flow=flow.pk)
    assert [(e["action"], e["object_id"]) for e in only] == [("stop", mine.pk)]
