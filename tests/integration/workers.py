"""Real `celery -A config worker` processes on the test database and broker, for pytest.

`celery_workers` (function scope, transactional database) gives a running worker pool that
is started once per test module, has its queue purged before each test and is stopped at the
end of the module. The workers connect to the same test database and broker as the test.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from config.benchmark.processes import ROOT, CeleryProcess

READY_TIMEOUT = 60


def wait_for(predicate, *, timeout: float = 30, interval: float = 0.05, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(
                f"timed out after {timeout}s waiting for {what() if callable(what) else what}"
            )
        time.sleep(interval)


class WorkerPool:
    """One Celery worker (prefork) with `concurrency` child processes."""

    def __init__(self, *, concurrency: int = 4, log_dir: Path):
        self.concurrency = concurrency
        self.log_path = log_dir / f"celery-worker-{os.getpid()}.log"
        self.mail_dir = log_dir / f"mail-{os.getpid()}"
        self.process: CeleryProcess | None = None

    def env(self) -> dict:
        env = dict(os.environ)
        env["DJANGO_SETTINGS_MODULE"] = "tests.integration.worker_settings"
        env["TRIBUTARY_TEST_DB_NAME"] = str(connection.settings_dict["NAME"])
        env["TRIBUTARY_TEST_MAIL_DIR"] = str(self.mail_dir)
        env["PYTHONPATH"] = str(ROOT)
        return env

    def sent_mail(self) -> list:
        """The e-mails the workers sent since the test began, parsed."""
        import email

        if not self.mail_dir.exists():
            return []
        # Django's file backend ends each message with a line of 79 dashes: a file without
        # it is still being written.
        done = [path.read_bytes() for path in sorted(self.mail_dir.iterdir())]
        end = b"-" * 79 + b"\n"
        return [email.message_from_bytes(data) for data in done if data.endswith(end)]

    def clear_mail(self) -> None:
        if self.mail_dir.exists():
            for path in self.mail_dir.iterdir():
                path.unlink()

    def start(self) -> None:
        self.process = CeleryProcess(
            "worker",
            [
                "--pool=prefork",
                f"--concurrency={self.concurrency}",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"engine-test-{os.getpid()}@%h",
            ],
            log=self.log_path,
            env=self.env(),
        )
        wait_for(
            self._ready, timeout=READY_TIMEOUT, interval=0.1, what="the Celery worker to start"
        )

    def _ready(self) -> bool:
        if not self.process.alive():
            pytest.fail(f"the Celery worker exited:\n{self.log_tail()}")
        return self.process.has_logged(r" ready\.")

    def log_tail(self, lines: int = 60) -> str:
        return self.process.tail(lines) if self.process else ""

    def purge(self) -> None:
        from config.celery_app import app

        app.control.purge()

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def stop(self) -> None:
        if self.process is None:
            return
        # Cold shutdown of our own worker (nothing of a test runs any more), then a kill of
        # its process group if it does not go.
        self.process.stop(signal.SIGQUIT, group=False, timeout=10)


@pytest.fixture(scope="module")
def _worker_pool(django_db_setup, django_db_blocker):
    # Per module, not per session: a worker left running would consume the messages of
    # later tests that start workers of their own on the same broker.
    pool = WorkerPool(log_dir=Path(settings.VAR_DIR) / "test-workers")
    yield pool
    pool.stop()


@pytest.fixture
def celery_workers(_worker_pool, transactional_db):
    """A running worker pool on this test's (committed) data; its queue is empty at start."""
    from operations import plan

    plan.clear_cache()
    if not _worker_pool.alive():
        _worker_pool.start()
    _worker_pool.purge()
    _worker_pool.clear_mail()
    yield _worker_pool
    _worker_pool.purge()
