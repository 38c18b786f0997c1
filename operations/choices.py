"""Choices of runs, node runs and run events."""

from django.db import models

from flows.choices import ConcurrencyPolicy
from operations.engine import core


class RunMode(models.TextChoices):
    TRY = "try", "Try run"
    DRY = "dry", "Dry run"
    POINT_IN_TIME = "point_in_time", "Run at a point in time"
    TIME_RANGE = "time_range", "Run over a time range"
    SCHEDULED = "scheduled", "Scheduled run"


# Modes a user may start from the API (scheduled runs come from the schedule).
USER_MODES = (RunMode.TRY, RunMode.DRY, RunMode.POINT_IN_TIME, RunMode.TIME_RANGE)
USER_MODE_CHOICES = [(mode.value, mode.label) for mode in USER_MODES]


class RunTrigger(models.TextChoices):
    MANUAL = "manual", "Manual"
    API = "api", "API"
    SCHEDULE = "schedule", "Schedule"
    BACKFILL = "backfill", "Backfill (time range)"
    RERUN = "rerun", "Rerun"
    RESTORE = "restore", "Restore"
    SUBFLOW = "subflow", "Sub-flow of another run"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    WAITING = "waiting", "Waiting"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    STOPPED = "stopped", "Stopped"
    SKIPPED = "skipped", "Skipped"


RUN_ACTIVE = frozenset({RunStatus.QUEUED, RunStatus.WAITING, RunStatus.RUNNING, RunStatus.PAUSED})
RUN_TERMINAL = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.STOPPED, RunStatus.SKIPPED}
)


class DeadlineState(models.TextChoices):
    """A run against its deadline (null without one)."""

    ON_TIME = "on_time", "On time"
    AT_RISK = "at_risk", "At risk (predicted to miss its deadline)"
    MISSED = "missed", "Missed"


# Concurrency policies under which a run's nodes wait for the same nodes of the previous
# run (the engine's holds): the run "may hold" nodes back.
GATING_POLICIES = (ConcurrencyPolicy.PARALLEL_SAME_NODE, ConcurrencyPolicy.PARALLEL_DOWNSTREAM)


class NodeStatus(models.TextChoices):
    PENDING = core.PENDING, "Pending"
    WAITING = core.WAITING, "Waiting"
    QUEUED = core.QUEUED, "Queued"
    RUNNING = core.RUNNING, "Running"
    # Started, and waiting without a worker until its next check (wait, dependency_check):
    # running to the user, like Airflow's deferred tasks.
    DEFERRED = core.DEFERRED, "Running (waiting for its next check)"
    SUCCEEDED = core.SUCCEEDED, "Succeeded"
    FAILED = core.FAILED, "Failed"
    UPSTREAM_FAILED = core.UPSTREAM_FAILED, "Upstream failed"
    SKIPPED = core.SKIPPED, "Skipped"
    STOPPED = core.STOPPED, "Stopped"
    # Switched off on the node: not executed, its downstream takes it as succeeded.
    DISABLED = core.DISABLED, "Disabled"
    # Outside a node-scoped test run: never run, never a failure.
    NOT_RUN = core.NOT_RUN, "Not run (outside the test run's nodes)"


class WaitingReason(models.TextChoices):
    """Why a node that could start is held back (NodeRun.waiting_reason)."""

    NONE = "", "Not held back"
    CONCURRENCY_POLICY = core.HELD_BY_CONCURRENCY_POLICY, "The flow's concurrency policy"
    TENANT_LIMIT = core.HELD_BY_TENANT_LIMIT, "The tenant's limit of running nodes"
    POOL = core.HELD_BY_POOL, "A data source's pool is full"


class EventKind(models.TextChoices):
    RUN_CREATED = "run_created", "Run created"
    RUN_SKIPPED = "run_skipped", "Run skipped"
    RUN_STARTED = "run_started", "Run started"
    RUN_FINISHED = "run_finished", "Run finished"
    RUN_PAUSED = "run_paused", "Run paused"
    RUN_RESUMED = "run_resumed", "Run resumed"
    RUN_STOPPED = "run_stopped", "Run stopped"
    NODE_FAILED = "node_failed", "Node failed"
    NODE_RETRY = "node_retry", "Node retried"
    NODE_LOST = "node_lost", "Node's worker lost"
    NODE_RESENT = "node_resent", "Node re-sent to the broker"
    RUN_RERUN = "run_rerun", "Run rerun"
    RUN_RESTORED = "run_restored", "Run restored"
    NODE_RERUN_FROM = "node_rerun_from", "Rerun from node"
    NODE_MARKED_SUCCEEDED = "node_marked_succeeded", "Node marked succeeded"
    ALERT_SENT = "alert_sent", "Alert sent"


class OperationAction(models.TextChoices):
    """What an operator did, as the tenant's audit trail names it (OperationRecord.action)."""

    STOP = "stop", "Stop"
    PAUSE = "pause", "Pause"
    RESUME = "resume", "Resume"
    RERUN = "rerun", "Rerun"
    RESTORE = "restore", "Restore"
    RERUN_FROM = "rerun_from", "Rerun from a node"
    MARK_SUCCESS = "mark_success", "Mark a node succeeded"
    BACKFILL = "backfill", "Time-range run (backfill)"
    BULK = "bulk", "Bulk action"


# The run actions a bulk request may apply (POST /api/v1/runs/bulk/).
BULK_ACTIONS = (
    OperationAction.STOP,
    OperationAction.PAUSE,
    OperationAction.RESUME,
    OperationAction.RERUN,
    OperationAction.RESTORE,
)
