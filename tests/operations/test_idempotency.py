"""Idempotency-Key on POST …/runs/: a repeat answers with the first request's runs (200, same
ids, nothing created), another body under the key is a 409, and concurrent duplicates create
one run (a real race between threads on their own database connections)."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.db import connection, connections

from operations.models import FlowRun, RunRequestKey
from operations.services import creation, idempotency
from tests.factories import ScheduleFactory, chain_flow


@pytest.fixture
def flow(tenant, member_user):
    flow, _ = chain_flow(tenant=tenant, owner=member_user, length=2, concurrency_policy="ignore")
    return flow


def _post(client, flow, body, key=None):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return client.post(f"/api/v1/flows/{flow.pk}/runs/", body, format="json", **headers)


@pytest.mark.django_db
def test_a_repeat_returns_the_first_run_with_200_and_creates_nothing(api, flow, member_user):
    client = api(member_user)

    first = _post(client, flow, {"mode": "try"}, key="order-42")
    again = _post(client, flow, {"mode": "try"}, key="order-42")

    assert first.status_code == 201, first.content
    assert again.status_code == 200, again.content
    assert again.json()["id"] == first.json()["id"]
    assert FlowRun.objects.count() == 1


@pytest.mark.django_db
def test_a_time_range_repeat_returns_the_same_runs(api, flow, member_user):
    ScheduleFactory(flow=flow, cron="0 6 * * *")
    body = {"mode": "time_range", "start": "2024-01-01T00:00:00Z", "end": "2024-01-03T23:00:00Z"}
    client = api(member_user)

    first = _post(client, flow, body, key="backfill-jan")
    again = _post(client, flow, body, key="backfill-jan")

    assert first.status_code == 201 and again.status_code == 200
    ids = [r["id"] for r in first.json()["runs"]]
    assert len(ids) == 3 and [r["id"] for r in again.json()["runs"]] == ids
    assert FlowRun.objects.count() == 3


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_a_409(api, flow, member_user):
    client = api(member_user)
    _post(client, flow, {"mode": "try"}, key="k1")

    res = _post(client, flow, {"mode": "dry"}, key="k1")

    assert res.status_code == 409, res.content
    assert "Idempotency-Key" in res.json()
    assert FlowRun.objects.count() == 1


@pytest.mark.django_db
def test_the_same_key_on_another_flow_is_a_409(api, tenant, flow, member_user):
    other, _ = chain_flow(tenant=tenant, owner=member_user, length=1)
    client = api(member_user)
    _post(client, flow, {"mode": "try"}, key="k1")

    assert _post(client, other, {"mode": "try"}, key="k1").status_code == 409


@pytest.mark.django_db
def test_keys_are_per_tenant(api, flow, member_user, other_tenant, outsider):
    other, _ = chain_flow(tenant=other_tenant, owner=outsider, length=1)

    mine = _post(api(member_user), flow, {"mode": "try"}, key="shared")
    theirs = _post(api(outsider), other, {"mode": "try"}, key="shared")

    assert mine.status_code == 201 and theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]


@pytest.mark.django_db
def test_a_key_older_than_24_hours_starts_afresh(api, flow, member_user):
    client = api(member_user)
    first = _post(client, flow, {"mode": "try"}, key="old")
    RunRequestKey.objects.update(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=25))

    again = _post(client, flow, {"mode": "try"}, key="old")

    assert again.status_code == 201 and again.json()["id"] != first.json()["id"]
    assert idempotency.run_request_keys_expire() == 0  # the old row was replaced


@pytest.mark.django_db
def test_a_refused_request_does_not_use_up_the_key(api, flow, member_user):
    client = api(member_user)

    bad = _post(client, flow, {"mode": "point_in_time"}, key="k")
    good = _post(
        client, flow, {"mode": "point_in_time", "business_time": "2024-01-01T00:00:00Z"}, key="k"
    )

    assert bad.status_code == 400 and good.status_code == 201


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", " ", "x" * 256, "bad\nkey"])
def test_a_malformed_key_is_a_400_naming_the_header(api, flow, member_user, key):
    res = _post(api(member_user), flow, {"mode": "try"}, key=key)

    assert res.status_code == 400, res.content
    assert "Idempotency-Key" in res.json()
    assert not FlowRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_create_one_run(api, flow, member_user, engine, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("a real race needs PostgreSQL's row-level concurrency")
    # Given: creating the run takes a while, so every duplicate arrives while the first
    # request's transaction is still open
    real_start = creation.run_start

    def slow_start(**kwargs):
        time.sleep(0.3)
        return real_start(**kwargs)

    monkeypatch.setattr("operations.services.run_start", slow_start)
    count = 6
    barrier = threading.Barrier(count)
    answers: list = [None] * count

    def request(i):
        try:
            barrier.wait(timeout=10)
            answers[i] = _post(api(member_user), flow, {"mode": "try"}, key="race")
        finally:
            connections.close_all()

    # When: six threads send the same request with the same key at once
    threads = [threading.Thread(target=request, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    # Then: one run, one 201, and every other answer is a 200 with its id
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * (count - 1) + [201], [a.content for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert FlowRun.objects.count() == 1
    assert RunRequestKey.objects.count() == 1


@pytest.mark.django_db
def test_housekeeping_forgets_keys_past_the_window(api, flow, member_user):
    _post(api(member_user), flow, {"mode": "try"}, key="a")
    _post(api(member_user), flow, {"mode": "dry"}, key="b")
    RunRequestKey.objects.filter(key="a").update(
        created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=25)
    )

    assert idempotency.run_request_keys_expire() == 1
    assert list(RunRequestKey.objects.values_list("key", flat=True)) == ["b"]
