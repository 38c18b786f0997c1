"""The README's run command, as a person uses it: `make serve` (make run's last step) in a
terminal, the console in Chromium, then Ctrl-C typed into the terminal.

Issue 20: the run command served with DEBUG on (a 404 listed the URL patterns), and Ctrl-C
ended with ERROR lines and make's error status. A pseudo-terminal delivers Ctrl-C the way a
terminal does: SIGINT to its whole foreground process group.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
READY_DEADLINE_S = 90
STOP_DEADLINE_S = 45


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _database_url() -> str:
    db = settings.DATABASES["default"]
    if "postgresql" not in db["ENGINE"]:
        pytest.skip("the run command test points the processes at the PostgreSQL test database")
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


class Terminal:
    """A command on a pseudo-terminal, its output collected as it comes."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            # The session's controlling terminal, so that Ctrl-C means what it means to a shell
            preexec_fn=lambda: __import__("fcntl").ioctl(0, __import__("termios").TIOCSCTTY, 0),
        )
        os.close(slave)
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if not ready:
                if self.proc.poll() is not None:
                    return
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.chunks.append(data)

    @property
    def output(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")

    def wait_for(self, pattern: str, deadline_s: float) -> None:
        end = time.monotonic() + deadline_s
        while not re.search(pattern, self.output):
            assert self.proc.poll() is None, f"the run command ended early:\n{self.output[-3000:]}"
            assert time.monotonic() < end, (
                f"no {pattern!r} within {deadline_s}s:\n{self.output[-3000:]}"
            )
            time.sleep(0.2)

    def ctrl_c(self) -> None:
        os.write(self.master, b"\x03")

    def close(self) -> None:
        # honcho's processes live in sessions of their own: stop them the polite way first
        if self.proc.poll() is None:
            self.ctrl_c()
            try:
                self.proc.wait(timeout=STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.reader.join(timeout=5)
        os.close(self.master)


@pytest.fixture
def run_command(transactional_db, tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DJANGO_SETTINGS_MODULE")}
    env.update(
        PORT=str(port),
        DATABASE_URL=_database_url(),
        # A broker and a var/ of its own, so its worker takes no other test's task
        CELERY_BROKER_URL="filesystem://",
        TRIBUTARY_VAR_DIR=str(tmp_path / "var"),
        TERM="dumb",
    )
    env.pop("MAKEFLAGS", None)
    terminal = Terminal(["make", "--no-print-directory", "serve"], env)
    try:
        yield terminal, f"http://127.0.0.1:{port}"
    finally:
        terminal.close()


def test_run_command_serves_without_debug_and_ctrl_c_stops_everything_cleanly(run_command, browser):
    terminal, url = run_command
    # Given the run command started in a terminal, with web, worker and beat up
    terminal.wait_for(r"Starting development server at", READY_DEADLINE_S)
    terminal.wait_for(r"celery@\S+ ready", READY_DEADLINE_S)
    terminal.wait_for(r"beat.*Scheduler", READY_DEADLINE_S)

    # Then a page that does not exist is the console's 404, not Django's debug page
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        tab = context.new_page()
        response = tab.goto(url + "/no-such-page/")
        assert response.status == 404
        text = tab.content()
        assert "URLconf" not in text and "DEBUG = True" not in text
        # ... and the login page gets its stylesheet, served by whitenoise without DEBUG
        css = []
        tab.on("response", lambda r: css.append(r.status) if r.url.endswith(".css") else None)
        tab.goto(url + "/accounts/login/")
        tab.wait_for_load_state("load")
        assert css and all(status == 200 for status in css), css
    finally:
        context.close()

    # When Ctrl-C is typed into the terminal
    terminal.ctrl_c()
    end = time.monotonic() + STOP_DEADLINE_S
    while terminal.proc.poll() is None and time.monotonic() < end:
        time.sleep(0.2)
    assert terminal.proc.poll() is not None, f"still running:\n{terminal.output[-3000:]}"
    terminal.reader.join(timeout=5)
    output = terminal.output

    # Then make, web, worker and beat end cleanly, and it says so
    assert terminal.proc.returncode == 0, output[-3000:]
    assert "stopped web, worker and beat" in output
    for bad in ("ERROR", "CRITICAL", "Traceback", "make: ***", "Interrupt"):
        assert bad not in output, f"{bad!r} in:\n{output[-3000:]}"
    assert "worker: Warm shutdown" in output
