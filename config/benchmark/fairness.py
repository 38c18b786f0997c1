"""Fairness benchmark: a noisy neighbour (tenant A) against a quiet tenant (B), real workers.

`run_fairness_benchmark()` starts its own worker (prefork, 12 processes: the blocking nodes
are http calls that wait on a local server, holding a slot and no CPU; in a threads pool
the tenants' nodes share one interpreter lock, and A's Python work delayed the statements
of B's throughout the flood) and a celery beat, creates two scratch tenants, measures, and
removes them.
Phases:

1. B alone on the idle platform: a 3-node chain started every `every` seconds, for as long
   as phase 2 (so both phases' p99 come from as many runs); its run latency (created ->
   finished) p50/p99 is the baseline.
2. A floods: many runs of a flow whose nodes each block for `block` seconds, plus a
   500-run backfill (a time range, `parallelism` runs at a time, nodes blocking too); B
   goes on starting its chain and has every-minute schedules firing (one fire time falls in
   this phase). B's latency p50/p99 again, and the schedules' lateness (fire time -> run
   created, `ScheduleFiring.lateness`).
3. B idle (A starts another wave, so it has more work than it may run): A's throughput
   (nodes finished per second) and how many slots A's nodes held on average, against what
   A may hold (its default limit), to show slots are not wasted.

Targets (config/benchmark/targets.py FAIRNESS): B's p50 and p99 under the flood at most
1.5x and at most 1 s more than alone; lateness p50 <= 0.5 s and p99 <= 2 s; A holds at least
80% of the slots it may hold while B is idle.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from django.db import connection, transaction
from django.utils import timezone

from . import BenchmarkError
from .engine import percentile
from .processes import CeleryProcess
from .scheduling import _cleanup, _quiet_start, _wait

TERMINAL = {"succeeded", "failed", "stopped", "skipped"}


class _SlowServer:
    """A local HTTP server whose /sleep/<seconds> answers after that long (a slow API)."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                parts = self.path.strip("/").split("/")
                if parts[0] == "sleep":
                    time.sleep(float(parts[1]))
                data = b'{"ok": true}'
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, seconds: float) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/sleep/{seconds}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _summary(values: list[float]) -> dict:
    return {
        "p50": round(statistics.median(values), 3) if values else None,
        "p99": round(percentile(values, 0.99), 3) if values else None,
        "max": round(max(values), 3) if values else None,
        "samples": len(values),
    }


class FairnessBenchmark:
    def __init__(self, say: Callable[[str], None], *, quick: bool = False):
        self.say = say
        self.quick = quick
        self.tag = uuid.uuid4().hex[:8]
        # Blocking nodes hold a thread and no CPU: size the pool for them (README).
        self.concurrency = 12
        self.block = 3.0
        self.every = 1.0
        self.flood_s = 65  # spans one every-minute fire time
        # As long as the flood: both p99s then come from the same number of runs. (With 25
        # runs alone against 65 flooded, each p99 is about its phase's slowest run, and the
        # slowest of 65 draws from one distribution exceeds the slowest of 25 more often
        # than not: the comparison leaned against the flood before any load.)
        self.alone_s = 15 if quick else self.flood_s
        self.idle_s = 12 if quick else 20
        self.flood_runs = 20 if quick else 40
        self.backfill_runs = 500
        self.schedules = 10

    # ------------------------------------------------------------------ set-up

    def tenant(self, name: str):
        from accounts.choices import Role
        from accounts.models import Membership, Tenant, User

        slug = f"fair-{name}-{self.tag}"
        tenant = Tenant.objects.create(name=f"Fairness benchmark {name}", slug=slug)
        user = User.objects.create(username=slug)
        Membership.objects.create(tenant=tenant, user=user, role=Role.ADMIN)
        return tenant, user

    def flow(self, tenant, user, name, nodes, edges=(), **fields):
        from flows.models import Edge, TaskFlow, TaskNode

        flow = TaskFlow.objects.create(
            tenant=tenant, owner=user, name=name, concurrency_policy="ignore", **fields
        )
        made = {}
        for node in nodes:
            spec = {"name": node} if isinstance(node, str) else dict(node)
            spec.setdefault("type", "noop")
            made[spec["name"]] = TaskNode.objects.create(tenant=tenant, flow=flow, **spec)
        for up, down in edges:
            Edge.objects.create(tenant=tenant, flow=flow, upstream=made[up], downstream=made[down])
        return flow

    def http_node(self, name: str, seconds: float) -> dict:
        return {"name": name, "type": "http", "config": {"url": self.server.url(seconds)}}

    # ------------------------------------------------------------------ measuring

    def start_b(self, flow, user):
        from operations.services import run_start

        return run_start(flow=flow, mode="try", user=user)

    def b_latencies(self, flow, user, seconds: float) -> list[float]:
        """Start B's chain every `every` seconds for `seconds`; their latencies."""
        from operations.models import FlowRun, NodeRun

        ids = []
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            ids.append(self.start_b(flow, user).pk)
            time.sleep(self.every)
        deadline = time.monotonic() + 60
        while FlowRun.objects.filter(pk__in=ids, status__in=TERMINAL).count() < len(ids):
            if time.monotonic() > deadline:
                raise BenchmarkError("tenant B's runs did not finish within 60 s")
            time.sleep(0.1)
        runs = list(FlowRun.objects.filter(pk__in=ids))
        bad = [r for r in runs if r.status != "succeeded"]
        if bad:
            raise BenchmarkError(f"run {bad[0].pk} of tenant B ended {bad[0].status}")
        # Where the time goes: created -> first node started (the broker and a free
        # worker slot), first node started -> run finished (the chain itself).
        self.breakdown = {"to_first_node_s": [], "chain_s": []}
        for r in runs:
            self.breakdown["to_first_node_s"].append((r.started_at - r.created_at).total_seconds())
            self.breakdown["chain_s"].append((r.finished_at - r.started_at).total_seconds())
        # The slowest three, node by node, in ms after the run was created: when the first
        # node's claim began (the run's start), and each node's start and finish.
        self.slowest = []
        for r in sorted(runs, key=lambda r: r.finished_at - r.created_at)[-3:]:

            def ms(t, r=r):
                return round((t - r.created_at).total_seconds() * 1000, 1)

            nodes = NodeRun.objects.filter(run=r).order_by("started_at")
            self.slowest.append(
                {
                    "created": r.created_at.isoformat(timespec="milliseconds"),
                    "total_ms": ms(r.finished_at),
                    "run_started_ms": ms(r.started_at),
                    "nodes_ms": [[ms(n.started_at), ms(n.finished_at)] for n in nodes],
                }
            )
        return [(r.finished_at - r.created_at).total_seconds() for r in runs]

    def run(self) -> dict:
        from flows import services as flow_services
        from operations.models import NodeRun
        from operations.services import run_start, slots
        from scheduling.models import ScheduleFiring
        from scheduling.services import schedule_save

        out: dict = {
            "worker": f"prefork x {self.concurrency}",
            "block_s": self.block,
            "flood_runs": self.flood_runs,
            "backfill_runs": self.backfill_runs,
            "b_schedules": self.schedules,
        }
        self.server = _SlowServer()
        logdir = Path(tempfile.mkdtemp(prefix=f"tributary-bench-fair-{self.tag}-"))
        procs: list[CeleryProcess] = []
        made: list = []
        try:
            a, a_user = self.tenant("a")
            made.append((a.pk, a_user.pk))
            b, b_user = self.tenant("b")
            made.append((b.pk, b_user.pk))
            b_chain = self.flow(b, b_user, "b-chain", ["x", "y", "z"], [("x", "y"), ("y", "z")])
            blocking = self.flow(
                a, a_user, "a-blocking", [self.http_node(f"h{i}", self.block) for i in range(3)]
            )
            backfill = self.flow(a, a_user, "a-backfill", [self.http_node("h", 1.0)])
            with transaction.atomic():
                schedule_save(flow=backfill, user=a_user, cron="* * * * *", enabled=False)
            scheduled = []
            with transaction.atomic():
                for i in range(self.schedules):
                    flow = flow_services.flow_create(tenant=b, user=b_user, name=f"b-sched-{i}")
                    flow_services.node_create(
                        flow=flow, user=b_user, name="noop", type="noop", config={}
                    )
                    schedule_save(flow=flow, user=b_user, cron="* * * * *", enabled=True)
                    # A schedule fires once published (the published version holds it).
                    flow_services.flow_publish(flow=flow, user=b_user)
                    scheduled.append(flow.pk)
            _quiet_start(scheduled)

            env = {
                **os.environ,
                "DEBUG": os.environ.get("DEBUG", "0"),
                # The slow server is on loopback, which the outbound policy refuses by default.
                "OUTBOUND_ALLOW": ",".join(
                    filter(None, [os.environ.get("OUTBOUND_ALLOW"), "127.0.0.1"])
                ),
            }
            worker = CeleryProcess(
                "worker",
                [
                    "--pool=prefork",
                    f"--concurrency={self.concurrency}",
                    "--loglevel=WARNING",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-n",
                    f"bench-fair-{self.tag}@%h",
                ],
                log=logdir / "worker.log",
                env=env,
            )
            procs.append(worker)
            beat = CeleryProcess(
                "beat",
                [
                    "--loglevel=INFO",
                    f"--schedule={logdir / 'beat-schedule'}",
                    f"--pidfile={logdir / 'beat.pid'}",
                ],
                log=logdir / "beat.log",
                env=env,
            )
            procs.append(beat)
            if not _wait(worker_reported, until=time.monotonic() + 90):
                raise BenchmarkError(f"the worker did not report its slots; see {worker.log}")
            state = slots.read_state()
            out["worker_slots"] = state.slots
            out["a_default_limit"] = state.default
            self.say(
                f"worker slots {state.slots}; default limit per tenant {state.default}; "
                f"logs in {logdir}"
            )

            # Warm-up, not measured: plans parsed, connections opened.
            self.b_latencies(b_chain, b_user, 3)

            # 1. B alone on the idle platform.
            self.say(f"B alone: a 3-node chain every {self.every}s for {self.alone_s}s ...")
            alone = self.b_latencies(b_chain, b_user, self.alone_s)
            out["b_alone_s"] = _summary(alone)
            out["b_alone_parts_s"] = {k: _summary(v) for k, v in self.breakdown.items()}
            out["b_alone_slowest"] = self.slowest
            self.say(f"  B alone: {out['b_alone_s']} {out['b_alone_parts_s']}")

            # 2. A floods; B goes on, and B's schedules fire.
            self.say(
                f"A floods: {self.flood_runs} runs of 3 nodes blocking {self.block}s, and a "
                f"{self.backfill_runs}-run backfill; B for {self.flood_s}s ..."
            )
            flood_start = timezone.now()
            for _ in range(self.flood_runs):
                run_start(flow=blocking, mode="try", user=a_user)
            first = flood_start.replace(second=0, microsecond=0)
            run_start(
                flow=backfill,
                mode="time_range",
                user=a_user,
                start=first - timedelta(minutes=self.backfill_runs + 1),
                end=first - timedelta(minutes=2),
                parallelism=4,
            )
            loaded = self.b_latencies(b_chain, b_user, self.flood_s)
            flood_end = timezone.now()
            out["b_flooded_s"] = _summary(loaded)
            out["b_flooded_parts_s"] = {k: _summary(v) for k, v in self.breakdown.items()}
            out["b_flooded_slowest"] = self.slowest
            self.say(f"  B's slowest under the flood: {self.slowest}")
            self.say(f"  B while A floods: {out['b_flooded_s']} {out['b_flooded_parts_s']}")
            lateness = list(
                ScheduleFiring.objects.filter(
                    flow_id__in=scheduled,
                    fire_time__gte=flood_start,
                    fire_time__lte=flood_end,
                    lateness__isnull=False,
                ).values_list("lateness", flat=True)
            )
            out["b_lateness_s"] = _summary(lateness)
            self.say(f"  B's scheduling lateness: {out['b_lateness_s']}")
            a_running = NodeRun.objects.filter(tenant=a, status="running").count()
            out["a_running_at_flood_end"] = a_running

            # 3. B idle: A's throughput and slot use.
            self.say(f"B idle: A's throughput over {self.idle_s}s ...")
            # A keeps more work waiting than it may run, so idle slots would be waste.
            for _ in range(self.flood_runs // 2):
                run_start(flow=blocking, mode="try", user=a_user)
            time.sleep(1.0)
            samples = []
            t0 = timezone.now()
            until = time.monotonic() + self.idle_s
            while time.monotonic() < until:
                samples.append(NodeRun.objects.filter(tenant=a, status="running").count())
                time.sleep(0.25)
            t1 = timezone.now()
            done = NodeRun.objects.filter(
                tenant=a, status="succeeded", finished_at__gte=t0, finished_at__lt=t1
            ).count()
            out["a_nodes_per_s_b_idle"] = round(done / (t1 - t0).total_seconds(), 2)
            out["a_slots_held_b_idle"] = round(statistics.mean(samples), 2) if samples else 0
            limit = state.default or self.concurrency
            out["a_slot_use_ratio"] = round(out["a_slots_held_b_idle"] / limit, 3)
            out["a_waiting_nodes_b_idle"] = NodeRun.objects.filter(
                tenant=a, status="waiting"
            ).count()
            self.say(
                f"  A: {out['a_nodes_per_s_b_idle']} nodes/s, holding "
                f"{out['a_slots_held_b_idle']} of its {limit} slots on average"
            )
            if out["a_waiting_nodes_b_idle"] == 0 and not samples:
                raise BenchmarkError("tenant A had nothing left to run while B was idle")
        finally:
            for proc in procs:
                proc.stop(group=False)
            self.server.close()
            self._stop_runs([t for t, _ in made])
            for tenant_id, user_id in made:
                _cleanup(tenant_id, user_id)
        b_alone, b_load = out["b_alone_s"], out["b_flooded_s"]
        for key in ("p50", "p99"):
            out[f"b_{key}_ratio"] = round(b_load[key] / b_alone[key], 2) if b_alone[key] else None
            out[f"b_{key}_extra_s"] = round(b_load[key] - b_alone[key], 3)
        out["database"] = connection.vendor
        out["load_average"] = [round(x, 2) for x in os.getloadavg()]
        return out

    def _stop_runs(self, tenant_ids) -> None:
        from operations.models import FlowRun, NodeRun

        # The scratch tenants are deleted next; nothing of theirs may still be sent.
        NodeRun.objects.filter(tenant_id__in=tenant_ids).exclude(status__in=TERMINAL).update(
            status="stopped"
        )
        FlowRun.objects.filter(tenant_id__in=tenant_ids).exclude(status__in=TERMINAL).update(
            status="stopped"
        )


def worker_reported() -> bool:
    from operations.services import slots

    return slots.live_slots() > 0


def run_fairness_benchmark(*, say: Callable[[str], None], quick: bool = False) -> dict:
    started = datetime.now(UTC)
    result = FairnessBenchmark(say, quick=quick).run()
    result["took_s"] = round((datetime.now(UTC) - started).total_seconds(), 1)
    return {f"fairness_{k}": v for k, v in result.items()}
