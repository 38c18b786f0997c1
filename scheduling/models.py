"""A flow's schedule and the ledger of the fire times it fired."""

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from accounts.models import TenantOwned

from .choices import FiringSource, ScheduleKind

PERIODIC_TASK_PREFIX = "flow-schedule:"


class Schedule(TenantOwned):
    """When a flow runs: a 5-field cron (or a simple form turned into one), a window and a zone.

    The user-set fields are the draft: users edit them like the rest of the flow's editing
    version. What fires is `published`, the schedule as the flow's published version holds
    it (PRODUCT.md: scheduled runs use the published version, and the schedule is part of
    what is published), so a schedule edit takes effect when the flow is published.
    """

    flow = models.OneToOneField("flows.TaskFlow", on_delete=models.CASCADE, related_name="schedule")
    enabled = models.BooleanField(default=True)
    # The simple form the user chose (kept so the console can show it again); `cron` is
    # always the expression that fires, derived from the simple form when there is one.
    kind = models.CharField(max_length=16, choices=ScheduleKind.choices, default=ScheduleKind.CRON)
    cron = models.CharField(max_length=255, help_text="minute hour day-of-month month day-of-week")
    interval = models.PositiveSmallIntegerField(null=True, blank=True)
    time = models.TimeField(null=True, blank=True)
    days = models.JSONField(default=list, blank=True)
    start_date = models.DateField(help_text="First day (inclusive) in the schedule's time zone.")
    end_date = models.DateField(
        null=True, blank=True, help_text="Last day (inclusive) in the schedule's time zone."
    )
    timezone = models.CharField(max_length=64, default="UTC", help_text="IANA time zone name.")
    # When the schedule last started firing (published, enabled, not frozen, or a new
    # calendar published): fire times before it are never fired late. Bookkeeping, not config.
    active_since = models.DateTimeField(null=True, blank=True, editable=False)
    # The schedule that fires: the `schedule` of the published version's snapshot
    # (as_snapshot() shape), None while the published version holds no schedule. Kept in
    # step by scheduling.services.schedule_sync; bookkeeping, not config.
    published = models.JSONField(null=True, blank=True, editable=False)
    # The version `published` was copied from (a new published version replaces it).
    published_version = models.ForeignKey(
        "flows.FlowVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(
        excluded_fields=["updated_at", "active_since", "published", "published_version"]
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=F("start_date")),
                name="schedule_end_not_before_start",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "enabled"], name="schedule_tenant_enabled")]

    def __str__(self) -> str:
        return f"{self.cron} ({self.timezone})"

    @property
    def periodic_task_name(self) -> str:
        return f"{PERIODIC_TASK_PREFIX}{self.pk}"

    def as_snapshot(self) -> dict:
        """The user-set fields, as a published version stores them."""
        return {
            "enabled": self.enabled,
            "kind": self.kind,
            "cron": self.cron,
            "interval": self.interval,
            "time": self.time.strftime("%H:%M") if self.time else None,
            "days": list(self.days or []),
            "start_date": self.start_date.isoformat() if self.start_date else None,
            "end_date": self.end_date.isoformat() if self.end_date else None,
            "timezone": self.timezone,
        }

    @property
    def published_enabled(self) -> bool:
        """Whether the published schedule is enabled (False while none is published)."""
        return bool(self.published and self.published.get("enabled"))

    @property
    def draft_differs(self) -> bool:
        """Whether the draft (the fields users edit) differs from the published schedule."""
        return self.published_version_id is not None and self.as_snapshot() != self.published


class ScheduleFiring(TenantOwned):
    """One fire time a schedule fired: at most one per flow and fire time (append-only)."""

    # Led by the unique (flow, fire time) constraint: no index of its own.
    flow = models.ForeignKey(
        "flows.TaskFlow", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="firings")
    fire_time = models.DateTimeField()
    source = models.CharField(max_length=8, choices=FiringSource.choices, default=FiringSource.BEAT)
    # When the fire task (or the sweep) got to this fire time, before the run was created.
    fired_at = models.DateTimeField(default=timezone.now)
    # operations.FlowRun id (no foreign key: runs are the engine's records, kept apart).
    run_id = models.BigIntegerField(null=True, blank=True)
    # Seconds from the fire time to the run being created: the scheduling lateness.
    lateness = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-fire_time"]
        constraints = [
            models.UniqueConstraint(
                fields=["flow", "fire_time"], name="schedulefiring_unique_flow_fire_time"
            ),
        ]
        indexes = [models.Index(fields=["fire_time"], name="schedulefiring_fire_time")]

    def __str__(self) -> str:
        return f"flow {self.flow_id} @ {self.fire_time.isoformat()}"
