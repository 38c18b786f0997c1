"""Engine benchmark: how fast the engine moves no-op nodes, against a raw Celery chain.

`run_engine_benchmark()` starts (and stops) its own Celery workers, creates a scratch tenant
with its flows on the configured database and broker, measures, removes the scratch data
and returns:

- dispatch_ms {median, p99}: upstream finished -> downstream started, on a 50-node chain;
- nodes_per_s_wide: node executions per second on a 1,000-node wide flow;
- nodes_per_s_concurrent: the same over 100 concurrent runs of a 10-node chain;
- chain20_s: a 20-node chain, run created -> run finished (median of nine, after warm-up runs);
- raw_celery_chain20_s: a Celery `chain` of 20 no-op tasks on the same broker and worker,
  sent -> last task done (it writes a marker file; no result backend), and chain20_ratio.

It measures twice, each time with workers of its own: with the engine's default settings
(the figures above, `hand_off` says whether a worker may go on with the next node itself,
skipping the broker), then under "broker" with TRIBUTARY_HAND_OFF_TO_SELF=0, where every
hop, and so every gap measured, goes through the broker. `decide_1000_ms` and
`cron_month_s` time the engine's pure parts in this process. `excluded` says what no
figure includes.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connection

from . import BenchmarkError
from .processes import CeleryProcess

TERMINAL = {"succeeded", "failed", "stopped", "skipped"}
WARM_UP_RUNS = 3


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _marker(name: str) -> Path:
    return Path(settings.VAR_DIR) / "benchmark" / name


def start_worker(pool: str, concurrency: int, name: str, env: dict | None = None) -> CeleryProcess:
    """A `celery -A config worker`, measured as deployed: without DEBUG's per-query
    bookkeeping unless DEBUG is set explicitly."""
    env = {**os.environ, **(env or {})}
    env.setdefault("DEBUG", "0")
    return CeleryProcess(
        "worker",
        [
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"{name}@%h",
        ],
        log=Path(settings.VAR_DIR) / "benchmark" / f"{name}.log",
        env=env,
    )


def wait_ready(worker: CeleryProcess, timeout: float = 60) -> None:
    """Ready when every worker has run a task: no-ops that leave marker files."""
    from .tasks import noop

    markers = [f"ready-{uuid.uuid4().hex}" for _ in range(4)]
    for marker in markers:
        noop.apply_async(args=[marker])
    deadline = time.monotonic() + timeout
    for marker in markers:
        path = _marker(marker)
        while not path.exists():
            if not worker.alive() or time.monotonic() > deadline:
                raise BenchmarkError(f"the worker did not start; see {worker.log}")
            time.sleep(0.05)
        path.unlink()


class EngineBenchmark:
    """The engine's measurements in a scratch tenant."""

    def __init__(self, say: Callable[[str], None]):
        self.say = say

    def scratch(self):
        from accounts.choices import Role
        from accounts.models import Membership, Tenant, User

        slug = f"benchmark-{uuid.uuid4().hex[:8]}"
        tenant = Tenant.objects.create(name="Benchmark (scratch)", slug=slug)
        user = User.objects.create(username=slug)
        Membership.objects.create(tenant=tenant, user=user, role=Role.ADMIN)
        return tenant, user

    def cleanup(self, tenant, user) -> None:
        from flows.models import TaskFlow

        for flow in TaskFlow.objects.filter(tenant=tenant):
            flow.delete()  # runs and node runs go with it
        tenant.delete()
        user.delete()

    def flow(self, tenant, user, name, nodes, edges, policy="ignore"):
        from flows.models import Edge, TaskFlow, TaskNode

        flow = TaskFlow.objects.create(
            tenant=tenant, owner=user, name=name, concurrency_policy=policy
        )
        made = {
            n: TaskNode.objects.create(tenant=tenant, flow=flow, name=n, type="noop") for n in nodes
        }
        for up, down in edges:
            Edge.objects.create(tenant=tenant, flow=flow, upstream=made[up], downstream=made[down])
        return flow

    def chain(self, tenant, user, name, length):
        names = [f"n{i:03d}" for i in range(length)]
        return self.flow(tenant, user, name, names, list(zip(names, names[1:], strict=False)))

    def start(self, flow, user):
        from operations.services import run_start

        return run_start(flow=flow, mode="try", user=user)

    def wait(self, runs, timeout: float = 600):
        from operations.models import FlowRun

        ids = [r.pk for r in runs]
        deadline = time.monotonic() + timeout
        while True:
            done = FlowRun.objects.filter(pk__in=ids, status__in=TERMINAL).count()
            if done == len(ids):
                break
            if time.monotonic() > deadline:
                raise BenchmarkError(f"runs did not finish within {timeout}s")
            # Every figure is read from the runs' own timestamps, not from this poll: poll
            # gently, so the instrument does not load the database it measures (a query
            # every 10 ms, as before, took CPU from the workers on a small machine).
            time.sleep(0.05)
        runs = list(FlowRun.objects.filter(pk__in=ids))
        bad = [r for r in runs if r.status != "succeeded"]
        if bad:
            raise BenchmarkError(f"run {bad[0].pk} ended {bad[0].status}: {bad[0].error}")
        return runs

    def measure(self, tenant, user, sizes) -> dict:
        from operations.models import NodeRun

        out: dict = {}
        # Not measured: the workers' first tasks parse plans and open connections.
        warm = self.chain(tenant, user, "warm-up", 5)
        for _ in range(WARM_UP_RUNS):
            self.wait([self.start(warm, user)])

        # Dispatch latency on a chain.
        chain = self.chain(tenant, user, f"dispatch-chain-{sizes['chain']}", sizes["chain"])
        gaps: list[float] = []
        for _ in range(sizes["chains"]):
            run = self.wait([self.start(chain, user)])[0]
            nodes = list(NodeRun.objects.filter(run=run).order_by("node_name"))
            gaps += [
                (b.started_at - a.finished_at).total_seconds() * 1000
                for a, b in zip(nodes, nodes[1:], strict=False)
            ]
        out["dispatch_ms"] = {
            "median": round(statistics.median(gaps), 2),
            "p99": round(percentile(gaps, 0.99), 2),
            "max": round(max(gaps), 2),
            "samples": len(gaps),
        }
        self.say(
            f"dispatch latency on a {sizes['chain']}-node chain: "
            f"median {out['dispatch_ms']['median']} ms, p99 {out['dispatch_ms']['p99']} ms"
        )

        # Throughput on one wide flow: root -> (wide - 2) parallel nodes -> sink.
        middle = [f"w{i:04d}" for i in range(sizes["wide"] - 2)]
        wide = self.flow(
            tenant,
            user,
            f"wide-{sizes['wide']}",
            ["root", *middle, "sink"],
            [("root", m) for m in middle] + [(m, "sink") for m in middle],
        )
        run = self.wait([self.start(wide, user)])[0]
        out["nodes_per_s_wide"] = round(self.throughput(NodeRun.objects.filter(run=run)), 1)
        out["wide_run_s"] = round((run.finished_at - run.created_at).total_seconds(), 3)
        self.say(
            f"{sizes['wide']}-node wide flow: {out['nodes_per_s_wide']} nodes/s "
            f"(run took {out['wide_run_s']} s)"
        )

        # Throughput over many concurrent runs of a short chain.
        short = self.chain(tenant, user, f"short-chain-{sizes['run_len']}", sizes["run_len"])
        runs = self.wait([self.start(short, user) for _ in range(sizes["runs"])])
        out["nodes_per_s_concurrent"] = round(
            self.throughput(NodeRun.objects.filter(run__in=runs)), 1
        )
        self.say(
            f"{sizes['runs']} concurrent runs of a {sizes['run_len']}-node chain: "
            f"{out['nodes_per_s_concurrent']} nodes/s"
        )

        # A 20-node chain end to end, then the same as a raw Celery chain.
        chain20 = self.chain(tenant, user, "chain-20", 20)
        # Not measured: a worker's first run of a new flow parses its plan (a raw Celery
        # chain has nothing to parse), which put one slow sample among the five before.
        for _ in range(WARM_UP_RUNS):
            self.wait([self.start(chain20, user)])
            self.raw_chain(20)
        ours = []
        for _ in range(sizes["reps"]):
            run = self.wait([self.start(chain20, user)])[0]
            ours.append((run.finished_at - run.created_at).total_seconds())
        raw = [self.raw_chain(20) for _ in range(sizes["reps"])]
        out["chain20_s"] = round(statistics.median(ours), 4)
        out["raw_celery_chain20_s"] = round(statistics.median(raw), 4)
        out["chain20_ratio"] = round(out["chain20_s"] / out["raw_celery_chain20_s"], 2)
        out["chain20_samples_s"] = [round(x, 4) for x in ours]
        out["raw_celery_chain20_samples_s"] = [round(x, 4) for x in raw]
        self.say(
            f"20-node chain: {out['chain20_s']} s; raw Celery chain of 20 no-op tasks: "
            f"{out['raw_celery_chain20_s']} s; ratio {out['chain20_ratio']}"
        )
        return out

    def throughput(self, node_runs) -> float:
        rows = list(node_runs.values_list("started_at", "finished_at"))
        span = (max(f for _, f in rows) - min(s for s, _ in rows)).total_seconds()
        return len(rows) / span if span > 0 else float("inf")

    def raw_chain(self, length: int) -> float:
        from celery import chain

        from .tasks import noop

        marker = uuid.uuid4().hex
        path = _marker(marker)
        signature = chain(*[noop.si() for _ in range(length - 1)], noop.si(marker))
        sent = time.time()
        signature.apply_async()
        deadline = time.monotonic() + 60
        while not path.exists():
            if time.monotonic() > deadline:
                raise BenchmarkError("the raw Celery chain did not finish within 60 s")
            time.sleep(0.001)
        done = float(path.read_text())
        path.unlink()
        return done - sent


def run_engine_benchmark(
    *,
    quick: bool,
    pool: str,
    concurrency: int | None,
    workers: int | None,
    keep: bool,
    no_worker: bool,
    say: Callable[[str], None],
) -> dict:
    """Measure with the default settings, then through the broker only; see the module."""
    from operations import conf

    if settings.CELERY_BROKER_URL.startswith("memory://"):
        raise BenchmarkError("The benchmark needs a real broker (Redis or the filesystem).")
    concurrency = concurrency or (4 if pool == "threads" else 2 if pool == "prefork" else 1)
    workers = workers or (2 if pool == "solo" else 1)
    sizes = (
        {"chain": 10, "chains": 1, "wide": 100, "runs": 10, "run_len": 10, "reps": 2}
        if quick
        else {"chain": 50, "chains": 2, "wide": 1000, "runs": 100, "run_len": 10, "reps": 9}
    )
    say(
        f"database: {connection.vendor} {connection.settings_dict.get('NAME')}; "
        f"broker: {settings.CELERY_BROKER_URL.split('@')[-1]}; "
        f"{workers} worker(s), pool {pool} x {concurrency}"
    )
    hand_off = bool(conf.get("TRIBUTARY_HAND_OFF_TO_SELF"))
    excluded = [
        f"{WARM_UP_RUNS} warm-up runs of a 5-node chain per set of workers "
        "(their first tasks parse plans and open connections)",
        "starting and stopping the workers, creating the flows and the scratch tenant",
        f"{WARM_UP_RUNS} warm-up runs of the 20-node chain and of the raw Celery chain before "
        "theirs are timed (a worker's first run of a new flow parses its plan)",
    ]
    bench = EngineBenchmark(say)
    run = (pool, concurrency, workers, no_worker, keep, sizes)
    say(f"-- the engine's default settings (hand-off to self: {'on' if hand_off else 'off'})")
    results = _with_workers(bench, *run)
    if no_worker:
        excluded.append(
            "the 'broker' figures: --no-worker uses workers already running, whose "
            "hand-off setting the benchmark cannot change"
        )
    elif hand_off:
        say("-- every hop through the broker (TRIBUTARY_HAND_OFF_TO_SELF=0)")
        results["broker"] = _with_workers(bench, *run, env={"TRIBUTARY_HAND_OFF_TO_SELF": "0"})
    else:
        results["broker"] = dict(results)  # every hop went through the broker already
    results.update(measure_core(say))
    results.update(
        {
            "hand_off": hand_off,
            "pool": pool,
            "concurrency": concurrency,
            "workers": workers,
            "quick": quick,
            "durable_results": bool(conf.get("TRIBUTARY_DURABLE_RESULTS")),
            "database": connection.vendor,
            "broker_transport": settings.CELERY_BROKER_URL.split("://")[0],
            "excluded": excluded,
        }
    )
    return results


def _with_workers(bench, pool, concurrency, workers, no_worker, keep, sizes, env=None) -> dict:
    """Start a set of workers (unless told not to), measure in a scratch tenant of its own,
    stop them and remove the tenant."""
    from operations.services import slots

    tenant, user = bench.scratch()
    started: list[CeleryProcess] = []
    try:
        if not no_worker:
            tag = uuid.uuid4().hex[:6]
            for i in range(workers):
                name = f"benchmark-{os.getpid()}-{tag}-{i}"
                started.append(start_worker(pool, concurrency, name, env))
            for worker in started:
                wait_ready(worker)
        out = bench.measure(tenant, user, sizes)
        # Whether fair share applied (another tenant has flows, or a limit or pool is set):
        # its claims cost a statement or two more per node.
        out["fair_share"] = slots.read_state().active
        bench.say(f"fair share: {'on' if out['fair_share'] else 'off'}")
        return out
    finally:
        for worker in started:
            worker.stop(group=False)
        if not keep:
            bench.cleanup(tenant, user)


def measure_core(say: Callable[[str], None]) -> dict:
    """The engine's pure parts, in this process: a decision over a 1,000-node run, a month of
    every-minute fire times."""
    import random
    from datetime import date, datetime, timedelta
    from zoneinfo import ZoneInfo

    from operations.engine.core import ACTIVE, COMPLETE_UNRELATED, PENDING, SUCCEEDED, Dag, decide
    from operations.engine.core import apply as apply_decision
    from scheduling.cron import CronSpec, fire_times

    rnd = random.Random(7)
    n = 1000
    edges = {(i, j) for j in range(1, n) for i in rnd.sample(range(j), min(j, 3))}
    dag = Dag.build(range(n), edges)
    states = dict.fromkeys(dag.nodes, PENDING)
    calls = []
    while True:
        started = time.perf_counter()
        d = decide(dag, states, policy=COMPLETE_UNRELATED)
        calls.append((time.perf_counter() - started) * 1000)
        states = apply_decision(states, d)
        if d.run_status:
            break
        states |= {node: SUCCEEDED for node, s in states.items() if s in ACTIVE}
    berlin = ZoneInfo("Europe/Berlin")
    started = time.perf_counter()
    month = list(
        fire_times(
            "*/1 * * * *",
            "Europe/Berlin",
            after=datetime(2024, 3, 1, tzinfo=berlin) - timedelta(minutes=1),
            end_date=date(2024, 3, 31),
        )
    )
    cron_month_s = time.perf_counter() - started
    # A calendar with no day at all (Feb 30): the day walk must end, and quickly.
    started = time.perf_counter()
    impossible = CronSpec(
        "0", "0", "30", "2", "*",
        frozenset({0}), frozenset({0}), frozenset({30}), frozenset({2}), frozenset(range(7)),
    )  # fmt: skip
    if list(fire_times(impossible, "UTC", after=datetime(2024, 1, 1, tzinfo=berlin))):
        raise BenchmarkError("a calendar without any day yielded fire times")
    cron_impossible_s = time.perf_counter() - started
    out = {
        "decide_1000_ms": {
            "median": round(statistics.median(calls), 3),
            "max": round(max(calls), 3),
            "calls": len(calls),
        },
        "cron_month_s": round(cron_month_s, 3),
        "cron_impossible_s": round(cron_impossible_s, 3),
        "cron_month_fire_times": len(month),
    }
    say(
        f"decide() over a 1,000-node run: median {out['decide_1000_ms']['median']} ms per call; "
        f"a month of every-minute fire times: {out['cron_month_s']} s"
    )
    return out
