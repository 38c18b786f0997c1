"""Celery worker and beat child processes, for the benchmark and the integration tests alike.

A `CeleryProcess` runs `celery -A config <worker|beat> ...` (or another entry point that
ends the same way) in its own session, writes its output to a log file, and is stopped
with its whole process group.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CELERY = [sys.executable, "-m", "celery", "-A", "config"]


class CeleryProcess:
    """One celery process (`kind` is worker or beat) with its log file."""

    def __init__(
        self,
        kind: str,
        args: list[str],
        *,
        log: Path,
        env: dict | None = None,
        command: list[str] | None = None,
    ):
        self.kind = kind
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._fh = log.open("wb")
        self.proc = subprocess.Popen(
            [*(command or CELERY), kind, *args],
            cwd=ROOT,
            env={"PYTHONUNBUFFERED": "1", **(os.environ if env is None else env)},
            stdout=self._fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def has_logged(self, pattern: str) -> bool:
        return re.search(pattern, self.text()) is not None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, *, group: bool = True, timeout: float = 20) -> None:
        """Signal the process group, or only the main process (SIGTERM: warm shutdown, SIGQUIT:
        cold); kill the whole group if it is still there after `timeout` seconds."""
        if self.alive():
            try:
                (os.killpg if group else os.kill)(self.proc.pid, sig)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        self._fh.close()
