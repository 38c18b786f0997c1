"""`make run`'s last step: web, worker and beat from the Procfile under honcho, stopped cleanly
by Ctrl-C.

Ctrl-C in a terminal signals the whole foreground process group (make as well), and honcho's
own stop sends SIGTERM to each process's whole group, so celery's pool children died under
the worker (ERROR lines), honcho killed a worker still finishing after 5 s, and make
reported the recipe as failed. Here:

- this process takes the terminal's foreground for its own process group (honcho starts
  each process in a session of its own), so Ctrl-C reaches only this process, not make;
- a stop sends SIGTERM to each process itself, not its group: the worker's is a warm
  shutdown in which it ends its own pool; a process still running after
  `STOP_TIMEOUT_S` gets SIGKILL with its group;
- it says what it stopped, gives the terminal back, and exits 0.

Run as `python -m config.run` from the project root; `PORT` (default 8000) is the web port.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from honcho import environ as honcho_environ
from honcho import manager as honcho_manager
from honcho.compat import ProcessManager
from honcho.printer import Printer

ROOT = Path(__file__).resolve().parent.parent
STOP_TIMEOUT_S = 30
REQUESTED_STOP = (130, 143)  # honcho's status after SIGINT / SIGTERM


class _ProcessOnly(ProcessManager):
    """SIGTERM to the process honcho started, not its group; SIGKILL still takes the group."""

    def terminate(self, pid):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def _say(message: str) -> None:
    print(f"tributary | {message}", flush=True)


class _Foreground:
    """Own the terminal's foreground while running; give it back on exit (no-op without a tty)."""

    def __init__(self) -> None:
        self.fd: int | None = None
        self.previous: int | None = None

    def __enter__(self) -> _Foreground:
        try:
            fd = sys.stdin.fileno()
            if not os.isatty(fd):
                return self
            previous = os.tcgetpgrp(fd)
            os.setpgid(0, 0)
            with _ttou_ignored():
                os.tcsetpgrp(fd, os.getpgrp())
            self.fd, self.previous = fd, previous
        except (OSError, ValueError):
            pass
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is None:
            return
        try:
            with _ttou_ignored():
                os.tcsetpgrp(self.fd, self.previous)
        except OSError:
            pass


class _ttou_ignored:  # noqa: N801 (a context manager used like a function)
    """A background process group may set the terminal's foreground only with SIGTTOU ignored."""

    def __enter__(self) -> None:
        self.before = signal.signal(signal.SIGTTOU, signal.SIG_IGN)

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGTTOU, self.before)


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    procfile = honcho_environ.parse_procfile((ROOT / "Procfile").read_text())
    # honcho reads its kill delay from a module constant; a warm shutdown may take longer than 5 s.
    honcho_manager.KILL_WAIT = STOP_TIMEOUT_S
    manager = honcho_manager.Manager(Printer(sys.stdout))
    manager._procmgr = _ProcessOnly()  # noqa: SLF001 (honcho's one seam for how processes are signalled)
    for p in honcho_environ.expand_processes(procfile.processes, port=port):
        manager.add_process(
            p.name, p.cmd, quiet=p.quiet, env={**os.environ, **p.env}, cwd=str(ROOT)
        )

    debug = os.environ.get("DEBUG", "").lower() in ("1", "true", "yes", "on")
    mode = "DEBUG on (development)" if debug else "DEBUG off (DEBUG=1 make run for development)"
    with _Foreground():
        _say(f"starting web (http://127.0.0.1:{port}/), worker and beat; {mode}; Ctrl-C stops them")
        manager.loop()
    if manager.returncode in REQUESTED_STOP:
        _say("stopped web, worker and beat.")
        return 0
    _say(f"a process stopped by itself (exit status {manager.returncode}); stopped the others.")
    return manager.returncode or 1


if __name__ == "__main__":
    sys.exit(main())
