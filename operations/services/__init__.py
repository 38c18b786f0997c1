"""Writes on runs (STYLE.md services): creating runs, the orchestrator and run actions."""

from .actions import node_mark_success, node_rerun_from, run_rerun, run_restore
from .decisions import run_evaluate
from .runs import (
    batch_advance,
    range_fire_times,
    run_create_scheduled,
    run_pause,
    run_resume,
    run_start,
    run_stop,
    runs_create_scheduled,
)
from .runtime import node_execute, node_lost
from .watchdog import watchdog_sweep

__all__ = [
    "batch_advance",
    "node_execute",
    "node_lost",
    "node_mark_success",
    "node_rerun_from",
    "range_fire_times",
    "run_create_scheduled",
    "runs_create_scheduled",
    "run_evaluate",
    "run_pause",
    "run_rerun",
    "run_restore",
    "run_resume",
    "run_start",
    "run_stop",
    "watchdog_sweep",
]
