"""The benchmark's own task: a no-op for the raw Celery chain it compares the engine with."""

import time
from pathlib import Path

from celery import shared_task
from django.conf import settings


@shared_task(name="benchmark.noop", ignore_result=True)
def noop(marker: str | None = None) -> None:
    """Do nothing; the last task of a chain (and a readiness probe) leaves a marker file."""
    if marker:
        path = Path(settings.VAR_DIR) / "benchmark" / marker
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(repr(time.time()))
        partial.replace(path)  # the reader sees the whole file or none
