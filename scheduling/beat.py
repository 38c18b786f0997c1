"""celery beat's scheduler for Tributary: django-celery-beat's DatabaseScheduler, made to scale.

Stock DatabaseScheduler needs ~20 s to send 1,000 entries due at the same minute: on
every tick (one per task sent) it asks the database whether entries changed and compares
every entry with its copy, and every reload fetches each entry's crontab with its own
query. This subclass keeps the same table, semantics and change detection, but
- asks the database for changes at most once per second (edits still reach beat within
  about a second: the loop never sleeps longer than that),
- compares the entry set only when it was reloaded (a reload always rebuilds the heap),
- loads entries with their schedules in one query, and
- writes last_run_at back for all sent entries in one UPDATE instead of 3 queries each,
  and never in the two seconds before entries fall due,
- sends the wake-ups of schedules due at the same moment together: up to FIRE_BATCH
  schedule ids per `fire_schedules` message instead of one message per entry, so a
  minute with 1,000 schedules costs beat a few sends and the workers a few batches
  (each creates its runs in a handful of statements). Every flow keeps its own entry.
Which fire times run stays decided by scheduling.services, not by beat.
"""

from __future__ import annotations

import logging
import time

from celery.schedules import schedstate
from django.db import DatabaseError, InterfaceError, close_old_connections
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry

from .services import FIRE_TASK

CHANGE_CHECK_SECONDS = 1.0
MAX_LOOP_SECONDS = 1.0
# Schedule ids per fire_schedules message: small enough that the first runs of a busy
# minute start at once and several workers share the minute, large enough to batch.
FIRE_BATCH = 50
FIRE_MANY_TASK = "scheduling.tasks.fire_schedules"
# No sync of last run times this close before the next entry falls due.
SYNC_CLEARANCE_SECONDS = 2.0

logger = logging.getLogger("tributary.beat")


# How long a "due" answer is shared by entries of the same crontab and last run.
DUE_MEMO_SECONDS = 0.5
DUE_MEMO_SIZE = 4096


class TributaryEntry(ModelEntry):
    """ModelEntry whose successor (after each send) is a copy, not rebuilt from the row.

    Stock ModelEntry.__next__ re-runs __init__, which re-parses the crontab and the JSON
    arguments of the entry: most of beat's time per due entry. The copy has the same
    fields, with the new last_run_at and run count, as __init__ would set them.

    Entries with the same crontab row and the same last run are due at the same moment:
    the first one's "due" answer is shared for DUE_MEMO_SECONDS (a minute with a thousand
    every-minute schedules asks celery's crontab arithmetic once instead of a thousand
    times). Only "due" is shared: it stays true as time passes; "not yet" is asked anew.
    """

    _due_memo: dict = {}

    def __next__(self):
        self.model.last_run_at = self._default_now()
        self.model.total_run_count += 1
        self.model.no_changes = True
        successor = object.__new__(type(self))  # (ScheduleEntry's __reduce__ rebuilds)
        successor.__dict__.update(self.__dict__)
        successor.last_run_at = self.model.last_run_at
        successor.total_run_count = self.model.total_run_count
        return successor

    next = __next__

    def is_due(self):
        model = self.model
        if (
            model.crontab_id is None
            or not model.enabled
            or model.start_time is not None
            or model.expires is not None
            or model.one_off
        ):
            return super().is_due()  # the stock checks, unshared
        memo = TributaryEntry._due_memo
        key = (model.crontab_id, self.last_run_at)
        now = time.monotonic()
        hit = memo.get(key)
        if hit is not None and now - hit[0] < DUE_MEMO_SECONDS:
            return schedstate(True, max(hit[1] - (now - hit[0]), 0.0))
        state = super().is_due()
        if state.is_due:
            if len(memo) >= DUE_MEMO_SIZE:
                memo.clear()
            memo[key] = (now, state.next)
        return state


def _schedule_id(entry) -> int | None:
    """The schedule id a fire_schedule entry wakes up, or None for any other entry."""
    if getattr(entry, "task", None) != FIRE_TASK:
        return None
    schedule_id = (entry.kwargs or {}).get("schedule_id")
    return schedule_id if isinstance(schedule_id, int) else None


class TributaryScheduler(DatabaseScheduler):
    """DatabaseScheduler that sends thousands of simultaneous entries in well under a second."""

    Entry = TributaryEntry
    _last_change_check = 0.0

    def __init__(self, *args, **kwargs):
        self._due_schedules: list[int] = []
        super().__init__(*args, **kwargs)
        self.max_interval = min(self.max_interval, MAX_LOOP_SECONDS)

    # ------------------------------------------------------------ batched wake-ups

    def apply_entry(self, entry, producer=None):
        schedule_id = _schedule_id(entry)
        if schedule_id is None:
            return super().apply_entry(entry, producer=producer)
        logger.debug("Scheduler: due %s", entry.name)
        self._due_schedules.append(schedule_id)
        if len(self._due_schedules) >= FIRE_BATCH:
            self.flush_due()

    def tick(self, *args, **kwargs):
        delay = super().tick(*args, **kwargs)
        if delay != 0:
            # No other entry is due right now: send what this moment collected.
            self.flush_due()
        return delay

    def flush_due(self) -> None:
        """Send the collected schedule ids as one fire_schedules message."""
        ids, self._due_schedules = self._due_schedules, []
        if not ids:
            return
        try:
            self.send_fire_batch(ids)
        except Exception:  # noqa: BLE001 - as the stock apply_entry: log, keep beating
            # The sweep fires these within its grace window.
            logger.exception("Scheduler: could not send the wake-up of schedules %s", ids)
            return
        logger.info("Scheduler: Sending due schedules %s (%s)", ids, FIRE_MANY_TASK)

    def send_fire_batch(self, ids: list[int]):
        return self.app.send_task(
            FIRE_MANY_TASK,
            args=[ids],
            producer=self.producer,
            headers={"celery_beat_task": True},
        )

    def close(self):
        self.flush_due()
        super().close()

    def all_as_schedule(self):
        started = time.monotonic()
        entries = super().all_as_schedule()
        # The moment edits take effect (the benchmark reads it).
        logger.info(
            "TributaryScheduler: loaded %d entries in %.3fs",
            len(entries),
            time.monotonic() - started,
        )
        return entries

    def enabled_models_qs(self):
        return super().enabled_models_qs().select_related("crontab", "interval", "solar", "clocked")

    def schedule_changed(self) -> bool:
        now = time.monotonic()
        if now - self._last_change_check < CHANGE_CHECK_SECONDS:
            return False
        self._last_change_check = now
        return super().schedule_changed()

    def schedules_equal(self, old_schedules, new_schedules) -> bool:
        if self._heap_invalidated:
            self._heap_invalidated = False
            return False
        # Entries only change through a reload, which invalidates the heap (above).
        return (
            old_schedules is not None
            and new_schedules is not None
            and len(old_schedules) == len(new_schedules)
        )

    def should_sync(self) -> bool:
        # A sync writes the last run of every entry sent since the last one (a thousand rows
        # after a busy minute): never just before entries fall due, where it would hold
        # back their wake-ups. Beat wakes at least every second, so it syncs just after.
        return super().should_sync() and not self._due_within(SYNC_CLEARANCE_SECONDS)

    def _due_within(self, seconds: float) -> bool:
        heap = self._heap
        return bool(heap) and heap[0][0] <= time.time() + seconds

    def sync(self) -> None:
        if not self._dirty:
            return
        dirty = set(self._dirty)
        models = [self._schedule[name].model for name in dirty if name in (self._schedule or {})]
        try:
            close_old_connections()
            # last_run_at bookkeeping only: no PeriodicTasks bump (as ModelEntry.save with
            # no_changes), so it does not make beat reload.
            PeriodicTask.objects.bulk_update(
                models, ["last_run_at", "total_run_count"], batch_size=500
            )
        except (DatabaseError, InterfaceError):
            # Keep them dirty and retry on the next sync, as the stock scheduler does.
            return
        self._dirty -= dirty
