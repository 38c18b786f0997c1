"""Choices of schedules: the form a schedule was written in and the state it is in."""

from django.db import models


class ScheduleKind(models.TextChoices):
    CRON = "cron", "Cron expression"
    MINUTES = "minutes", "Every N minutes"
    HOURS = "hours", "Every N hours"
    DAILY = "daily", "Daily at HH:MM"
    WEEKLY = "weekly", "Weekly on chosen days at HH:MM"
    MONTHLY = "monthly", "Monthly on chosen days at HH:MM"


class ScheduleState(models.TextChoices):
    ACTIVE = "active", "Active"
    DISABLED = "disabled", "Disabled"
    NOT_PUBLISHED = "not_published", "Flow not published"
    FROZEN = "frozen", "Flow frozen"
    ENDED = "ended", "Ended (no fire time left)"
    NOT_STARTED = "not_started", "Not started yet"


class FiringSource(models.TextChoices):
    BEAT = "beat", "celery beat"
    SWEEP = "sweep", "Sweep of due fire times"
