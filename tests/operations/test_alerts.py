"""Alerts: the owner of the run's version and the flow's recipients hear about a failed run
by e-mail and webhook; webhooks are retried with backoff; every attempt is recorded."""

import json
import socket
import threading
from collections import Counter
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.utils import timezone

from config.celery_app import app as celery_app
from flows.models import FlowVersion
from operations import alerts
from operations.models import FlowRun, NotificationAttempt
from tests.factories import FlowFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=False)


class Receiver:
    """A webhook receiver on loopback that fails the first `failures` deliveries.

    A POST to `/moved` is answered with a 307 to `redirect_to` (another hop).
    """

    def __init__(self, failures=0, redirect_to=None):
        self.bodies, self.failures, self.redirect_to = [], failures, redirect_to
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.paths.append(self.path)
                if self.path == "/moved":
                    self.send_response(307)
                    self.send_header("Location", receiver.redirect_to(self.server.server_port))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                receiver.bodies.append((json.loads(body), self.headers["Content-Type"]))
                code = 500 if len(receiver.bodies) <= receiver.failures else 204
                self.send_response(code)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def eager(monkeypatch):
    """Run the alert tasks in-process (the mail and webhook are what is asserted)."""
    from operations import dispatch, tasks

    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    # The engine sends tasks by name (which eager mode does not cover): run them here.
    monkeypatch.setattr(
        dispatch, "task_publisher", lambda name, args: celery_app.tasks[name].apply(args=args)
    )
    # The test's own connection holds its transaction: tasks must not close it here.
    monkeypatch.setattr(tasks, "close_old_connections", lambda: None)
    monkeypatch.setattr(alerts, "backoff", lambda attempt: 0)
    yield
    celery_app.conf.task_always_eager = previous


def _failed_run(flow, version=None, *, seconds=5):
    now = timezone.now()
    return FlowRun.objects.create(
        tenant=flow.tenant,
        flow=flow,
        version=version,
        mode="scheduled" if version else "try",
        business_time=now,
        status="failed",
        error="Failed nodes: load",
        error_policy=flow.error_policy,
        concurrency_policy=flow.concurrency_policy,
        started_at=now - timedelta(seconds=seconds),
        finished_at=now,
    )


def test_failed_run_alerts_owner_and_recipients_with_retried_webhook(
    tenant, eager, django_capture_on_commit_callbacks
):
    # Given: a flow with an e-mail recipient and a webhook that fails twice before accepting
    receiver = Receiver(failures=2)
    owner = UserFactory(username="olga", email="olga@example.com")
    flow = FlowFactory(
        tenant=tenant,
        owner=owner,
        name="nightly",
        notifications={
            "on_failure": True,
            "emails": ["oncall@example.com"],
            "webhooks": [receiver.url],
        },
    )
    run = _failed_run(flow)
    try:
        # When: the run is reported finished (twice, as a redelivered message would)
        with django_capture_on_commit_callbacks(execute=True):
            alerts.alert_run_finished(run_id=run.pk)
        with django_capture_on_commit_callbacks(execute=True):
            alerts.alert_run_finished(run_id=run.pk)
    finally:
        receiver.close()
    # Then: one mail to the owner and the recipient, and the webhook got the JSON payload
    assert len(mail.outbox) == 1
    assert sorted(mail.outbox[0].to) == ["olga@example.com", "oncall@example.com"]
    assert "nightly" in mail.outbox[0].subject and "failed" in mail.outbox[0].subject
    assert len(receiver.bodies) == 3
    body, content_type = receiver.bodies[-1]
    assert content_type == "application/json"
    assert body["event"] == "failed" and body["run"] == run.pk and body["flow_name"] == "nightly"
    attempts = list(
        NotificationAttempt.objects.filter(run=run, channel="webhook").order_by("attempt")
    )
    assert [(a.attempt, a.ok, a.status_code) for a in attempts] == [
        (1, False, 500),
        (2, False, 500),
        (3, True, 204),
    ]
    assert NotificationAttempt.objects.get(run=run, channel="email").ok


def test_published_run_alerts_the_owner_of_its_version(
    tenant, eager, django_capture_on_commit_callbacks
):
    # Given: v1 published by the old owner; the flow's owner changed afterwards
    old = UserFactory(username="old-owner", email="old@example.com")
    new = UserFactory(username="new-owner", email="new@example.com")
    flow = FlowFactory(tenant=tenant, owner=old)
    version = FlowVersion.objects.create(
        tenant=tenant, flow=flow, number=1, owner=old, snapshot={"flow": {"notifications": {}}}
    )
    flow.owner = new
    flow.save()
    with django_capture_on_commit_callbacks(execute=True):
        alerts.alert_run_finished(run_id=_failed_run(flow, version).pk)
    assert mail.outbox[0].to == ["old@example.com"]


def test_success_alerts_only_when_asked_and_overdue_runs_alert(
    tenant, eager, django_capture_on_commit_callbacks
):
    owner = UserFactory(username="sam", email="sam@example.com")
    quiet = FlowFactory(tenant=tenant, owner=owner, name="quiet")
    run = _failed_run(quiet)
    run.status = "succeeded"
    run.save()
    with django_capture_on_commit_callbacks(execute=True):
        alerts.alert_run_finished(run_id=run.pk)
    assert mail.outbox == []
    slow = FlowFactory(
        tenant=tenant,
        owner=owner,
        name="slow",
        notifications={"on_failure": True, "on_success": True, "max_duration_s": 60},
    )
    run = _failed_run(slow, seconds=120)
    run.status = "succeeded"
    run.save()
    with django_capture_on_commit_callbacks(execute=True):
        alerts.alert_run_finished(run_id=run.pk)
    assert sorted(m.subject.rsplit(" ", 1)[-1] for m in mail.outbox) == ["overdue", "succeeded"]


def test_webhook_to_a_refused_address_is_recorded_not_retried(
    tenant, eager, settings, django_capture_on_commit_callbacks
):
    settings.OUTBOUND_ALLOW = []
    flow = FlowFactory(tenant=tenant, notifications={"webhooks": ["http://127.0.0.1:9/x"]})
    run = _failed_run(flow)
    with django_capture_on_commit_callbacks(execute=True):
        alerts.alert_run_finished(run_id=run.pk)
    attempt = NotificationAttempt.objects.get(run=run, channel="webhook")
    assert not attempt.ok and attempt.error.startswith("refused")


class RebindingDNS:
    """A resolver whose answer for some names changes after the first lookup (DNS rebinding):
    the policy sees the first address, a second lookup would get the other one."""

    def __init__(self, monkeypatch, answers: dict[str, tuple[str, str]]):
        self.lookups: Counter = Counter()
        real = socket.getaddrinfo

        def resolve(host, port, *args, **kwargs):
            if host in answers:
                self.lookups[host] += 1
                first, later = answers[host]
                host = first if self.lookups[host] == 1 else later
            return real(host, port, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", resolve)


def test_webhooks_connect_to_the_checked_address_on_every_redirect_hop(
    tenant, eager, monkeypatch, django_capture_on_commit_callbacks
):
    # Given: two names that resolve to the receiver once, then to an address nothing
    # listens on; the webhook's first hop redirects to the second name
    dns = RebindingDNS(
        monkeypatch,
        {
            "hooks.example.test": ("127.0.0.1", "127.0.0.2"),
            "next.example.test": ("127.0.0.1", "127.0.0.2"),
        },
    )
    receiver = Receiver(redirect_to=lambda port: f"http://next.example.test:{port}/final")
    port = receiver.server.server_address[1]
    flow = FlowFactory(
        tenant=tenant, notifications={"webhooks": [f"http://hooks.example.test:{port}/moved"]}
    )
    run = _failed_run(flow)
    try:
        # When: the failed run's alert is delivered
        with django_capture_on_commit_callbacks(execute=True):
            alerts.alert_run_finished(run_id=run.pk)
    finally:
        receiver.close()
    # Then: both hops reached the checked address (each name resolved once, by the check)
    # and the payload arrived after the redirect
    attempt = NotificationAttempt.objects.get(run=run, channel="webhook")
    assert (attempt.ok, attempt.status_code, attempt.error) == (True, 204, "")
    assert receiver.paths == ["/moved", "/final"]
    assert receiver.bodies[0][0]["run"] == run.pk
    assert dns.lookups == {"hooks.example.test": 1, "next.example.test": 1}


def test_a_webhook_redirect_to_a_refused_address_is_refused(
    tenant, eager, django_capture_on_commit_callbacks
):
    receiver = Receiver(redirect_to=lambda port: "http://169.254.169.254/latest/meta-data/")
    flow = FlowFactory(
        tenant=tenant, notifications={"webhooks": [receiver.url.replace("/hook", "/moved")]}
    )
    run = _failed_run(flow)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            alerts.alert_run_finished(run_id=run.pk)
    finally:
        receiver.close()
    attempt = NotificationAttempt.objects.get(run=run, channel="webhook")
    assert not attempt.ok and attempt.error.startswith("refused: Address 169.254.169.254")
    assert receiver.bodies == []
