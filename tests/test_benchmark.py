"""`manage.py benchmark` counts every verdict and exits non-zero when a target is missed.

The parts are replaced by canned figures here (measuring is the integration smoke test's,
tests/operations/test_workers.py): what is checked is the command's own honesty.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from config.benchmark import BenchmarkError, targets
from config.benchmark.management.commands import benchmark


def engine_figures(**overrides) -> dict:
    good = {
        "dispatch_ms": {"median": 1.0, "p99": 5.0},
        "nodes_per_s_wide": 400.0,
        "nodes_per_s_concurrent": 500.0,
        "chain20_ratio": 1.2,
        "decide_1000_ms": {"median": 3.0},
        "cron_month_s": 0.5,
        "cron_impossible_s": 0.1,
        "hand_off": True,
    }
    good["broker"] = {**good, "chain20_ratio": 3.0}
    good.update(overrides)
    return good


@pytest.fixture
def canned(monkeypatch):
    def use(engine=None, scheduling=None):
        monkeypatch.setattr(benchmark, "run_engine_benchmark", lambda **_: engine)
        monkeypatch.setattr(
            "config.benchmark.scheduling.run_scheduling_benchmark", lambda **_: scheduling
        )

    return use


def run(*args) -> tuple[dict, str | None]:
    out = io.StringIO()
    error = None
    try:
        call_command("benchmark", *args, stdout=out)
    except CommandError as exc:
        error = str(exc)
    return json.loads(out.getvalue().strip().splitlines()[-1]), error


def test_all_targets_met_exits_zero(canned):
    canned(engine=engine_figures())
    figures, error = run()
    assert error is None and figures["targets_met"] is True


def test_a_missed_engine_target_exits_non_zero(canned):
    canned(engine=engine_figures(nodes_per_s_concurrent=50.0))
    figures, error = run()
    assert figures["targets_met"] is False
    assert figures["targets"][">= 100 nodes/s (concurrent)"] is False
    assert error == "targets missed: >= 100 nodes/s (concurrent)"
    # A smoke run may say so and still exit 0.
    assert run("--allow-missed")[1] is None


def test_the_broker_figures_have_targets_of_their_own(canned):
    figures = engine_figures()
    figures["broker"]["chain20_ratio"] = 5.0
    canned(engine=figures)
    assert run()[1] == "targets missed: broker: chain20 <= 4x raw Celery"


def test_the_scheduling_verdict_counts_too(canned):
    canned(engine=engine_figures(), scheduling={"passed": False, "lateness_s": {"p50": 9.0}})
    figures, error = run("--scheduling")
    assert figures["targets_met"] is False and "scheduling" in error


def test_a_part_that_could_not_measure_fails_the_benchmark(monkeypatch):
    def broken(**_):
        raise BenchmarkError("/api/v1/flows/ as member: HTTP 500")

    monkeypatch.setattr(benchmark, "run_engine_benchmark", broken)
    with pytest.raises(CommandError, match="HTTP 500"):
        call_command("benchmark", stdout=io.StringIO())


def test_every_part_that_ran_has_its_verdicts():
    names = [
        name
        for name, _ in targets.verdicts({"api_p95_target_met": True, "api_queries_constant": False})
    ]
    assert names == ["flow API p95 <= 150 ms at full size", "flow API query counts constant"]
