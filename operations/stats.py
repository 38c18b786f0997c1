"""Duration trends of a flow: each node's p50/p90 over its last successful runs, and the
runs that took more than twice the p90 of the runs before them (at least MIN_HISTORY
runs before, and at least MIN_EXCESS_S longer, so jitter of quick runs is no alarm).

Read in three queries whatever N (the flow, its last N successful runs, their nodes'
latest attempts). Dry runs are left out: they do no work, so their durations say nothing.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from flows.models import TaskFlow

from .choices import NodeStatus, RunMode, RunStatus
from .models import FlowRun, NodeRun

DEFAULT_LAST = 30
MAX_LAST = 200
# A run is judged against at least this many runs before it (fewer say too little).
MIN_HISTORY = 3
SLOW_FACTOR = 2
# ... and at least this much longer, so millisecond jitter of quick runs is not "slow".
MIN_EXCESS_S = 1.0


def percentile(values: list[float], p: int) -> float | None:
    """The p-th percentile (p in 1..99) by linear interpolation between closest ranks."""
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 3)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return round(cuts[p - 1], 3)


def is_slow(seconds: float, p90_before: float | None) -> bool:
    """More than twice the p90 of the runs before (and a second longer at least)."""
    if p90_before is None:
        return False
    return seconds > SLOW_FACTOR * p90_before and seconds - p90_before >= MIN_EXCESS_S


@dataclass
class NodeTrend:
    node: int
    node_name: str
    node_type: str
    # (run id, seconds), oldest first.
    durations: list[tuple[int, float]] = field(default_factory=list)

    @property
    def seconds(self) -> list[float]:
        return [d for _run, d in self.durations]


def _seconds(started, finished) -> float:
    return round((finished - started).total_seconds(), 3)


def _recent(flow_id: int, last: int) -> tuple[list[dict], dict[int, NodeTrend], dict]:
    """The flow's last `last` successful runs (oldest first), each node's durations in them,
    and {run id: {node id: seconds}}: two queries."""
    runs = list(
        FlowRun.objects.filter(
            flow_id=flow_id,
            status=RunStatus.SUCCEEDED,
            started_at__isnull=False,
            finished_at__isnull=False,
        )
        .exclude(mode=RunMode.DRY)
        .order_by("-created_at", "-id")
        .values("id", "mode", "business_time", "started_at", "finished_at")[:last]
    )
    runs.reverse()
    nodes: dict[int, NodeTrend] = {}
    by_run: dict[int, dict[int, float]] = {r["id"]: {} for r in runs}
    if runs:
        attempts = (
            NodeRun.objects.filter(
                run_id__in=list(by_run),
                is_latest=True,
                status=NodeStatus.SUCCEEDED,
                started_at__isnull=False,
                finished_at__isnull=False,
            )
            .order_by("run_id", "node_id")
            .values_list("run_id", "node_id", "node_name", "node_type", "started_at", "finished_at")
        )
        for run_id, node_id, name, node_type, started, finished in attempts:
            trend = nodes.get(node_id)
            if trend is None:
                trend = nodes[node_id] = NodeTrend(
                    node=node_id, node_name=name, node_type=node_type
                )
            # Runs come oldest first: the newest name of a renamed node wins.
            trend.node_name, trend.node_type = name, node_type
            seconds = _seconds(started, finished)
            trend.durations.append((run_id, seconds))
            by_run[run_id][node_id] = seconds
    return runs, nodes, by_run


def node_p90s(*, flow_id: int, last: int = DEFAULT_LAST) -> dict[int, float]:
    """Each node's p90 duration over the flow's last `last` successful runs (as the trends
    show it): what a deadline's prediction counts for a node still to run."""
    _runs, nodes, _by_run = _recent(flow_id, last)
    return {n: percentile(t.seconds, 90) for n, t in nodes.items()}


def flow_stats(*, flow: TaskFlow, last: int = DEFAULT_LAST) -> dict:
    """Durations of the flow's last `last` successful runs (oldest first), per node too."""
    runs, nodes, by_run = _recent(flow.pk, last)

    run_rows, flagged, history = [], [], []
    node_history: dict[int, list[float]] = {n: [] for n in nodes}
    for run in runs:
        seconds = _seconds(run["started_at"], run["finished_at"])
        p90_before = percentile(history, 90) if len(history) >= MIN_HISTORY else None
        slow = is_slow(seconds, p90_before)
        run_rows.append(
            {
                "id": run["id"],
                "mode": run["mode"],
                "business_time": run["business_time"],
                "started_at": run["started_at"],
                "duration_s": seconds,
                "flagged": slow,
            }
        )
        if slow:
            flagged.append(
                {
                    "run": run["id"],
                    "duration_s": seconds,
                    "p90_before_s": p90_before,
                    "slow_nodes": _slow_nodes(by_run[run["id"]], node_history, nodes),
                }
            )
        history.append(seconds)
        for node_id, node_seconds in by_run[run["id"]].items():
            node_history[node_id].append(node_seconds)

    durations = [row["duration_s"] for row in run_rows]
    return {
        "flow": flow.pk,
        "last": last,
        "runs": run_rows,
        "duration": {
            "count": len(durations),
            "p50_s": percentile(durations, 50),
            "p90_s": percentile(durations, 90),
        },
        "nodes": [
            {
                "node": t.node,
                "node_name": t.node_name,
                "node_type": t.node_type,
                "count": len(t.durations),
                "p50_s": percentile(t.seconds, 50),
                "p90_s": percentile(t.seconds, 90),
                "durations": [{"run": r, "duration_s": d} for r, d in t.durations],
            }
            for t in sorted(
                nodes.values(), key=lambda t: (-(percentile(t.seconds, 90) or 0), t.node)
            )
        ],
        "flagged": flagged,
        "min_history": MIN_HISTORY,
        "min_excess_s": MIN_EXCESS_S,
    }


def _slow_nodes(
    durations: dict[int, float], history: dict[int, list[float]], nodes: dict[int, NodeTrend]
) -> list[dict]:
    """Nodes of one run that also took more than twice their own p90 of the runs before."""
    out = []
    for node_id, seconds in sorted(durations.items()):
        earlier = history[node_id]
        p90 = percentile(earlier, 90) if len(earlier) >= MIN_HISTORY else None
        if is_slow(seconds, p90):
            out.append(
                {
                    "node": node_id,
                    "node_name": nodes[node_id].node_name,
                    "duration_s": seconds,
                    "p90_before_s": p90,
                }
            )
    return out
