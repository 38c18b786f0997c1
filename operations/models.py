"""Runs of task flows, the runs of their nodes and the events of both.

These are append-only operational records (STYLE.md): no simple-history; every change
goes through operations.services under row locks.
"""

from django.conf import settings
from django.db import models

from accounts.models import Tenant, TenantOwned

from .choices import (
    EventKind,
    NodeStatus,
    OperationAction,
    RunMode,
    RunStatus,
    RunTrigger,
    WaitingReason,
)

LOG_LIMIT = 64 * 1024
LOG_TRUNCATED = "[log truncated]"


class FlowRun(TenantOwned):
    """One execution of a flow: a published version, or the editing snapshot of a test run."""

    # Runs are the busiest inserts (beat's minute): no index that a composite one below
    # already leads with, so the tenant and the flow have none of their own.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    flow = models.ForeignKey(
        "flows.TaskFlow", on_delete=models.CASCADE, related_name="runs", db_index=False
    )
    # RESTRICT: a version that ran stays, yet deleting the whole flow still deletes both.
    version = models.ForeignKey(
        "flows.FlowVersion", null=True, blank=True, on_delete=models.RESTRICT, related_name="runs"
    )
    # The editing version as it was when a test run was created (null when `version` is set).
    snapshot = models.JSONField(null=True, blank=True)
    # The run's parameter values, coerced to the declared types (flows.parameters.run_values).
    parameters = models.JSONField(default=dict, blank=True)
    mode = models.CharField(max_length=16, choices=RunMode.choices)
    trigger = models.CharField(max_length=16, choices=RunTrigger.choices, default=RunTrigger.MANUAL)
    business_time = models.DateTimeField()
    # Set for scheduled runs only: one run per (flow, fire time).
    fire_time = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Policies as they were when the run was created: editing the flow never changes a run.
    error_policy = models.CharField(max_length=32)
    concurrency_policy = models.CharField(max_length=32)
    # The run whose nodes gate this one's (parallel_same_node / parallel_downstream).
    previous_run = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="next_runs"
    )
    # Set when a later run is gated by this one, so finishing nodes know to wake it up.
    has_successors = models.BooleanField(default=False)
    # Time-range runs share a batch and start in batch_index order, `parallelism` at a time.
    batch = models.UUIDField(null=True, blank=True)
    batch_index = models.PositiveIntegerField(null=True, blank=True)
    parallelism = models.PositiveSmallIntegerField(default=1)
    # When the concurrency policy was applied and the run joined the flow's active runs.
    activated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=500, blank=True, default="")
    error = models.TextField(blank=True, default="")
    # Nodes of the run not yet in a terminal state: the run ends when it reaches 0.
    nodes_total = models.PositiveIntegerField(default=0)
    nodes_open = models.PositiveIntegerField(default=0)
    # A node-scoped test run: the ids of the nodes it runs (the others are not_run), and
    # its dependency checks pass without checking. None: a run of the whole flow.
    node_scope = models.JSONField(null=True, blank=True)
    # A child run started by a subflow/foreach node of another run (`parent_key`: which
    # of that node's children, e.g. a loop's item index; "" for a sub-flow).
    parent_run = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="child_runs"
    )
    parent_node_run = models.ForeignKey(
        "operations.NodeRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    parent_key = models.CharField(max_length=32, blank=True, default="")
    # When the run should be done (its version's deadline from its fire time); null without
    # one. Set once when the prediction first passes it ({"finish", "nodes"}), and when the
    # run was found still going at its deadline: each alerts once (services.deadlines).
    deadline_at = models.DateTimeField(null=True, blank=True)
    deadline_prediction = models.JSONField(null=True, blank=True)
    deadline_missed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["flow", "fire_time"],
                condition=models.Q(fire_time__isnull=False),
                name="flowrun_unique_fire_time",
            ),
            # A node run starts each of its children once (a repeated delivery finds it).
            models.UniqueConstraint(
                fields=["parent_node_run", "parent_key"],
                condition=models.Q(parent_node_run__isnull=False),
                name="flowrun_unique_child",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "status"], name="flowrun_tenant_status"),
            models.Index(fields=["tenant", "-created_at"], name="flowrun_tenant_created"),
            models.Index(fields=["flow", "-created_at"], name="flowrun_flow_created"),
            models.Index(fields=["flow", "status"], name="flowrun_flow_status"),
            # The O&M grid and the flow's trends read a flow's runs by business time.
            models.Index(fields=["flow", "business_time"], name="flowrun_flow_business"),
            models.Index(fields=["batch", "batch_index"], name="flowrun_batch"),
            # The deadline sweep (every second) reads only the runs whose deadline is open.
            models.Index(
                fields=["deadline_at"],
                name="flowrun_deadline_open",
                condition=models.Q(
                    deadline_at__isnull=False,
                    finished_at__isnull=True,
                    deadline_missed_at__isnull=True,
                ),
            ),
            # /metrics counts runs as they finish (monitoring.totals).
            models.Index(
                fields=["finished_at"],
                name="flowrun_finished",
                condition=models.Q(finished_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} of flow {self.flow_id} ({self.status})"


class NodeRun(TenantOwned):
    """One attempt of one node in a run; a retry is a new row with attempt + 1."""

    # Led by the (run, ...) and (tenant, status) indexes below: none of their own.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    run = models.ForeignKey(
        FlowRun, on_delete=models.CASCADE, related_name="node_runs", db_index=False
    )
    # No foreign key: the nodes of an old version may have been deleted since.
    node_id = models.BigIntegerField()
    node_name = models.CharField(max_length=128)
    node_type = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=NodeStatus.choices, default=NodeStatus.PENDING)
    # Why a waiting node is held back (empty when it is not): concurrency policy, tenant
    # limit or a data source's pool; `waiting_detail` says it in words (which pool).
    waiting_reason = models.CharField(
        max_length=32, choices=WaitingReason.choices, blank=True, default=WaitingReason.NONE
    )
    waiting_detail = models.CharField(max_length=200, blank=True, default="")
    # The data sources the node runs on (",3,7,"), set when a worker claims it under fair
    # share: a pool's use is the count of running nodes naming it.
    pools = models.CharField(max_length=200, blank=True, default="")
    attempt = models.PositiveSmallIntegerField(default=1)
    # The newest attempt of the node in its run: the one whose status is the node's status.
    is_latest = models.BooleanField(default=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # A retry waiting for its interval, or a deferred node's next check: sent at this time.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=255, blank=True, default="")
    task_id = models.CharField(max_length=64, blank=True, default="")
    rendered_config = models.JSONField(null=True, blank=True)
    output = models.JSONField(default=dict, blank=True)
    branch = models.CharField(max_length=8, null=True, blank=True)
    error = models.TextField(blank=True, default="")
    log = models.TextField(blank=True, default="")
    # What a deferred executor (wait, dependency_check) left for its next call.
    defer_state = models.JSONField(default=dict, blank=True)
    defer_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["run_id", "node_id", "attempt"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "node_id", "attempt"], name="noderun_unique_attempt"
            )
        ]
        indexes = [
            models.Index(fields=["run", "is_latest", "node_id"], name="noderun_run_latest"),
            models.Index(fields=["run", "status"], name="noderun_run_status"),
            models.Index(fields=["tenant", "status"], name="noderun_tenant_status"),
            models.Index(fields=["status", "heartbeat_at"], name="noderun_status_heartbeat"),
            models.Index(fields=["status", "queued_at"], name="noderun_status_queued"),
            # /metrics adds node durations to its histogram as they finish.
            models.Index(
                fields=["finished_at"],
                name="noderun_finished",
                condition=models.Q(finished_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.node_name} #{self.attempt} of run {self.run_id} ({self.status})"


class RunEvent(TenantOwned):
    """An append-only event of a run: created, started, paused, node failed, retried, ..."""

    # Led by the (run, at) index below.
    run = models.ForeignKey(
        FlowRun, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    node_run = models.ForeignKey(
        NodeRun, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    at = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=32, choices=EventKind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    message = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["run", "at"], name="runevent_run_at")]

    def __str__(self) -> str:
        return f"{self.kind} on run {self.run_id}"


# What an operator may say about an O&M action (the audit trail's "reason").
REASON_MAX_LENGTH = 500


class OperationRecord(TenantOwned):
    """One O&M action as the tenant's audit trail shows it: who, when, which run(s), why.

    Written by the control and creation services in the action's own transaction (a refused
    action leaves none). It outlives the runs and flow it names: their ids are kept without
    a database constraint, and the flow's name as it was.
    """

    at = models.DateTimeField(auto_now_add=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=16, choices=OperationAction.choices)
    # The run acted on; none for a backfill or a bulk request (their runs are in `detail`).
    run = models.ForeignKey(
        FlowRun,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    flow = models.ForeignKey(
        "flows.TaskFlow",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    flow_name = models.CharField(max_length=200, blank=True, default="")
    reason = models.CharField(max_length=REASON_MAX_LENGTH, blank=True, default="")
    # What the action did, as field changes: {"status": [old, new], "node": name, ...}.
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # The tenant's audit trail reads newest first.
            models.Index(fields=["tenant", "at"], name="oprecord_tenant_at"),
        ]

    def __str__(self) -> str:
        return f"{self.action} on run {self.run_id}" if self.run_id else self.action


class NotificationAttempt(TenantOwned):
    """One attempt to tell someone about a run (e-mail or webhook), with its outcome."""

    run = models.ForeignKey(FlowRun, on_delete=models.CASCADE, related_name="notifications")
    # failed | succeeded | overdue | deadline_risk | deadline_missed | node_failed | node_retry
    event = models.CharField(max_length=16)
    channel = models.CharField(max_length=8)  # email | webhook | slack | dingtalk | feishu | wecom
    target = models.CharField(max_length=2000)
    attempt = models.PositiveSmallIntegerField(default=1)
    ok = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["run", "event"], name="notifattempt_run_event"),
            # /metrics counts failed deliveries as they happen.
            models.Index(fields=["at"], name="notifattempt_at"),
        ]


class RunRequestKey(TenantOwned):
    """An `Idempotency-Key` of a request that started runs: the same key from the same tenant
    within IDEMPOTENCY_WINDOW answers with these runs instead of creating others."""

    key = models.CharField(max_length=255)
    flow = models.ForeignKey("flows.TaskFlow", on_delete=models.CASCADE, related_name="+")
    # SHA-256 of the request (flow and validated body): another body under the key is a 409.
    fingerprint = models.CharField(max_length=64)
    # The runs the first request created, in its order; `many` for a time range's list.
    run_ids = models.JSONField(default=list)
    many = models.BooleanField(default=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # What makes concurrent duplicates safe: the second INSERT waits for the first
            # transaction and then fails, and that request answers with the first's runs.
            models.UniqueConstraint(fields=["tenant", "key"], name="runrequestkey_unique_key")
        ]
        indexes = [models.Index(fields=["created_at"], name="runrequestkey_created")]

    def __str__(self) -> str:
        return f"idempotency key {self.key!r} of tenant {self.tenant_id}"


class WorkerSlots(models.Model):
    """A Celery worker as it reported itself: its pool size, at start and then periodically.

    The platform's worker slots (the base of the tenants' default limits) are the sum over
    the workers seen recently; a worker that stops cleanly removes its row.
    """

    name = models.CharField(max_length=255, unique=True)
    concurrency = models.PositiveIntegerField()
    started_at = models.DateTimeField(auto_now_add=True)
    seen_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.concurrency} slots)"
