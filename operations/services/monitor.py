"""One thread per worker process watches the nodes that process is executing.

Every `TRIBUTARY_CANCEL_POLL_SECONDS` it reads their statuses in one query (a stop or a
stop_all makes them leave `running`) and cancels the ones stopped or past their timeout by
calling the executor's `on_cancel` callbacks; it refreshes their heartbeats and flushes
their logs so they can be read while the node runs.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field

from django.db import connection
from django.utils import timezone

from operations import conf
from operations.engine.core import RUNNING

logger = logging.getLogger("tributary.engine")

# Logs are written at most this often per node while it runs.
LOG_FLUSH_SECONDS = 1.0
MIN_AGE = 0.2


@dataclass
class Tracked:
    """A node run being executed by this process."""

    node_run_id: int
    deadline: float
    started: float = field(default_factory=time.monotonic)
    cancelled: threading.Event = field(default_factory=threading.Event)
    reason: str = ""
    callbacks: list = field(default_factory=list)
    lines: list = field(default_factory=list)
    last_flush: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Held while lines are taken and written, so flushes keep the order of the lines.
    flush_lock: threading.Lock = field(default_factory=threading.Lock)
    flushed: int = 0  # characters written to the log by flushes
    # The rendered configuration, written with the first flush (a short node writes it
    # with its result instead).
    rendered: dict | None = None
    rendered_saved: bool = False

    def log(self, text: str) -> None:
        with self.lock:
            self.lines.append(text)

    def take_lines(self) -> str:
        with self.lock:
            text = "".join(self.lines)
            self.lines.clear()
        return text

    def on_cancel(self, callback) -> None:
        with self.lock:
            self.callbacks.append(callback)
            fire = self.cancelled.is_set()
        if fire:
            _call(callback)

    def cancel(self, reason: str) -> None:
        with self.lock:
            if self.cancelled.is_set():
                return
            self.reason = reason
            self.cancelled.set()
            callbacks = list(self.callbacks)
        for callback in callbacks:
            _call(callback)


def _call(callback) -> None:
    try:
        callback()
    except Exception:  # noqa: BLE001 - a failing cancel must not kill the monitor
        logger.exception("a node's cancel callback failed")


class Monitor:
    """The per-process watcher; started lazily, restarted after a fork."""

    def __init__(self) -> None:
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._tracked: dict[int, Tracked] = {}

    def track(self, item: Tracked) -> Tracked:
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._tracked = {}
                threading.Thread(target=self._loop, name="node-monitor", daemon=True).start()
            self._tracked[item.node_run_id] = item
        return item

    def untrack(self, item: Tracked) -> None:
        with self._lock:
            self._tracked.pop(item.node_run_id, None)

    def _loop(self) -> None:
        last_beat = time.monotonic()
        while True:
            time.sleep(conf.get("TRIBUTARY_CANCEL_POLL_SECONDS"))
            with self._lock:
                items = list(self._tracked.values())
            if not items:
                # Idle: give the connection back (a test database must be droppable).
                connection.close()
                continue
            try:
                now = time.monotonic()
                self._check(items, now)
                if now - last_beat >= conf.get("TRIBUTARY_HEARTBEAT_SECONDS"):
                    self._beat(items)
                    last_beat = now
                for item in items:
                    if now - item.last_flush >= LOG_FLUSH_SECONDS:
                        self._flush(item, now)
            except Exception:  # noqa: BLE001 - keep watching; reconnect next round
                logger.exception("node monitor round failed")
                connection.close()

    def _check(self, items: list[Tracked], now: float) -> None:
        from operations.models import NodeRun

        for item in items:
            if now > item.deadline:
                item.cancel("timeout")
        # Nodes that finish within a round never cost a query.
        ids = [
            i.node_run_id for i in items if not i.cancelled.is_set() and now - i.started >= MIN_AGE
        ]
        if not ids:
            return
        statuses = dict(NodeRun.objects.filter(pk__in=ids).values_list("pk", "status"))
        for item in items:
            status = statuses.get(item.node_run_id)
            if item.node_run_id in ids and status != RUNNING:
                item.cancel("stopped")

    def _beat(self, items: list[Tracked]) -> None:
        from operations.models import NodeRun

        from .store import relaxed_commit

        with relaxed_commit():
            NodeRun.objects.filter(pk__in=[i.node_run_id for i in items], status=RUNNING).update(
                heartbeat_at=timezone.now()
            )

    def _flush(self, item: Tracked, now: float) -> None:
        from operations.models import NodeRun

        from .logs import append_log

        with item.flush_lock:
            if not item.rendered_saved and item.rendered is not None:
                NodeRun.objects.filter(pk=item.node_run_id).update(rendered_config=item.rendered)
                item.rendered_saved = True
            text = item.take_lines()
            item.last_flush = now
            if text:
                append_log(item.node_run_id, text)
                item.flushed += len(text)


monitor = Monitor()
