"""The engine without a broker: node tasks are collected and run synchronously, in order."""

from __future__ import annotations

from collections import deque

import pytest

from operations import dispatch
from operations.services import creation, decisions, lifecycle
from tests.integration.httpserver import http_server  # noqa: F401 - fixture
from tests.integration.workers import _worker_pool, celery_workers  # noqa: F401 - fixtures
from tests.operations import helpers  # noqa: F401 - registers the scripted node type


class SyncEngine:
    """Records what the engine sends and runs it on demand, in this process."""

    def __init__(self, capture):
        self.capture = capture
        self.nodes: deque = deque()
        self.run_tasks: deque = deque()
        self.sent: list = []

    def call(self, fn, *args, **kwargs):
        """Call a service as a task would: its on_commit callbacks run at the end."""
        with self.capture(execute=True):
            return fn(*args, **kwargs)

    def step(self) -> bool:
        if self.run_tasks:
            name, arg = self.run_tasks.popleft()
            target = {
                "run_evaluate": decisions.run_evaluate,
                "batch_advance": creation.batch_advance,
                "runs_admit": creation.runs_admit,
            }[name]
            self.call(target, arg)
            return True
        if self.nodes:
            self.call(lifecycle.node_execute, self.nodes.popleft())
            return True
        return False

    def drain(self, limit: int = 10_000) -> int:
        steps = 0
        while steps < limit and self.step():
            steps += 1
        return steps


@pytest.fixture
def engine(monkeypatch, django_capture_on_commit_callbacks):
    eng = SyncEngine(django_capture_on_commit_callbacks)

    def publish(items):
        for node_run_id, _queued_at, countdown, _timeout in items:
            eng.sent.append((node_run_id, countdown))
            eng.nodes.append(node_run_id)

    monkeypatch.setattr(dispatch, "publisher", publish)
    monkeypatch.setattr(dispatch, "relay_publisher", publish)
    monkeypatch.setattr(
        dispatch, "run_publisher", lambda name, arg: eng.run_tasks.append((name, arg))
    )
    monkeypatch.setattr(dispatch, "revoke", lambda ids: None)
    return eng
