"""Scheduling lateness benchmark: N published flows firing every minute through real beat + worker.

`run_scheduling_benchmark()` creates a scratch tenant with N one-node (noop) flows scheduled
every minute, starts its own `celery beat` (DatabaseScheduler) and `celery worker` against
the configured database and broker, waits for `minutes` fire times and reports the delay
from each fire time to its run's creation (p50/p99/max), how long beat took to send the
wake-ups, and how long a schedule edit took to reach beat. Everything it created is
deleted at the end. `manage.py benchmark --scheduling` prints the result.
"""

from __future__ import annotations

import os
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone as djtz
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from . import BenchmarkError
from .processes import CeleryProcess

TARGET_P50 = 0.5
TARGET_P99 = 2.0
TARGET_EDIT = 5.0
_LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): ")


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _summary(values: list[float]) -> dict:
    return {
        "count": len(values),
        "p50": _percentile(values, 0.50),
        "p99": _percentile(values, 0.99),
        "max": max(values) if values else None,
        "mean": statistics.fmean(values) if values else None,
    }


def _wait(predicate: Callable[[], object], *, until: float, every: float = 0.25):
    while True:
        value = predicate()
        if value or time.monotonic() > until:
            return value
        time.sleep(every)


def _log_times(text: str, needle: str) -> list[datetime]:
    """Timestamps (aware, from the process's local time) of log lines containing `needle`."""
    out = []
    for line in text.splitlines():
        if needle in line:
            m = _LOG_TIME.match(line)
            if m:
                naive = datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f")
                out.append(naive.astimezone())  # the log is in the process's local zone
    return out


def _create_flows(tenant, owner, count: int, *, prefix: str, enabled: bool) -> list:
    from flows import services as flow_services
    from scheduling.services import schedule_save

    flows = []
    for i in range(count):
        flow = flow_services.flow_create(tenant=tenant, user=owner, name=f"{prefix}-{i:05d}")
        flow_services.node_create(flow=flow, user=owner, name="noop", type="noop", config={})
        schedule_save(flow=flow, user=owner, cron="* * * * *", enabled=enabled)
        flow_services.flow_publish(flow=flow, user=owner)  # a schedule fires once published
        flows.append(flow)
    return flows


def _quiet_start(flow_ids: list[int]) -> None:
    """Start from a clean slate: no fire time that passed during set-up is fired late."""
    from scheduling.models import Schedule
    from scheduling.services import _set_active_since

    now = djtz.now()
    schedules = list(Schedule.objects.filter(flow_id__in=flow_ids))
    for schedule in schedules:
        _set_active_since(schedule, now)
    # Beat would otherwise catch up the minute that passed while we were creating flows.
    PeriodicTask.objects.filter(name__in=[s.periodic_task_name for s in schedules]).update(
        last_run_at=now
    )


def _cleanup(tenant_id: int | None, user_id: int | None) -> None:
    """Delete the scratch tenant, its user, their beat entries and history rows."""
    from accounts.models import Tenant, User
    from scheduling.models import Schedule
    from scheduling.services import schedule_prune_orphan_tasks

    if tenant_id is not None:
        names = [
            f"flow-schedule:{pk}"
            for pk in Schedule.objects.filter(tenant_id=tenant_id).values_list("pk", flat=True)
        ]
        for task in PeriodicTask.objects.filter(name__in=names):
            task.no_changes = True
            task.delete()
        PeriodicTasks.update_changed()
        Tenant.objects.filter(pk=tenant_id).delete()
    if user_id is not None:
        User.objects.filter(pk=user_id).delete()
    # Scratch data leaves no audit trail behind: drop its history rows too.
    for model in apps.get_models():
        if not model.__name__.startswith("Historical"):
            continue
        fields = {f.name for f in model._meta.fields}
        if "tenant" in fields and tenant_id is not None:
            model.objects.filter(tenant_id=tenant_id).delete()
        if model.__name__ == "HistoricalTenant" and tenant_id is not None:
            model.objects.filter(id=tenant_id).delete()
        if model.__name__ == "HistoricalUser" and user_id is not None:
            model.objects.filter(id=user_id).delete()
    schedule_prune_orphan_tasks()


def run_scheduling_benchmark(
    *,
    schedules: int = 1000,
    minutes: int = 2,
    concurrency: int | None = None,
    edits: int | None = None,
    keep_logs: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Measure scheduling lateness with `schedules` every-minute schedules over `minutes` fire times.

    Returns a dict: `lateness_s` (fire time -> run created) and `pickup_lateness_s` (fire
    time -> our fire task picking it up; the rest is run creation) as {count, p50, p99,
    max, mean} in seconds, `beat_send_s` (time beat needed to send all wake-ups, per fire
    time), `edit` (seconds from a schedule edit to beat running with it; whether the
    edited schedules fired), run counts (expected, created, duplicates, missing), the
    environment and `passed` against the targets (p50 <= 0.5 s, p99 <= 2 s, edits <= 5 s).
    """
    from accounts.choices import Role
    from accounts.models import Membership, Tenant, User
    from flows import services as flow_services
    from operations.models import FlowRun
    from scheduling.models import ScheduleFiring
    from scheduling.services import schedule_save

    say = progress or (lambda message: None)
    if schedules < 1 or minutes < 1:
        raise ValueError("schedules and minutes must be at least 1")
    concurrency = concurrency or max(4, 2 * (os.cpu_count() or 1))
    edits = max(1, min(50, schedules // 20)) if edits is None else edits
    tag = uuid.uuid4().hex[:8]
    logdir = Path(tempfile.mkdtemp(prefix=f"tributary-bench-sched-{tag}-"))
    tenant_id = user_id = None
    procs: list[CeleryProcess] = []
    result: dict = {"schedules": schedules, "minutes": minutes, "concurrency": concurrency}
    finished = False
    try:
        # Given a scratch tenant with N published flows firing every minute (+ edits disabled)
        started = time.monotonic()
        say(f"creating {schedules} published flows with every-minute schedules ...")
        with transaction.atomic():
            tenant = Tenant.objects.create(
                name=f"Scheduling benchmark {tag}", slug=f"bench-sched-{tag}"
            )
            tenant_id = tenant.pk
            owner = User.objects.create_user(
                username=f"bench-sched-{tag}", password=uuid.uuid4().hex
            )
            user_id = owner.pk
            Membership.objects.create(user=owner, tenant=tenant, role=Role.MEMBER)
        flows = []
        for start in range(0, schedules, 100):
            with transaction.atomic():
                flows += _create_flows(
                    tenant, owner, min(100, schedules - start), prefix=f"f{start}", enabled=True
                )
        with transaction.atomic():
            edited = _create_flows(tenant, owner, edits, prefix="edit", enabled=False)
        flow_ids = [f.pk for f in flows]
        _quiet_start(flow_ids)
        result["setup_s"] = round(time.monotonic() - started, 1)

        # When a real beat and worker run against the configured database and broker
        say(f"starting celery beat and a worker (concurrency {concurrency}), logs in {logdir} ...")
        worker = CeleryProcess(
            "worker",
            [
                "--loglevel=INFO",
                f"--concurrency={concurrency}",
                "--without-gossip",
                "--without-mingle",
                f"--hostname=bench-sched-{tag}@%h",
            ],
            log=logdir / "worker.log",
        )
        procs.append(worker)
        beat = CeleryProcess(
            "beat",
            [
                "--loglevel=INFO",
                f"--schedule={logdir / 'beat-schedule'}",
                f"--pidfile={logdir / 'beat.pid'}",
            ],
            log=logdir / "beat.log",
        )
        procs.append(beat)
        if not _wait(lambda: " ready." in worker.text(), until=time.monotonic() + 90):
            raise BenchmarkError(f"the worker did not start; see {worker.log}")
        if not _wait(lambda: "loaded" in beat.text(), until=time.monotonic() + 90):
            raise BenchmarkError(f"beat did not start; see {beat.log}")

        now = djtz.now()
        first = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        if first - now < timedelta(seconds=15):
            first += timedelta(minutes=1)  # give beat time to settle
        boundaries = [first + timedelta(minutes=i) for i in range(minutes)]
        result["fire_times"] = [b.isoformat() for b in boundaries]
        edit_ids = [f.pk for f in edited]

        def fired(boundary, ids):
            return ScheduleFiring.objects.filter(fire_time=boundary, flow_id__in=ids).count()

        edit_times: list[datetime] = []
        for index, boundary in enumerate(boundaries):
            say(f"waiting for the {schedules} runs of {boundary.isoformat()} ...")
            if index == len(boundaries) - 1:
                # Edits: enable the extra schedules one by one, from 25 s before the last
                # fire time; each must reach beat within 5 s and fire at that fire time.
                _wait_until(boundary - timedelta(seconds=25))
                say(f"enabling {edits} schedules before {boundary.isoformat()} ...")
                for flow in edited:
                    if djtz.now() > boundary - timedelta(seconds=TARGET_EDIT):
                        break  # too close to the fire time to count
                    schedule_save(flow=flow, user=owner, cron="* * * * *", enabled=True)
                    flow_services.flow_publish(flow=flow, user=owner)  # takes effect now
                    edit_times.append(djtz.now())
            deadline = time.monotonic() + max(5.0, (boundary - djtz.now()).total_seconds()) + 120
            _wait(lambda b=boundary: fired(b, flow_ids) >= schedules, until=deadline, every=0.5)
        _wait(
            lambda: fired(boundaries[-1], edit_ids) >= len(edit_times), until=time.monotonic() + 30
        )

        # Then: lateness from the firing ledger (fire time -> run created)
        rows = list(
            ScheduleFiring.objects.filter(
                flow_id__in=flow_ids, fire_time__in=boundaries
            ).values_list("fire_time", "fired_at", "lateness")
        )
        runs = FlowRun.objects.filter(flow_id__in=flow_ids, fire_time__in=boundaries)
        run_count = runs.count()
        distinct = runs.values("flow_id", "fire_time").distinct().count()
        beat_log = beat.text()
        sends = _log_times(beat_log, "Sending due schedules")
        loads = _log_times(beat_log, "TributaryScheduler: loaded")
        reach = [
            min([(t - e).total_seconds() for t in loads if t >= e], default=None)
            for e in edit_times
        ]
        edited_fired = ScheduleFiring.objects.filter(
            flow_id__in=edit_ids, fire_time=boundaries[-1]
        ).values_list("lateness", flat=True)
        result.update(
            expected_runs=schedules * minutes,
            runs=run_count,
            duplicate_runs=run_count - distinct,
            missing_runs=schedules * minutes - distinct,
            lateness_s=_summary([r[2] for r in rows if r[2] is not None]),
            pickup_lateness_s=_summary([(r[1] - r[0]).total_seconds() for r in rows]),
            beat_send_s=[
                round(
                    max(
                        [
                            (t - b).total_seconds()
                            for t in sends
                            if b <= t < b + timedelta(seconds=60)
                        ]
                        or [0]
                    ),
                    3,
                )
                for b in boundaries
            ],
            edit={
                "edits": len(edit_times),
                "reached_beat_s": _summary([r for r in reach if r is not None]),
                "never_reached_beat": sum(r is None for r in reach),
                "fired_at_next_fire_time": len(edited_fired),
            },
            environment={
                "cpus": os.cpu_count(),
                "load_average": [round(v, 2) for v in os.getloadavg()],
                "database": connection.vendor,
                "broker": settings.CELERY_BROKER_URL.split(":", 1)[0],
            },
            targets={"p50_s": TARGET_P50, "p99_s": TARGET_P99, "edit_s": TARGET_EDIT},
        )
        p50, p99 = result["lateness_s"]["p50"], result["lateness_s"]["p99"]
        result["passed"] = bool(
            p50 is not None
            and p50 <= TARGET_P50
            and p99 <= TARGET_P99
            and result["missing_runs"] == 0
            and result["duplicate_runs"] == 0
            and edit_times
            and None not in reach
            and max(reach) <= TARGET_EDIT
            and len(edited_fired) == len(edit_times)
        )
        # Let the worker finish the runs, so no message of the scratch tenant outlives it.
        _wait(
            lambda: (
                not FlowRun.objects.filter(tenant_id=tenant_id, finished_at__isnull=True).exists()
            ),
            until=time.monotonic() + 120,
            every=1.0,
        )
        result["logs"] = str(logdir) if keep_logs else None
        finished = True
        return result
    finally:
        for proc in reversed(procs):
            proc.stop(timeout=30)
        say("cleaning up the scratch tenant ...")
        _cleanup(tenant_id, user_id)
        if finished and not keep_logs:
            for path in logdir.iterdir():
                path.unlink()
            logdir.rmdir()


def _wait_until(moment: datetime) -> None:
    delay = (moment - datetime.now(UTC)).total_seconds()
    if delay > 0:
        time.sleep(delay)
