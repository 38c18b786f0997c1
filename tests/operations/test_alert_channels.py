"""Alerts that reach people: Slack, DingTalk, Feishu and WeCom robots each get their own
message format with a link to the run page; node-level alerts (a node failed, a node is
retrying) when the flow asks for them; one alert per run and kind; every attempt recorded."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.utils import timezone

from operations import alerts
from operations.models import FlowRun, NotificationAttempt
from operations.services import run_start
from tests.factories import FlowFactory, UserFactory, build_flow
from tests.operations.helpers import script
from tests.operations.test_alerts import eager  # noqa: F401 - fixture

pytestmark = [pytest.mark.django_db(transaction=False), pytest.mark.usefixtures("eager")]


class Robot:
    """A chat robot's endpoint on loopback: records each POST by path; `/bad` answers as a
    DingTalk robot refusing the message (HTTP 200 with an error code)."""

    def __init__(self):
        self.posts: list[tuple[str, dict]] = []
        robot = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                robot.posts.append((self.path, json.loads(body)))
                reply = b'{"errcode": 310000, "errmsg": "keywords not in content"}'
                if self.path != "/bad":
                    reply = b'{"errcode": 0, "errmsg": "ok"}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def robot():
    server = Robot()
    yield server
    server.close()


def _failed_run(flow):
    now = timezone.now()
    return FlowRun.objects.create(
        tenant=flow.tenant,
        flow=flow,
        mode="try",
        business_time=now,
        status="failed",
        error="Failed nodes: load",
        error_policy=flow.error_policy,
        concurrency_policy=flow.concurrency_policy,
        started_at=now - timedelta(seconds=5),
        finished_at=now,
    )


def test_each_chat_channel_gets_its_own_format_with_a_link_to_the_run(
    tenant, robot, settings, django_capture_on_commit_callbacks
):
    settings.PUBLIC_URL = "https://tributary.example.com"
    flow = FlowFactory(
        tenant=tenant,
        name="nightly",
        notifications={
            "slack": [robot.base + "/slack"],
            "dingtalk": [robot.base + "/dingtalk"],
            "feishu": [robot.base + "/feishu"],
            "wecom": [robot.base + "/wecom"],
        },
    )
    run = _failed_run(flow)
    with django_capture_on_commit_callbacks(execute=True):
        alerts.alert_run_finished(run_id=run.pk)
    link = f"https://tributary.example.com/runs/{run.pk}/"
    got = dict(robot.posts)
    assert set(got) == {"/slack", "/dingtalk", "/feishu", "/wecom"}
    slack = got["/slack"]
    assert link in slack["text"]
    assert slack["blocks"][0]["type"] == "section"
    assert f"<{link}|Open run {run.pk}>" in slack["blocks"][0]["text"]["text"]
    assert "nightly: run failed" in slack["blocks"][0]["text"]["text"]
    assert got["/dingtalk"]["msgtype"] == "markdown"
    assert got["/dingtalk"]["markdown"]["title"].endswith("nightly: run failed")
    assert f"]({link})" in got["/dingtalk"]["markdown"]["text"]
    assert got["/feishu"]["msg_type"] == "text" and link in got["/feishu"]["content"]["text"]
    assert got["/wecom"]["msgtype"] == "markdown"
    assert f"]({link})" in got["/wecom"]["markdown"]["content"]
    channels = sorted(
        NotificationAttempt.objects.filter(run=run, ok=True).values_list("channel", flat=True)
    )
    assert channels == ["dingtalk", "email", "feishu", "slack", "wecom"]


def test_a_robot_that_refuses_the_message_is_recorded_as_failed(
    tenant, robot, django_capture_on_commit_callbacks
):
    flow = FlowFactory(tenant=tenant, notifications={"dingtalk": [robot.base + "/bad"]})
    run = _failed_run(flow)
    with django_capture_on_commit_callbacks(execute=True):
        alerts.alert_run_finished(run_id=run.pk)
    attempts = list(NotificationAttempt.objects.filter(run=run, channel="dingtalk"))
    assert len(attempts) == alerts.WEBHOOK_ATTEMPTS
    assert not any(a.ok for a in attempts)
    assert attempts[0].error == "robot error 310000: keywords not in content"


@pytest.mark.parametrize(
    "notifications, message",
    [
        ({"slack": ["not a url"]}, "slack[0]"),
        ({"wecom": "http://x"}, "wecom: must be a list"),
        ({"feishu": ["ftp://example.com/x"]}, "feishu[0]"),
        ({"on_node_failure": "yes"}, "on_node_failure: must be true or false"),
    ],
)
def test_bad_channel_settings_are_a_400_naming_notifications(
    api, tenant, member_user, notifications, message
):
    flow, _ = build_flow(tenant=tenant, owner=member_user, nodes=["a"])
    reply = api(member_user).patch(
        f"/api/v1/flows/{flow.pk}/", {"notifications": notifications}, format="json"
    )
    assert reply.status_code == 400
    assert message in str(reply.json()["notifications"])


def test_channel_urls_go_through_the_outbound_policy(
    tenant, settings, django_capture_on_commit_callbacks
):
    settings.OUTBOUND_ALLOW = []
    flow = FlowFactory(tenant=tenant, notifications={"slack": ["http://127.0.0.1:9/hook"]})
    run = _failed_run(flow)
    with django_capture_on_commit_callbacks(execute=True):
        alerts.alert_run_finished(run_id=run.pk)
    attempt = NotificationAttempt.objects.get(run=run, channel="slack")
    assert not attempt.ok and attempt.error.startswith("refused")


def test_node_alerts_when_asked_once_per_run_and_kind(
    engine, tenant, robot, django_capture_on_commit_callbacks
):
    # Given: a node that fails twice before succeeding (two retries) and one that fails
    owner = UserFactory(username="nina", email="nina@example.com")
    flow, _ = build_flow(
        tenant=tenant,
        owner=owner,
        nodes=[
            script("flaky", fail_attempts=2, retries=2),
            script("broken", fail=True, message="table missing"),
        ],
        notifications={
            "on_failure": False,
            "on_node_failure": True,
            "on_node_retry": True,
            "slack": [robot.base + "/slack"],
        },
        concurrency_policy="ignore",
    )
    # When: the run goes to its end
    engine.call(run_start, flow=flow, mode="try", user=owner)
    engine.drain()
    # Then: one retry alert (not two) and one node failure alert, naming their nodes
    events = {p["blocks"][0]["text"]["text"].split("\n")[0]: p for _, p in robot.posts}
    assert sorted(events) == [
        f"*[Tributary] {flow.name}: node failed*",
        f"*[Tributary] {flow.name}: node retrying*",
    ]
    texts = {k: v["blocks"][0]["text"]["text"] for k, v in events.items()}
    assert "Node: broken" in texts[f"*[Tributary] {flow.name}: node failed*"]
    assert "table missing" in texts[f"*[Tributary] {flow.name}: node failed*"]
    assert "Node: flaky" in texts[f"*[Tributary] {flow.name}: node retrying*"]
    assert sorted(m.subject.rsplit(" ", 1)[-1] for m in mail.outbox) == [
        "node_failed",
        "node_retry",
    ]


def test_node_alerts_are_off_by_default(engine, tenant, robot):
    owner = UserFactory(username="omar", email="omar@example.com")
    flow, _ = build_flow(
        tenant=tenant,
        owner=owner,
        nodes=[script("flaky", fail_attempts=1, retries=1)],
        notifications={"slack": [robot.base + "/slack"]},
    )
    engine.call(run_start, flow=flow, mode="try", user=owner)
    engine.drain()
    assert robot.posts == [] and mail.outbox == []
