"""Writes of schedules: save one, keep celery beat in step, fire due fire times, delete.

What users save is the draft; what fires is the published copy (`Schedule.published`), the
schedule of the flow's published version, which `schedule_sync` takes from that version
when the flow is published. A schedule edit therefore takes effect when the flow is
published, like every other edit of the flow (PRODUCT.md, Versions).

Firing rules (PRODUCT.md, Scheduling): our calendar (scheduling.cron) decides the fire
times, never beat's `start_time`/`expires`. Beat only wakes us up; each wake-up fires the
latest fire time that is due, at most GRACE late, and no earlier than when the schedule
last became active. The engine creates at most one run per (flow, fire time), so a second
beat, a redelivery or the sweep is a no-op; a ScheduleFiring row committed with the run
records which fire time fired, by whom (beat or sweep) and how late.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone as djtz
from django_celery_beat.models import CrontabSchedule, PeriodicTask, PeriodicTasks

from flows import hooks
from flows.choices import FlowStatus
from flows.models import FlowVersion, TaskFlow

from .choices import FiringSource
from .cron import parse_cron
from .models import PERIODIC_TASK_PREFIX, Schedule, ScheduleFiring
from .spec import ScheduleSpec, build_spec, published_spec

logger = logging.getLogger("tributary.scheduling")

FIRE_TASK = "scheduling.tasks.fire_schedule"
# A fire time more than GRACE old when we get to it is missed, not fired late.
GRACE = timedelta(minutes=5)
# Beat may wake us a moment before the fire time (clock skew, rounding).
EARLY_TOLERANCE = timedelta(seconds=3)
# The sweep leaves the most recent seconds to beat, so the two rarely race.
SWEEP_SETTLE = timedelta(seconds=10)
# Fire times the sweep creates runs for per transaction.
SWEEP_BATCH = 100

_USER_FIELDS = (
    "enabled", "kind", "cron", "interval", "time", "days", "start_date", "end_date", "timezone",
)  # fmt: skip
# The keys of a published schedule that make its calendar (published_spec).
_CALENDAR_KEY = ("kind", "cron", "interval", "time", "days", "start_date", "end_date", "timezone")
# What firing reads of a schedule (published_spec, schedule_is_firing, the ledger row).
_FIRE_FIELDS = ("tenant_id", "flow", "active_since", "published")


def schedule_is_firing(*, schedule: Schedule, flow: TaskFlow) -> bool:
    """Whether beat should fire this schedule: its published copy enabled, the flow
    published and not frozen."""
    return bool(
        schedule.published_enabled and flow.status == FlowStatus.PUBLISHED and not flow.is_frozen
    )


def _calendar(published: dict | None) -> tuple:
    """The calendar of a published schedule (what decides its fire times), hashable."""
    data = published or {}
    return tuple(tuple(data.get(k) or ()) if k == "days" else data.get(k) for k in _CALENDAR_KEY)


# --------------------------------------------------------------------------- save


def _mark_flow_edited(flow: TaskFlow) -> None:
    """A schedule edit is an edit of the flow's editing version (unpublished changes)."""
    from flows.services import flow_touch  # flows' services import this module's hooks

    flow_touch(flow=flow)


def schedule_save(
    *,
    flow: TaskFlow,
    user=None,
    enabled: bool | None = None,
    cron: str | None = None,
    kind: str | None = None,
    interval: object = None,
    time: object = None,
    days: object = None,
    start_date: date | None = None,
    end_date: date | None = None,
    timezone: str | None = None,
    now: datetime | None = None,
) -> Schedule:
    """Create or replace the flow's schedule (PUT semantics) and bring beat in step.

    Omitted `enabled`, `timezone` and `start_date` keep the saved values (new schedules:
    enabled, UTC, today in the schedule's zone). This saves the draft: it marks the flow
    changed, and fires once the flow is published (the published copy fires until then).
    """
    now = now or djtz.now()
    with transaction.atomic():
        locked = TaskFlow.objects.select_for_update().get(pk=flow.pk)
        schedule = Schedule.objects.filter(flow=locked).first()
        if enabled is None:
            enabled = schedule.enabled if schedule is not None else True
        spec: ScheduleSpec = build_spec(
            cron=cron,
            kind=kind,
            interval=interval,
            time=time,
            days=days,
            start_date=start_date,
            end_date=end_date,
            timezone=timezone or (schedule.timezone if schedule is not None else "UTC"),
            default_start=schedule.start_date if schedule is not None else None,
        )
        wanted = {
            "enabled": bool(enabled),
            "kind": spec.kind,
            "cron": spec.cron,
            "interval": spec.interval,
            "time": spec.time,
            "days": spec.days,
            "start_date": spec.start_date,
            "end_date": spec.end_date,
            "timezone": spec.timezone,
        }
        if schedule is None:
            schedule = Schedule(tenant_id=locked.tenant_id, flow=locked, **wanted)
            changed = list(_USER_FIELDS)
        else:
            changed = [f for f, v in wanted.items() if getattr(schedule, f) != v]
            for field in changed:
                setattr(schedule, field, wanted[field])
        if changed:
            schedule._history_user = user
            schedule._change_reason = "schedule saved"
            schedule.full_clean(exclude=["flow", "tenant"], validate_unique=False)
            schedule.save()
            _mark_flow_edited(locked)
        _sync_schedule(schedule=schedule, flow=locked, now=now)
    return schedule


def schedule_import(*, flow: TaskFlow, data: dict, user=None) -> Schedule:
    """Save a schedule from an exported flow document (`Schedule.as_snapshot()` shape)."""
    fields = {k: data.get(k) for k in ("cron", "kind", "interval", "time", "days", "end_date")}
    start_date = data.get("start_date")
    end_date = fields.pop("end_date")
    try:
        start_date = date.fromisoformat(start_date) if isinstance(start_date, str) else start_date
        end_date = date.fromisoformat(end_date) if isinstance(end_date, str) else end_date
    except ValueError as exc:
        raise ValidationError({"schedule": [f"dates must be YYYY-MM-DD: {exc}"]}) from exc
    try:
        return schedule_save(
            flow=flow,
            user=user,
            enabled=data.get("enabled", True) is not False,
            start_date=start_date,
            end_date=end_date,
            timezone=data.get("timezone") or "UTC",
            **fields,
        )
    except ValidationError as exc:
        messages = [f"{field}: {m}" for field, msgs in exc.message_dict.items() for m in msgs]
        raise ValidationError({"schedule": messages}) from exc


# --------------------------------------------------------------------------- beat sync


def _save_task(task: PeriodicTask) -> None:
    # PeriodicTask.save() bumps PeriodicTasks twice (its own call and a pre_save signal);
    # silence both and bump once.
    task.no_changes = True
    task.save()
    PeriodicTasks.update_changed()


def _crontab_for(schedule: ScheduleSpec) -> CrontabSchedule:
    """The CrontabSchedule row with the schedule's 5 fields and zone, reused when it exists."""
    spec = parse_cron(schedule.cron)
    fields = {
        "minute": spec.minute,
        "hour": spec.hour,
        "day_of_month": spec.day_of_month,
        "month_of_year": spec.month_of_year,
        "day_of_week": spec.day_of_week,
        "timezone": ZoneInfo(schedule.timezone),
    }
    crontab = CrontabSchedule.objects.filter(**fields).order_by("pk").first()
    if crontab is None:
        crontab = CrontabSchedule.objects.create(**fields)
    return crontab


def _set_active_since(schedule: Schedule, value: datetime | None) -> None:
    schedule.active_since = value
    # Bookkeeping only (excluded from history): no history row for it.
    schedule.save_without_historical_record(update_fields=["active_since"])


def schedule_sync(*, flow: TaskFlow, now: datetime | None = None) -> PeriodicTask | None:
    """Keep the flow's published schedule and its one beat entry in step with the flow's
    published version and state; idempotent.

    Called by the services that publish, unpublish, freeze, unfreeze or edit a flow or
    its schedule, inside their transaction. `flow` is taken as the caller saved it.
    """
    schedule = Schedule.objects.filter(flow_id=flow.pk).first()
    if schedule is None:
        return None
    return _sync_schedule(schedule=schedule, flow=flow, now=now)


def _refresh_published(schedule: Schedule, flow: TaskFlow, now: datetime | None) -> None:
    """Copy the schedule of the flow's published version into `schedule.published`, once
    per published version: publishing (or making an older version the published one)
    brings that version's schedule; an edit of the draft changes nothing that fires."""
    version_id = flow.published_version_id
    if schedule.published_version_id == version_id:
        return
    published = None
    if version_id is not None:
        snapshot = (
            FlowVersion.objects.filter(pk=version_id).values_list("snapshot", flat=True).first()
        )
        published = (snapshot or {}).get("schedule") or None
    fields = ["published", "published_version"]
    if schedule.active_since is not None and _calendar(published) != _calendar(schedule.published):
        # A new calendar starts now: never fire its past times late.
        schedule.active_since = now or djtz.now()
        fields.append("active_since")
    schedule.published = published
    schedule.published_version_id = version_id
    # Bookkeeping (excluded from history): the version's own history records the publish.
    schedule.save_without_historical_record(update_fields=fields)


def _sync_schedule(
    *, schedule: Schedule, flow: TaskFlow, now: datetime | None
) -> PeriodicTask | None:
    _refresh_published(schedule, flow, now)
    spec = published_spec(schedule)
    firing = spec is not None and schedule_is_firing(schedule=schedule, flow=flow)
    if firing and schedule.active_since is None:
        _set_active_since(schedule, now or djtz.now())
    elif not firing and schedule.active_since is not None:
        _set_active_since(schedule, None)

    task = PeriodicTask.objects.filter(name=schedule.periodic_task_name).first()
    if not firing:
        if task is not None and task.enabled:
            task.enabled = False
            _save_task(task)
        return task

    wanted = {
        "task": FIRE_TASK,
        "kwargs": json.dumps({"schedule_id": schedule.pk}),
        "args": "[]",
        "crontab_id": _crontab_for(spec).pk,
        "interval_id": None,
        "solar_id": None,
        "clocked_id": None,
        "enabled": True,
        "one_off": False,
        "start_time": None,
        "expires": None,
        "expire_seconds": None,
        "description": f"Fires the schedule of task flow {flow.pk}.",
    }
    if task is None:
        task = PeriodicTask(name=schedule.periodic_task_name, **wanted)
        _save_task(task)
        return task
    changed = [f for f, v in wanted.items() if getattr(task, f) != v]
    if changed:
        if "crontab_id" in changed:
            # Beat computes the next run from last_run_at: with a new calendar, start afresh
            # rather than fire at once for a time the old calendar had.
            task.last_run_at = None
        for field in changed:
            setattr(task, field, wanted[field])
        _save_task(task)
    return task


def _delete_tasks(names: list[str]) -> int:
    deleted = 0
    for task in PeriodicTask.objects.filter(name__in=names):
        task.no_changes = True
        task.delete()
        deleted += 1
    if deleted:
        PeriodicTasks.update_changed()
    return deleted


def schedule_delete(*, schedule: Schedule, user=None) -> None:
    """Delete a schedule and its beat entry."""
    with transaction.atomic():
        _delete_tasks([schedule.periodic_task_name])
        schedule._history_user = user
        schedule.delete()


def schedule_delete_for_flow(*, flow: TaskFlow, user=None) -> None:
    """Remove the flow's schedule and beat entry; called by the flow delete service."""
    schedule = Schedule.objects.filter(flow_id=flow.pk).first()
    if schedule is not None:
        schedule_delete(schedule=schedule, user=user)
    else:
        # Called after the flow (and its schedule) is gone: drop entries left orphaned.
        schedule_prune_orphan_tasks()


def schedule_prune_orphan_tasks() -> int:
    """Delete beat entries of schedules that no longer exist; returns how many."""
    names = list(
        PeriodicTask.objects.filter(name__startswith=PERIODIC_TASK_PREFIX).values_list(
            "name", flat=True
        )
    )
    ids = {}
    for name in names:
        suffix = name[len(PERIODIC_TASK_PREFIX) :]
        if suffix.isdigit():
            ids[int(suffix)] = name
    existing = set(Schedule.objects.filter(pk__in=ids).values_list("pk", flat=True))
    return _delete_tasks([name for pk, name in ids.items() if pk not in existing])


# --------------------------------------------------------------------------- firing


def _due_times(
    schedule: Schedule, *, after: datetime, until: datetime, memo: dict | None = None
) -> list[datetime]:
    """Fire times of the published schedule in (after, until], never before it became active.

    With `memo`, schedules of the same calendar share the answer (a minute's thousand
    "every minute" schedules compute it once); the list returned is not to be changed.
    """
    if schedule.active_since is None:
        return []
    after = max(after, schedule.active_since)
    if after >= until:
        return []
    if memo is None:
        spec = published_spec(schedule)
        return list(spec.fire_times(after=after, until=until)) if spec else []
    # What published_spec reads, and the window.
    key = (*_calendar(schedule.published), after, until)
    if key not in memo:
        spec = published_spec(schedule)
        memo[key] = list(spec.fire_times(after=after, until=until)) if spec else []
    return memo[key]


def _fire_batch(due: list[tuple[Schedule, datetime]], source: str) -> dict:
    """Create the scheduled runs of these fire times in one transaction, each once."""
    from config.db import insert_rows

    picked_up = djtz.now()  # when we got to them: beat's and the queue's share of the lateness
    with transaction.atomic():
        # The engine creates at most one run per (flow, fire time) under the flows' locks;
        # the ledger rows commit with the runs, so the two always agree.
        runs = hooks.scheduled_runs_create(items=[(s.flow_id, t) for s, t in due])
        firings = [
            ScheduleFiring(
                tenant_id=schedule.tenant_id,
                flow_id=schedule.flow_id,
                schedule=schedule,
                fire_time=fire_time,
                source=source,
                fired_at=picked_up,
                run_id=runs[(schedule.flow_id, fire_time)].pk,
            )
            for schedule, fire_time in due
            if (schedule.flow_id, fire_time) in runs
        ]
        insert_rows(firings)
    # Lateness runs to the commit that made the runs live, so it is stamped after it (one
    # UPDATE per fire time of the batch, usually one).
    done = djtz.now()
    by_time: dict = {}
    for firing in firings:
        firing.lateness = (done - firing.fire_time).total_seconds()
        by_time.setdefault(firing.fire_time, []).append(firing.pk)
    for fire_time, pks in by_time.items():
        ScheduleFiring.objects.filter(pk__in=pks).update(
            lateness=(done - fire_time).total_seconds()
        )
    fired = {}
    for firing in firings:
        fired[(firing.schedule_id, firing.fire_time)] = runs[(firing.flow_id, firing.fire_time)]
    if firings:
        # One line per batch (the ledger has each fire time): schedule:run pairs.
        logger.info(
            "fired %d fire times of %s (%.3fs late, %s): %s",
            len(firings),
            ", ".join(sorted({f.fire_time.isoformat() for f in firings})),
            max(f.lateness for f in firings),
            source,
            " ".join(f"{f.schedule_id}:{f.run_id}" for f in firings),
        )
    return fired


def _fire_many(due: list[tuple[Schedule, datetime]], source: str) -> dict:
    """{(schedule id, fire time): run} for the fire times that got their run now.

    All in one transaction; if that fails (a race lost on SQLite, which has no row locks,
    or one flow's trouble), each fire time is tried on its own, so one cannot hold back
    the others.
    """
    if not due:
        return {}
    try:
        return _fire_batch(due, source)
    except IntegrityError:
        if len(due) == 1:
            return {}  # fired already, by another beat, a redelivery or the sweep
    except Exception:
        if len(due) == 1:
            schedule, fire_time = due[0]
            logger.exception("could not fire schedule %s at %s", schedule.pk, fire_time)
            return {}
        logger.warning(
            "a batch of %d fire times failed; firing them one by one", len(due), exc_info=True
        )
    fired = {}
    for item in due:
        fired.update(_fire_many([item], source))
    return fired


def schedules_fire(*, schedule_ids: list[int], now: datetime | None = None) -> dict:
    """Fire the latest due fire time of each schedule (beat's task); {schedule id: run}.

    Nothing happens for a schedule that is gone, disabled, whose flow is unpublished or
    frozen, or whose fire time is more than GRACE old (missed: listed, not replayed).
    """
    now = now or djtz.now()
    ids = {int(pk) for pk in schedule_ids}
    schedules = list(
        Schedule.objects.select_related("flow")
        .only(*_FIRE_FIELDS, "flow__status", "flow__is_frozen")
        .filter(pk__in=ids)
        .order_by("pk")
    )
    gone = ids - {schedule.pk for schedule in schedules}
    if gone:
        # Beat entries outliving their schedules: harmless, and removed so they stop waking us.
        _delete_tasks([f"{PERIODIC_TASK_PREFIX}{pk}" for pk in sorted(gone)])
    due, memo = [], {}
    for schedule in schedules:
        if not schedule_is_firing(schedule=schedule, flow=schedule.flow):
            continue
        times = _due_times(schedule, after=now - GRACE, until=now + EARLY_TOLERANCE, memo=memo)
        if times:
            due.append((schedule, times[-1]))
    return {pk: run for (pk, _), run in _fire_many(due, FiringSource.BEAT).items()}


def schedule_fire(*, schedule_id: int, now: datetime | None = None):
    """Fire the latest due fire time of one schedule; returns the run or None."""
    return schedules_fire(schedule_ids=[schedule_id], now=now).get(schedule_id)


# Seconds a starting worker process spends at most on warming its plan cache (billiard
# waits 4 s for a new pool process before it gives up on it).
WARM_SECONDS = 1.0


def plans_warm(*, seconds: float = WARM_SECONDS) -> int:
    """Parse the published versions that schedules fire into this process's plan cache.

    A new worker process starts with no plans: without this, the first minutes of a
    thousand schedules parse a snapshot per run while creating the runs. Most recent
    versions first, within the cache's size and `seconds` (the engine parses them, through
    flows.hooks); returns how many are cached.
    """
    ids = (
        Schedule.objects.filter(
            published__enabled=True,
            flow__status=FlowStatus.PUBLISHED,
            flow__is_frozen=False,
            flow__published_version__isnull=False,
        )
        .order_by("-flow__published_version_id")
        .values_list("flow__published_version_id", flat=True)
    )
    return hooks.plans_warm(version_ids=ids, seconds=seconds)


def schedule_sweep(*, now: datetime | None = None) -> int:
    """Fire every due fire time within GRACE that has not fired (e.g. beat skipped a DST time).

    Returns how many runs it started. Each fire is its own transaction, so one failing
    flow does not hold back the others.
    """
    now = now or djtz.now()
    window_start = now - GRACE
    until = now - SWEEP_SETTLE
    # Beat entries whose schedule went with a deleted flow: cheap to find, so drop them here.
    schedule_prune_orphan_tasks()
    schedules = Schedule.objects.filter(
        published__enabled=True,
        active_since__isnull=False,
        active_since__lt=until,
        flow__status=FlowStatus.PUBLISHED,
        flow__is_frozen=False,
    ).order_by("pk")
    due: list[tuple[Schedule, datetime]] = []
    memo: dict = {}
    for schedule in schedules:
        times = _due_times(schedule, after=window_start, until=until, memo=memo)
        due += [(schedule, t) for t in times]
    if not due:
        return 0
    fired = set(
        ScheduleFiring.objects.filter(fire_time__gt=window_start, fire_time__lte=until).values_list(
            "flow_id", "fire_time"
        )
    )
    fired = {(flow_id, t.timestamp()) for flow_id, t in fired}
    due = [(s, t) for s, t in due if (s.flow_id, t.timestamp()) not in fired]
    started = 0
    # In batches, so a long backlog (beat down for minutes) never holds many flows' locks
    # in one long transaction.
    for start in range(0, len(due), SWEEP_BATCH):
        started += len(_fire_many(due[start : start + SWEEP_BATCH], FiringSource.SWEEP))
    return started
