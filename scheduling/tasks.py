"""Celery entry points of scheduling: thin wrappers around the services."""

import logging

from celery import shared_task
from celery.signals import worker_process_init

from . import missed, services

logger = logging.getLogger("tributary.scheduling")


@worker_process_init.connect(weak=False)
def warm_plans(**_kwargs) -> None:
    """A new pool process parses the plans of scheduled flows before its first task."""
    try:
        logger.info("plan cache warmed with %d scheduled flows", services.plans_warm())
    except Exception:  # noqa: BLE001 - a cold cache is slower, not wrong
        logger.warning("could not warm the plan cache", exc_info=True)


@shared_task(
    name="scheduling.tasks.fire_schedule", ignore_result=True, time_limit=120, soft_time_limit=110
)
def fire_schedule(schedule_id: int) -> None:
    """Beat's wake-up for one schedule: fire its latest due fire time, once."""
    services.schedule_fire(schedule_id=schedule_id)


@shared_task(
    name="scheduling.tasks.fire_schedules", ignore_result=True, time_limit=300, soft_time_limit=290
)
def fire_schedules(schedule_ids: list[int]) -> None:
    """Beat's wake-up for the schedules due at one moment (scheduling.beat batches them)."""
    services.schedules_fire(schedule_ids=schedule_ids)


@shared_task(
    name="scheduling.tasks.sweep_due_schedules",
    ignore_result=True,
    time_limit=300,
    soft_time_limit=290,
)
def sweep_due_schedules() -> None:
    """Housekeeping: fire due fire times that beat skipped (still within the grace window),
    and report the ones that were missed to the webhooks subscribed to schedule.missed."""
    services.schedule_sweep()
    missed.schedules_report_missed()
