"""Writes on runs (STYLE.md services), one module per job:

- creation: test runs, time ranges and scheduled runs, and the concurrency policy that
  lets a new run join its flow's active runs;
- control: stop, pause, resume, rerun, restore, rerun from a node, mark a node succeeded;
- lifecycle: a node on a worker (claim, execute, record, retry, defer, lost);
- decisions: the engine's decision (operations.engine) applied under the run's lock;
- locking: the row locks, always taken in one order;
- store: the few SQL statements on the path of every node;
- logs, monitor, watchdog: logs and events, the per-worker watcher of running nodes, the
  periodic sweep;
- deadlines: a run's deadline, its state, and the sweep that alerts when one is predicted
  to be missed or is missed.

Beside them in operations: engine/ (the pure decision core every decision comes from),
plan.py (a run's parsed plan, cached per process) and dispatch.py (sending tasks by name),
which alerts and the selectors use too.
"""

from .control import (
    node_mark_success,
    node_rerun_from,
    run_pause,
    run_rerun,
    run_restore,
    run_resume,
    run_stop,
)
from .creation import (
    batch_advance,
    run_create_scheduled,
    run_start,
    runs_admit,
    runs_create_scheduled,
)
from .deadlines import deadline_check, deadline_state, deadline_sweep
from .decisions import run_evaluate
from .lifecycle import node_execute, node_lost
from .watchdog import watchdog_sweep

__all__ = [
    "batch_advance",
    "deadline_check",
    "deadline_state",
    "deadline_sweep",
    "node_execute",
    "node_lost",
    "node_mark_success",
    "node_rerun_from",
    "run_create_scheduled",
    "runs_create_scheduled",
    "run_evaluate",
    "run_pause",
    "run_rerun",
    "run_restore",
    "run_resume",
    "run_start",
    "run_stop",
    "runs_admit",
    "watchdog_sweep",
]
