"""API scale benchmark: the flow list, detail and history endpoints at 100,000 flows.

`run_api_scale_benchmark()` builds a scratch database (a fresh copy of the schema, created
and dropped like Django's test database) holding one tenant with `flows` flows, `users`
members, guardian grants on every flow (the owner's three, two stakeholders' two each) and
`history_rows` rows in the history tables, seeded with bulk inserts: it is benchmark data,
not user actions. It measures p50/p95 latency and the SQL query count of each endpoint
through the real URLconf and middleware (Django's test client, token authentication), first
at 100 flows, then at the full size, and returns the figures as one flat dict.

Why a scratch database rather than a scratch tenant in the live one: two million
bulk-inserted rows would bloat the live tables and skew their planner statistics, and
removing them takes longer than creating them; DROP DATABASE takes a second and can leave
nothing behind. The `benchmark --api-scale` management command prints the result.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Callable

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from . import BenchmarkError

TARGET_P95_MS = 150.0
SMALL = 100
PUBLIC_EVERY = 50  # 2% of the flows are public: sparse for a member who owns few
STAKEHOLDERS_PER_FLOW = 2
FEW = 3  # flows owned by the "owner of few flows"
BATCH = 5_000
ENDPOINTS = (
    "flow_list_member",
    "flow_list_dba",
    "flow_list_owner_few",
    "flow_detail",
    "flow_history",
)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class _Seeder:
    """Bulk-inserts the scratch tenant; flows are added in steps (100 first, then the rest)."""

    def __init__(self, users: int, log: Callable[[str], None]):
        from accounts.choices import Role
        from accounts.models import Membership, Tenant, User
        from accounts.services import token_sign_in

        self.log = log
        self.now = timezone.now()
        self.tenant = Tenant.objects.create(name="API benchmark", slug="api-benchmark")
        password = make_password("benchmark-only-password")
        people = User.objects.bulk_create(
            [
                User(
                    username=f"bench-{i:04d}",
                    email=f"bench-{i:04d}@bench.example",
                    password=password,
                )
                for i in range(max(users, 4))
            ]
        )
        self.dba, self.owner_few, self.member, *self.others = people
        roles = {self.dba.pk: Role.DBA}
        Membership.objects.bulk_create(
            [
                Membership(user=u, tenant=self.tenant, role=roles.get(u.pk, Role.MEMBER))
                for u in people
            ]
        )
        # The plain member owns and holds grants like everyone else; the owner of few
        # flows owns FEW of them and nothing more (plus the public ones, like anyone).
        self.pool = [self.member, *self.others]
        self.tokens = {
            "member": token_sign_in(user=self.member)[1],
            "dba": token_sign_in(user=self.dba)[1],
            "owner_few": token_sign_in(user=self.owner_few)[1],
        }
        perms = dict(
            Permission.objects.filter(content_type__app_label="flows").values_list("codename", "pk")
        )
        self.owner_perms = [
            perms["view_taskflow"],
            perms["change_taskflow"],
            perms["operate_taskflow"],
        ]
        self.stake_perms = [perms["view_taskflow"], perms["operate_taskflow"]]
        self.flows = 0
        self.history = 0
        self.grants = 0
        self.hot_flow = None

    def _flow_owner(self, i: int):
        if i < FEW:
            return self.owner_few
        if i == FEW:
            return self.member  # the flow whose detail and history are measured
        return self.pool[i % len(self.pool)]

    def add_flows(self, upto: int, history_total: int, flows_total: int) -> None:
        """Flows [self.flows, upto) with their grants and their share of the history rows."""
        from flows.models import TaskFlow, TaskFlowUserObjectPermission

        HistFlow = TaskFlow.history.model
        HistGrant = TaskFlowUserObjectPermission.history.model
        # History rows per flow beyond the "+" of the flow and of its grants.
        per_flow_rows = 1 + 3 + 2 * STAKEHOLDERS_PER_FLOW
        extra = max(0, history_total - per_flow_rows * flows_total) // max(flows_total, 1)
        start = self.flows
        while start < upto:
            stop = min(upto, start + BATCH)
            flows = TaskFlow.objects.bulk_create(
                [
                    TaskFlow(
                        tenant=self.tenant,
                        name=f"bench flow {i:07d}",
                        owner=self._flow_owner(i),
                        created_by=self._flow_owner(i),
                        is_public=i % PUBLIC_EVERY == 7,
                        notifications={"on_failure": True},
                    )
                    for i in range(start, stop)
                ],
                batch_size=BATCH,
            )
            grants = []
            for offset, flow in enumerate(flows):
                i = start + offset
                grants += [
                    TaskFlowUserObjectPermission(
                        content_object_id=flow.pk, user_id=flow.owner_id, permission_id=p
                    )
                    for p in self.owner_perms
                ]
                if i >= FEW:
                    for k in range(1, STAKEHOLDERS_PER_FLOW + 1):
                        user = self.pool[(i + 37 * k) % len(self.pool)]
                        if user.pk != flow.owner_id:
                            grants += [
                                TaskFlowUserObjectPermission(
                                    content_object_id=flow.pk, user_id=user.pk, permission_id=p
                                )
                                for p in self.stake_perms
                            ]
            grants = TaskFlowUserObjectPermission.objects.bulk_create(grants, batch_size=BATCH)
            history = []
            for flow in flows:
                at = self.now - datetime.timedelta(days=30)
                history.append(self._flow_row(HistFlow, flow, "+", at))
                for n in range(extra):
                    history.append(
                        self._flow_row(HistFlow, flow, "~", at + datetime.timedelta(minutes=n + 1))
                    )
            grant_history = [
                HistGrant(
                    id=g.pk,
                    content_object_id=g.content_object_id,
                    user_id=g.user_id,
                    permission_id=g.permission_id,
                    history_date=self.now - datetime.timedelta(days=30),
                    history_type="+",
                )
                for g in grants
            ]
            HistFlow.objects.bulk_create(history, batch_size=BATCH)
            HistGrant.objects.bulk_create(grant_history, batch_size=BATCH)
            self.grants += len(grants)
            self.history += len(history) + len(grant_history)
            self.flows = stop
            start = stop
        if self.hot_flow is None:
            # The flow the detail and history endpoints read: owned by the plain member.
            self.hot_flow = (
                TaskFlow.objects.filter(tenant=self.tenant, owner=self.member)
                .order_by("id")
                .first()
            )

    def hot_history(self, rows: int) -> None:
        """A long audit trail on the measured flow, so its history page is a real page."""
        from flows.models import TaskFlow

        HistFlow = TaskFlow.history.model
        start = self.now - datetime.timedelta(days=20)
        batch = []
        for n in range(rows):
            batch.append(
                self._flow_row(HistFlow, self.hot_flow, "~", start + datetime.timedelta(seconds=n))
            )
            if len(batch) == BATCH:
                HistFlow.objects.bulk_create(batch)
                batch = []
        HistFlow.objects.bulk_create(batch)
        self.history += rows

    def _flow_row(self, model, flow, kind: str, at):
        return model(
            id=flow.pk,
            tenant_id=flow.tenant_id,
            name=flow.name,
            owner_id=flow.owner_id,
            created_by_id=flow.created_by_id,
            is_public=flow.is_public,
            description=f"revision {at:%H%M%S}" if kind == "~" else "",
            notifications=flow.notifications,
            created_at=flow.created_at,
            history_date=at,
            history_type=kind,
            history_user_id=flow.owner_id,
        )


def _analyze() -> None:
    """Planner statistics and the visibility map, as autovacuum leaves a live database."""
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


def _measure(seed: _Seeder, repeat: int) -> dict:
    """p50/p95 (ms) and queries of each endpoint, through the URLconf and middleware."""
    flow = seed.hot_flow.pk
    cases = {
        "flow_list_member": ("member", "/api/v1/flows/"),
        "flow_list_dba": ("dba", "/api/v1/flows/"),
        "flow_list_owner_few": ("owner_few", "/api/v1/flows/"),
        "flow_detail": ("member", f"/api/v1/flows/{flow}/"),
        "flow_history": ("member", f"/api/v1/flows/{flow}/history/"),
    }
    out = {}
    for name, (who, url) in cases.items():
        client = Client(
            HTTP_AUTHORIZATION=f"Token {seed.tokens[who]}", HTTP_X_TENANT=seed.tenant.slug
        )
        for _ in range(3):  # warm caches and connections, as a live server would be
            res = client.get(url)
            if res.status_code != 200:
                raise BenchmarkError(
                    f"{url} as {who}: HTTP {res.status_code} {res.content[:300]!r}"
                )
        # The log is a bounded deque: when seeding filled it, its length no longer grows.
        connection.queries_log.clear()
        with CaptureQueriesContext(connection) as queries:
            res = client.get(url)
        if res.status_code != 200:
            raise BenchmarkError(f"{url} as {who}: HTTP {res.status_code}")
        # Read now: the next request's request_started signal empties the query log.
        query_count = len(queries)
        timings = []
        for _ in range(repeat):
            started = time.perf_counter()
            res = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
            if res.status_code != 200:
                # A failed request is no fast sample: it fails the benchmark.
                raise BenchmarkError(
                    f"{url} as {who}: HTTP {res.status_code} {res.content[:300]!r}"
                )
        out[name] = {
            "p50_ms": round(_percentile(timings, 0.50), 2),
            "p95_ms": round(_percentile(timings, 0.95), 2),
            "queries": query_count,
            "count": res.json().get("count"),
        }
    return out


def _server_version() -> str:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            return f"PostgreSQL {cursor.fetchone()[0]}"
    return f"{connection.vendor} {connection.Database.sqlite_version if connection.vendor == 'sqlite' else ''}".strip()


def run_api_scale_benchmark(
    *,
    flows: int = 100_000,
    users: int = 200,
    history_rows: int = 1_000_000,
    stdout=None,
    repeat: int = 40,
) -> dict:
    """Seed a scratch database, measure the flow endpoints at 100 and at `flows` flows, drop it.

    Returns a flat dict: api_<endpoint>_{p50_ms,p95_ms,queries} at full size, the same with
    `_small` at 100 flows, api_queries_constant, api_p95_target_met and the sizes seeded.
    """

    def log(message: str) -> None:
        if stdout is not None:
            stdout.write(message + "\n")
            if hasattr(stdout, "flush"):
                stdout.flush()

    alias_settings = connection.settings_dict
    old_name = alias_settings["NAME"]
    old_test = dict(alias_settings.get("TEST") or {})
    scratch = None
    if connection.vendor != "sqlite":
        scratch = f"{old_name}_apibench_{os.getpid()}"[:63]
    alias_settings.setdefault("TEST", {})["NAME"] = scratch
    log(f"api-scale: creating the scratch database ({scratch or 'in memory'}) ...")
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    started = time.monotonic()
    try:
        with override_settings(
            ALLOWED_HOSTS=["testserver"], SECURE_SSL_REDIRECT=False, DEBUG=False
        ):
            seed = _Seeder(users, log)
            small = min(SMALL, flows)
            seed.add_flows(small, history_total=history_rows, flows_total=flows)
            # The measured flow's own trail is the same at both sizes: only the tenant grows.
            seed.hot_history(min(20_000, max(0, history_rows // 50)))
            _analyze()
            log(f"api-scale: {seed.flows} flows seeded; measuring ...")
            at_small = _measure(seed, repeat)
            while seed.flows < flows:
                step = min(flows, seed.flows + 20_000)
                seed.add_flows(step, history_total=history_rows, flows_total=flows)
                log(
                    f"api-scale: {seed.flows} flows, {seed.grants} grants, "
                    f"{seed.history} history rows ({time.monotonic() - started:.0f}s)"
                )
            _analyze()
            seeded_s = time.monotonic() - started
            log(f"api-scale: seeded in {seeded_s:.0f}s; measuring ...")
            at_full = _measure(seed, repeat)
            database = _server_version()
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        alias_settings["TEST"] = old_test
    result: dict = {
        "api_database": database,
        "api_flows": seed.flows,
        "api_users": users,
        "api_grants": seed.grants,
        "api_history_rows": seed.history,
        "api_seed_s": round(seeded_s, 1),
        "api_p95_target_ms": TARGET_P95_MS,
    }
    for name in ENDPOINTS:
        for key in ("p50_ms", "p95_ms", "queries"):
            result[f"api_{name}_{key}"] = at_full[name][key]
            result[f"api_{name}_small_{key}"] = at_small[name][key]
        if at_full[name]["count"] is not None:
            result[f"api_{name}_count"] = at_full[name]["count"]
    result["api_queries_constant"] = all(
        at_full[n]["queries"] == at_small[n]["queries"] for n in ENDPOINTS
    )
    result["api_p95_target_met"] = all(at_full[n]["p95_ms"] <= TARGET_P95_MS for n in ENDPOINTS)
    for name in ENDPOINTS:
        log(
            f"  {name:<22} p50 {at_full[name]['p50_ms']:>7.1f} ms  p95 {at_full[name]['p95_ms']:>7.1f} ms"
            f"  queries {at_full[name]['queries']} (at {SMALL}: {at_small[name]['queries']},"
            f" p95 {at_small[name]['p95_ms']:.1f} ms)"
        )
    return result
