"""POST /api/v1/runs/bulk/: one run action on many runs, each answering what it would alone."""

from __future__ import annotations

import pytest

from operations.models import FlowRun, OperationRecord
from operations.services import run_start
from operations.services.bulk import MAX_BULK_RUNS
from tests.factories import build_flow
from tests.operations.helpers import script

pytestmark = pytest.mark.django_db

BULK = "/api/v1/runs/bulk/"


@pytest.fixture
def flow(tenant, member_user):
    flow, _ = build_flow(
        tenant=tenant,
        owner=member_user,
        nodes=["a", script("b", fail_attempts=1)],
        edges=[("a", "b")],
        concurrency_policy="ignore",
        name="bulk-flow",
    )
    return flow


def post(client, engine, url, body=None):
    return engine.call(client.post, url, body or {}, format="json")


def alone(client, engine, run_id, action):
    """What the single action answers for this run: (status, body)."""
    res = post(client, engine, f"/api/v1/runs/{run_id}/{action}/")
    return res.status_code, res.json()


def started(engine, flow, user, n=1, mode="dry") -> list[FlowRun]:
    return [engine.call(run_start, flow=flow, mode=mode, user=user) for _ in range(n)]


def test_bulk_stop_stops_the_active_runs_and_answers_the_others_as_alone(
    api, flow, member_user, other_tenant, outsider, engine
):
    # Given a finished run, another tenant's run, two active runs and an id that exists nowhere
    finished = started(engine, flow, member_user)[0]
    theirs_flow, _ = build_flow(tenant=other_tenant, owner=outsider, nodes=["x"])
    theirs = engine.call(run_start, flow=theirs_flow, mode="dry", user=outsider)
    engine.drain()
    finished.refresh_from_db()
    assert finished.status == "succeeded"
    one, two = started(engine, flow, member_user, 2)
    missing = 2_000_000_000

    # When the member stops them all at once, with a reason
    client = api(member_user)
    res = post(
        client,
        engine,
        BULK,
        {
            "action": "stop",
            "runs": [one.pk, finished.pk, theirs.pk, two.pk, missing],
            "reason": "maintenance window",
        },
    )

    # Then each run answers in the order given
    assert res.status_code == 200, res.content
    body = res.json()
    assert (body["action"], body["done"], body["refused"]) == ("stop", 2, 3)
    results = {r["run"]: r for r in body["results"]}
    assert [r["run"] for r in body["results"]] == [one.pk, finished.pk, theirs.pk, two.pk, missing]
    for run in (one, two):
        assert results[run.pk]["result"] == "done" and results[run.pk]["status"] == 200
        run.refresh_from_db()
        assert run.status == "stopped"
    # ... a refusal is what the single action answers, to the byte
    for run_id in (finished.pk, theirs.pk, missing):
        r = results[run_id]
        assert r["result"] == "refused"
        assert (r["status"], r["errors"]) == alone(client, engine, run_id, "stop")
    assert results[finished.pk]["status"] == 409
    # ... and another tenant's run is exactly an id that exists nowhere: not found
    assert results[theirs.pk]["status"] == 404
    assert results[theirs.pk]["errors"] == results[missing]["errors"]
    theirs.refresh_from_db()
    assert theirs.status == "succeeded"
    assert "bulk-flow" not in str(results[theirs.pk])


@pytest.mark.parametrize("action", ["pause", "resume", "rerun", "restore"])
def test_every_bulk_action_matches_the_single_action(
    api, flow, member_user, other_member, engine, action
):
    # A failed run, an active run, and a public flow another member sees but may not operate.
    failed = started(engine, flow, member_user, mode="try")[0]
    engine.drain()
    failed.refresh_from_db()
    assert failed.status == "failed"
    active = started(engine, flow, member_user)[0]
    public, _ = build_flow(tenant=flow.tenant, owner=member_user, nodes=["p"], is_public=True)
    seen = engine.call(run_start, flow=public, mode="dry", user=member_user)
    ids = [failed.pk, active.pk, seen.pk]

    for who in (member_user, other_member):
        client = api(who)
        with_bulk = post(client, engine, BULK, {"action": action, "runs": ids}).json()["results"]
        # A refused run answers what its single action answers now; a done one has moved on.
        for result in with_bulk:
            if result["result"] == "refused":
                assert (result["status"], result["errors"]) == alone(
                    client, engine, result["run"], action
                ), (who.username, result)
            elif action == "rerun":
                assert result["status"] == 201
                assert FlowRun.objects.get(pk=result["new_run"]).trigger == "rerun"
            else:
                assert result["status"] == 200
                run = FlowRun.objects.get(pk=result["run"])
                assert result["run_status"] == run.status
        by_run = {r["run"]: r for r in with_bulk}
        if who == other_member:
            # the private flow's runs are hidden, the public one's are forbidden
            assert by_run[failed.pk]["status"] == by_run[active.pk]["status"] == 404
            assert by_run[seen.pk]["status"] == 403
    # The owner's outcome per action: which runs it applied to.
    done = {
        r.run_id
        for r in OperationRecord.objects.filter(action=action, user=member_user)
        if r.run_id
    }
    expected = {
        "pause": {active.pk, seen.pk},
        "resume": set(),  # nothing was paused
        "rerun": {failed.pk, active.pk, seen.pk},
        "restore": {failed.pk},
    }[action]
    assert done == expected


@pytest.mark.parametrize(
    "body, field",
    [
        ({"action": "delete", "runs": [1]}, "action"),
        ({"runs": [1]}, "action"),
        ({"action": "stop"}, "runs"),
        ({"action": "stop", "runs": []}, "runs"),
        ({"action": "stop", "runs": "1,2"}, "runs"),
        ({"action": "stop", "runs": [1, "2"]}, "runs"),
        ({"action": "stop", "runs": [1, True]}, "runs"),
        ({"action": "stop", "runs": [0]}, "runs"),
        ({"action": "stop", "runs": [2**63]}, "runs"),
        ({"action": "stop", "runs": [1, 1]}, "runs"),
        ({"action": "stop", "runs": list(range(1, MAX_BULK_RUNS + 2))}, "runs"),
        ({"action": "stop", "runs": [1], "reason": 5}, "reason"),
        ({"action": "stop", "runs": [1], "reason": "x" * 501}, "reason"),
    ],
)
def test_a_bad_bulk_request_is_a_400_naming_the_field_and_nothing_happens(
    api, flow, member_user, engine, body, field
):
    (run,) = started(engine, flow, member_user)
    body = (
        {**body, "runs": [run.pk if r == 1 else r for r in body["runs"]]}
        if isinstance(body.get("runs"), list)
        else body
    )
    res = post(api(member_user), engine, BULK, body)
    assert res.status_code == 400, res.content
    assert list(res.json()) == [field], res.content
    run.refresh_from_db()
    assert run.status in ("queued", "running")
    assert not OperationRecord.objects.exists()


def test_a_bulk_body_that_is_not_an_object_is_a_400(api, member_user, engine):
    res = post(api(member_user), engine, BULK, [1, 2])
    assert res.status_code == 400


def test_an_auditor_may_not_bulk(api, flow, tenant, member_user, engine):
    from tests.conftest import _member

    auditor = _member(tenant, "auditor", "bulk-auditor")
    (run,) = started(engine, flow, member_user)
    res = post(api(auditor), engine, BULK, {"action": "stop", "runs": [run.pk]})
    assert res.status_code == 403
    run.refresh_from_db()
    assert run.status in ("queued", "running")


def test_a_bulk_request_is_in_the_audit_trail_with_each_run(
    api, flow, member_user, admin_user, engine
):
    one, two = started(engine, flow, member_user, 2)
    res = post(
        api(member_user),
        engine,
        BULK,
        {"action": "pause", "runs": [one.pk, two.pk, 2_000_000_000], "reason": "db upgrade"},
    )
    assert res.json()["done"] == 2
    entries = api(admin_user).get("/api/v1/audit/", {"object_type": "run"}).json()["results"]
    # The bulk request last, after each run's own record, all with the reason and the user.
    assert [(e["action"], e["object_id"]) for e in entries] == [
        ("bulk", None),
        ("pause", two.pk),
        ("pause", one.pk),
    ]
    assert {(e["reason"], e["username"]) for e in entries} == {("db upgrade", member_user.username)}
    bulk = {c["field"]: c["new"] for c in entries[0]["changes"]}
    assert bulk == {
        "action": "pause",
        "runs": [one.pk, two.pk, 2_000_000_000],
        "done": [one.pk, two.pk],
        "refused": {"2000000000": 404},
    }
    assert entries[0]["object_repr"] == "pause of 3 run(s)"
    assert entries[0]["summary"] == (
        f"{member_user.username} asked to pause 3 run(s) at once: 2 done, 1 refused"
    )


def test_a_token_without_runs_write_may_not_bulk(api, flow, member_user, engine, client):
    from accounts import services as account_services

    (run,) = started(engine, flow, member_user)
    token, secret = account_services.token_issue(
        user=member_user, actor=member_user, name="ro", scopes=["runs:read"]
    )
    res = client.post(
        BULK,
        {"action": "stop", "runs": [run.pk]},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {secret}",
    )
    assert res.status_code == 403 and res.json()["required_scope"] == "runs:write"
