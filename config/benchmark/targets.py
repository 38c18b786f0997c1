"""Every target `manage.py benchmark` checks. Each verdict counts: targets_met is true only
when every target of every part that ran is met, and the command exits non-zero otherwise.

The engine's targets hold on any database and broker the README names; the figures the
issues quote for PostgreSQL + Redis (and how they compare with an earlier run) are read
from the JSON, not checked here.
"""

from __future__ import annotations

from collections.abc import Callable

Check = tuple[str, Callable[[dict], bool]]

ENGINE: list[Check] = [
    ("dispatch median <= 15 ms", lambda r: r["dispatch_ms"]["median"] <= 15),
    ("dispatch p99 <= 50 ms", lambda r: r["dispatch_ms"]["p99"] <= 50),
    (">= 100 nodes/s (wide)", lambda r: r["nodes_per_s_wide"] >= 100),
    (">= 100 nodes/s (concurrent)", lambda r: r["nodes_per_s_concurrent"] >= 100),
    ("chain20 <= 2x raw Celery", lambda r: r["chain20_ratio"] <= 2),
]
# Every hop through the broker: the same, but a chain pays one broker trip per node.
BROKER: list[Check] = [
    *ENGINE[:4],
    ("chain20 <= 4x raw Celery", lambda r: r["chain20_ratio"] <= 4),
]
CORE: list[Check] = [
    (
        "decide() over a 1,000-node run <= 50 ms per call",
        lambda r: r["decide_1000_ms"]["median"] <= 50,
    ),
    ("a month of every-minute fire times <= 3 s", lambda r: r["cron_month_s"] <= 3),
    ("an impossible calendar ends <= 1 s", lambda r: r["cron_impossible_s"] <= 1),
]


def _b_within(r: dict, key: str) -> bool:
    alone, flooded = r["fairness_b_alone_s"][key], r["fairness_b_flooded_s"][key]
    return flooded <= 1.5 * alone and flooded <= alone + 1.0


FAIRNESS: list[Check] = [
    (
        "fairness: B's p50 under A's flood <= 1.5x and <= +1 s of B alone",
        lambda r: _b_within(r, "p50"),
    ),
    (
        "fairness: B's p99 under A's flood <= 1.5x and <= +1 s of B alone",
        lambda r: _b_within(r, "p99"),
    ),
    (
        "fairness: B's scheduling lateness p50 <= 0.5 s and p99 <= 2 s",
        lambda r: (
            r["fairness_b_lateness_s"]["samples"] > 0
            and r["fairness_b_lateness_s"]["p50"] <= 0.5
            and r["fairness_b_lateness_s"]["p99"] <= 2
        ),
    ),
    (
        "fairness: A holds >= 80% of the slots it may hold while B is idle",
        lambda r: r["fairness_a_slot_use_ratio"] >= 0.8,
    ),
]


def verdicts(results: dict) -> list[tuple[str, bool]]:
    """(target, met) for every target of the parts that ran."""
    out: list[tuple[str, bool]] = []
    if "dispatch_ms" in results:
        out += [(name, check(results)) for name, check in ENGINE]
    if isinstance(results.get("broker"), dict):
        out += [(f"broker: {name}", check(results["broker"])) for name, check in BROKER]
    if "decide_1000_ms" in results:
        out += [(name, check(results)) for name, check in CORE]
    if "scheduling_passed" in results:
        out.append(
            (
                "scheduling: lateness p50 <= 0.5 s and p99 <= 2 s, edits reach beat in 5 s, "
                "every run once",
                bool(results["scheduling_passed"]),
            )
        )
    if "fairness_b_flooded_s" in results:
        out += [(name, check(results)) for name, check in FAIRNESS]
    if "api_p95_target_met" in results:
        out.append(("flow API p95 <= 150 ms at full size", bool(results["api_p95_target_met"])))
        out.append(("flow API query counts constant", bool(results["api_queries_constant"])))
    return out
