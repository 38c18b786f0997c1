"""Real `celery worker` and `celery beat` processes on the test database, for integration tests."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from django.db import connection

from config.benchmark.processes import CeleryProcess

# The entry point that points Django at the test database before anything connects.
MAIN = [sys.executable, str(Path(__file__).with_name("_celery_main.py"))]


def wait_for(predicate: Callable[[], object], *, deadline: float, what: str, every: float = 0.2):
    """Poll `predicate` until it returns something truthy; fail with `what` at the deadline."""
    end = time.monotonic() + deadline
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline:.0f}s waiting for {what}")
        time.sleep(every)


def _env() -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings.test"),
        "TRIBUTARY_TEST_DB": str(connection.settings_dict["NAME"]),
        "PYTHONUNBUFFERED": "1",
    }


@contextmanager
def celery_processes(
    tmp_path: Path, *, worker: bool = True, beat: bool = True, concurrency: int = 2, beats: int = 1
) -> Iterator[dict[str, CeleryProcess]]:
    """Start a worker and/or beat on the test database and broker; stop them on exit."""
    env = _env()
    procs: dict[str, CeleryProcess] = {}
    with ExitStack() as stack:
        if worker:
            procs["worker"] = CeleryProcess(
                "worker",
                [
                    "--loglevel=INFO",
                    f"--concurrency={concurrency}",
                    "--pool=prefork",
                    "--without-gossip",
                    "--without-mingle",
                    "--purge",
                    f"--hostname=it-{os.getpid()}@%h",
                ],
                log=tmp_path / "worker.log",
                env=env,
                command=MAIN,
            )
            stack.callback(procs["worker"].stop)
        for index in range(beats if beat else 0):
            # More than one beat is a misconfiguration we must survive (issue 8).
            name = "beat" if index == 0 else f"beat{index + 1}"
            procs[name] = CeleryProcess(
                "beat",
                [
                    "--loglevel=INFO",
                    f"--schedule={tmp_path / f'{name}-schedule'}",
                    f"--pidfile={tmp_path / f'{name}.pid'}",
                ],
                log=tmp_path / f"{name}.log",
                env=env,
                command=MAIN,
            )
            stack.callback(procs[name].stop)
        if worker:
            wait_for(
                lambda: (
                    procs["worker"].has_logged(r"\bready\.")
                    or procs["worker"].proc.poll() is not None
                ),
                deadline=60,
                what="the celery worker to start",
            )
            assert procs["worker"].proc.poll() is None, procs["worker"].text()[-4000:]
        yield procs
