"""`manage.py benchmark`: the engine's figures (and, on request, scheduling and the flow API).

It prints a summary, then, as the last line, one JSON object with every figure (see
config/benchmark/engine.py, scheduling.py and api_scale.py for what each part measures)
and every verdict (config/benchmark/targets.py). It exits non-zero when a target is missed
(unless --allow-missed) or a part could not measure (a failed request, a run that did not
finish).
"""

from __future__ import annotations

import json
import os
import signal

from django.core.management.base import BaseCommand, CommandError

from config.benchmark import BenchmarkError, targets
from config.benchmark.engine import run_engine_benchmark


def _interrupt(*_args):
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Measure dispatch latency and node throughput of the run engine (starts its own worker)."

    def add_arguments(self, parser):
        parser.add_argument("--quick", action="store_true", help="A small, fast smoke version.")
        parser.add_argument("--pool", default="solo", choices=["prefork", "threads", "solo"])
        parser.add_argument(
            "--concurrency",
            type=int,
            default=None,
            help="Pool size of each worker (default: 1 solo, 2 prefork processes, 4 threads).",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="Worker processes to start (default: 2 with the solo pool, else 1).",
        )
        parser.add_argument("--keep", action="store_true", help="Keep the scratch tenant.")
        parser.add_argument(
            "--relaxed-commit",
            action="store_true",
            help="Workers commit node results without waiting for the disk "
            "(TRIBUTARY_DURABLE_RESULTS=0; see operations/conf.py for the trade-off).",
        )
        parser.add_argument("--no-worker", action="store_true", help="Use workers already running.")
        parser.add_argument(
            "--allow-missed",
            action="store_true",
            help="Exit 0 even when a target is missed (a smoke run on a slow machine).",
        )
        parser.add_argument(
            "--scheduling",
            action="store_true",
            help="Also measure scheduling lateness (1,000 every-minute schedules, ~3 minutes).",
        )
        parser.add_argument("--schedules", type=int, default=1000, help="With --scheduling.")
        parser.add_argument(
            "--api-scale",
            action="store_true",
            help="Also measure the flow API at 100,000 flows (scratch database, ~5 minutes).",
        )
        parser.add_argument("--flows", type=int, default=100_000, help="With --api-scale.")
        parser.add_argument(
            "--only",
            choices=["engine", "scheduling", "api-scale", "fairness"],
            default=None,
            help="Run one part only.",
        )

    def handle(
        self,
        *args,
        quick=False,
        pool="solo",
        concurrency=None,
        workers=None,
        keep=False,
        no_worker=False,
        relaxed_commit=False,
        allow_missed=False,
        **options,
    ):
        if relaxed_commit:
            os.environ["TRIBUTARY_DURABLE_RESULTS"] = "0"  # read by the workers started below
        only = options.get("only")
        parts = {
            "engine": only in (None, "engine"),
            "scheduling": only == "scheduling" or (only is None and options.get("scheduling")),
            "api-scale": only == "api-scale" or (only is None and options.get("api_scale")),
            "fairness": only == "fairness",
        }
        # A SIGTERM (e.g. `timeout`) must still stop the workers and remove the scratch data.
        previous = signal.signal(signal.SIGTERM, _interrupt)
        results: dict = {}
        try:
            if parts["scheduling"]:
                from config.benchmark.scheduling import run_scheduling_benchmark

                result = run_scheduling_benchmark(schedules=options["schedules"], progress=self.say)
                results.update({f"scheduling_{k}": v for k, v in result.items()})
            if parts["api-scale"]:
                from config.benchmark.api_scale import run_api_scale_benchmark

                results.update(run_api_scale_benchmark(flows=options["flows"], stdout=self.stdout))
            if parts["fairness"]:
                from config.benchmark.fairness import run_fairness_benchmark

                results.update(run_fairness_benchmark(say=self.say, quick=quick))
            if parts["engine"]:
                results.update(
                    run_engine_benchmark(
                        quick=quick,
                        pool=pool,
                        concurrency=concurrency,
                        workers=workers,
                        keep=keep,
                        no_worker=no_worker,
                        say=self.say,
                    )
                )
        except BenchmarkError as exc:
            raise CommandError(f"the benchmark failed: {exc}") from exc
        finally:
            signal.signal(signal.SIGTERM, previous)
        missed = self.report(results)
        if missed and not allow_missed:
            raise CommandError("targets missed: " + "; ".join(missed))

    def say(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def report(self, results: dict) -> list[str]:
        """Print the verdicts, then the JSON line; returns the targets missed."""
        verdicts = targets.verdicts(results)
        self.say(
            "targets: " + "; ".join(f"{name}: {'met' if ok else 'MISSED'}" for name, ok in verdicts)
        )
        results["targets"] = {name: ok for name, ok in verdicts}
        results["targets_met"] = all(ok for _, ok in verdicts)
        self.stdout.write(json.dumps(results, default=str))
        return [name for name, ok in verdicts if not ok]
