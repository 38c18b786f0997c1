"""The per-process monitor cancels a node past its timeout by calling the executor's callback."""

import threading
import time

from operations.services.monitor import Monitor, Tracked


def test_a_node_past_its_deadline_is_cancelled_through_its_callback(settings):
    settings.TRIBUTARY_CANCEL_POLL_SECONDS = 0.02
    monitor = Monitor()
    called = threading.Event()
    item = monitor.track(Tracked(node_run_id=-1, deadline=time.monotonic() + 0.05))
    item.on_cancel(called.set)

    assert called.wait(5), "the cancel callback was not called"
    assert item.cancelled.is_set() and item.reason == "timeout"
    monitor.untrack(item)


def test_a_callback_registered_after_cancellation_runs_at_once():
    item = Tracked(node_run_id=-2, deadline=time.monotonic() + 60)
    item.cancel("stopped")
    called = []
    item.on_cancel(lambda: called.append(True))
    assert called == [True] and item.reason == "stopped"
