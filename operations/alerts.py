"""Run alerts: the owner of the run's version and the flow's recipients are told by e-mail,
webhook and chat robots (Slack, DingTalk, Feishu, WeCom) when a run fails (and, if
configured, succeeds, overruns its duration, is predicted to miss or misses its deadline,
or one of its nodes fails or is retried while the run carries on).

One alert per run and kind; every attempt is recorded as a NotificationAttempt; webhooks
and robots are retried with backoff, each sent its own message format (`chat_message`)
with a link to the run's page.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.core.mail import send_mail

from flows.models import TaskFlow
from flows.services.flows import NOTIFICATION_DEFAULTS, URL_CHANNELS

from .models import FlowRun, NotificationAttempt

logger = logging.getLogger("tributary.alerts")

# The tasks of operations/tasks.py that alerts send (by name: tasks call this module).
SEND_ALERTS_TASK = "operations.send_alerts"
DELIVER_WEBHOOK_TASK = "operations.deliver_webhook"

WEBHOOK_ATTEMPTS = 4
WEBHOOK_TIMEOUT_S = 10.0

# What each event says in a message's title.
EVENT_TITLES = {
    "failed": "run failed",
    "succeeded": "run succeeded",
    "overdue": "run took longer than its limit",
    "deadline_risk": "run predicted to miss its deadline",
    "deadline_missed": "run missed its deadline",
    "node_failed": "node failed",
    "node_retry": "node retrying",
}
# Which switch of the notification settings turns a node-level event on.
NODE_EVENTS = {"node_failed": "on_node_failure", "node_retry": "on_node_retry"}


def _settings_of(run: FlowRun) -> dict:
    """The alert settings of the flow version the run ran (its plan, cached per process)."""
    from operations.plan import SnapshotError, plan_of_run

    try:
        notifications = plan_of_run(run).notifications
    except (SnapshotError, KeyError, TypeError, ValueError):
        notifications = None
    if notifications is None:
        notifications = (
            TaskFlow.objects.filter(pk=run.flow_id).values_list("notifications", flat=True).first()
            or {}
        )
    return notification_settings(notifications)


def notification_settings(notifications: dict | None) -> dict:
    """Stored notification settings with the defaults of the keys they predate."""
    return {**NOTIFICATION_DEFAULTS, **(notifications or {})}


def _owner_of(run: FlowRun):
    """The published version keeps the owner it was published with (PRODUCT.md)."""
    if run.version_id:
        return run.version.owner
    return run.flow.owner


def run_url(run_id: int) -> str:
    """The run's page in the console."""
    from django.urls import reverse

    return settings.PUBLIC_URL + reverse("run-detail", args=[run_id])


def payload(run: FlowRun, event: str, detail: dict | None = None) -> dict:
    duration = None
    if run.started_at and run.finished_at:
        duration = (run.finished_at - run.started_at).total_seconds()
    extra = {}
    if detail:
        extra["detail"] = detail
    return {
        "event": event,
        "run": run.pk,
        "flow": run.flow_id,
        "flow_name": run.flow.name,
        "tenant": run.flow.tenant.slug,
        "status": run.status,
        "mode": run.mode,
        "business_time": run.business_time.isoformat() if run.business_time else None,
        "duration_s": duration,
        "error": run.error[:1000],
        "deadline_at": run.deadline_at.isoformat() if run.deadline_at else None,
        "url": run_url(run.pk),
        **extra,
    }


def summary(run: FlowRun, event: str, detail: dict | None) -> tuple[str, list[str]]:
    """A title and the lines of a human message about the event (chat robots, e-mail)."""
    detail = detail or {}
    title = f"[Tributary] {run.flow.name}: {EVENT_TITLES.get(event, event)}"
    lines = [f"Run {run.pk} ({run.mode}), business time {_when(run.business_time)}"]
    if detail.get("node_name"):
        lines.append(f"Node: {detail['node_name']}")
    if detail.get("error"):
        lines.append(f"Error: {str(detail['error'])[:500]}")
    if run.deadline_at and event.startswith("deadline"):
        lines.append(f"Deadline: {_when(run.deadline_at)}")
    if detail.get("predicted_finish"):
        lines.append(f"Predicted finish: {_when(detail['predicted_finish'])}")
    if detail.get("nodes"):
        driving = ", ".join(
            f"{n['node_name']} (p90 {n['p90_s']}s)"
            if n.get("p90_s") is not None
            else n["node_name"]
            for n in detail["nodes"]
        )
        lines.append(f"Driven by: {driving}")
    if event in ("failed", "succeeded", "overdue") and run.error:
        lines.append(f"Error: {run.error[:500]}")
    return title, lines


def _when(value) -> str:
    if isinstance(value, str):
        from django.utils.dateparse import parse_datetime

        value = parse_datetime(value) or value
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else str(value)


def chat_message(channel: str, run: FlowRun, event: str, detail: dict | None = None) -> dict:
    """The body a channel's robot expects: Slack incoming webhook, DingTalk, Feishu, WeCom
    robots; the generic webhook gets the JSON `payload`."""
    if channel == "webhook":
        return payload(run, event, detail)
    title, lines = summary(run, event, detail)
    url = run_url(run.pk)
    if channel == "slack":
        text = "\n".join([f"*{title}*", *lines, f"<{url}|Open run {run.pk}>"])
        return {
            "text": f"{title}: {url}",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        }
    if channel == "dingtalk":
        text = "\n\n".join([f"### {title}", *lines, f"[Open run {run.pk}]({url})"])
        return {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
    if channel == "feishu":
        return {"msg_type": "text", "content": {"text": "\n".join([title, *lines, url])}}
    if channel == "wecom":
        text = "\n".join([f"**{title}**", *lines, f"[Open run {run.pk}]({url})"])
        return {"msgtype": "markdown", "markdown": {"content": text}}
    raise ValueError(f"unknown channel {channel!r}")


def robot_refused(channel: str, text: str) -> str | None:
    """DingTalk, Feishu and WeCom answer HTTP 200 with an error code in the body."""
    if channel not in ("dingtalk", "feishu", "wecom"):
        return None
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    code = body.get("errcode", body.get("code", body.get("StatusCode", 0)))
    if code in (0, None):
        return None
    message = body.get("errmsg") or body.get("msg") or body.get("StatusMessage") or ""
    return f"robot error {code}: {message}"[:500]


def events_for(run: FlowRun, conf: dict) -> list[str]:
    """Which alert events a finished run raises."""
    events = []
    if run.status == "failed" and conf.get("on_failure", True):
        events.append("failed")
    if run.status == "succeeded" and conf.get("on_success"):
        events.append("succeeded")
    limit = conf.get("max_duration_s")
    if limit and run.started_at and run.finished_at:
        if (run.finished_at - run.started_at).total_seconds() > limit:
            events.append("overdue")
    return events


def alert_run_finished(*, run_id: int) -> None:
    """Called when a run reaches a final status: queue the alerts it raises, once."""
    from . import dispatch

    # Every finished run passes here: read what deciding needs, not the snapshot.
    run = (
        FlowRun.objects.select_related("version")
        .only(
            "id",
            "tenant_id",
            "flow_id",
            "version_id",
            "mode",
            "status",
            "created_at",
            "started_at",
            "finished_at",
            "version__created_at",
        )
        .filter(pk=run_id)
        .first()
    )
    if run is None or run.mode == "dry":
        return
    conf = _settings_of(run)
    for event in events_for(run, conf):
        if NotificationAttempt.objects.filter(run=run, event=event).exists():
            continue  # a redelivered "finished" never alerts twice
        dispatch.send_task_on_commit(SEND_ALERTS_TASK, run_id, event)


def alert_event(*, run_id: int, event: str, detail: dict | None = None) -> None:
    """A deadline or node event of a live run: queue its alerts (once per run and kind)."""
    from . import dispatch

    dispatch.send_task_on_commit(SEND_ALERTS_TASK, run_id, event, detail)


def alert_node(*, run: FlowRun, notifications: dict | None, event: str, node_run) -> None:
    """A node failed or is being retried: alert if the flow asked for it (its version's
    settings), once per run and kind. Costs nothing when the switch is off."""
    conf = notification_settings(notifications)
    if not conf.get(NODE_EVENTS[event]):
        return
    if NotificationAttempt.objects.filter(run_id=run.pk, event=event).exists():
        return
    detail = {
        "node": node_run.node_id,
        "node_name": node_run.node_name,
        "attempt": node_run.attempt,
        "error": (node_run.error or "")[:1000],
    }
    alert_event(run_id=run.pk, event=event, detail=detail)


def send_alerts(*, run_id: int, event: str, detail: dict | None = None) -> None:
    """E-mail the owner and recipients; queue one delivery per configured webhook and robot."""
    from . import dispatch

    run = FlowRun.objects.select_related("flow", "flow__tenant", "version").get(pk=run_id)
    if NotificationAttempt.objects.filter(run=run, event=event).exists():
        return
    conf = _settings_of(run)
    owner = _owner_of(run)
    recipients = sorted({*(conf.get("emails") or []), *([owner.email] if owner.email else [])})
    body = payload(run, event, detail)
    # The robots and webhooks first: they need not wait for the mail server's round trip.
    for channel in URL_CHANNELS:
        name = "webhook" if channel == "webhooks" else channel
        for url in conf.get(channel) or []:
            dispatch.send_task_on_commit(DELIVER_WEBHOOK_TASK, run_id, event, url, 1, name, detail)
    if recipients:
        subject = f"[Tributary] {run.flow.name}: run {run.pk} {event}"
        title, lines = summary(run, event, detail)
        text = "\n".join([title, *lines, "", *(f"{k}: {v}" for k, v in body.items())])
        try:
            send_mail(subject, text, settings.DEFAULT_FROM_EMAIL, recipients)
            outcome = {"ok": True}
        except Exception as exc:  # noqa: BLE001 - the mail server's failure is recorded, not raised
            outcome = {"ok": False, "error": str(exc)[:500]}
        NotificationAttempt.objects.create(
            tenant_id=run.tenant_id,
            run=run,
            event=event,
            channel="email",
            target=", ".join(recipients)[:2000],
            **outcome,
        )


def deliver_webhook(
    *,
    run_id: int,
    event: str,
    url: str,
    attempt: int,
    channel: str = "webhook",
    detail: dict | None = None,
) -> float | None:
    """POST the channel's message once; record the outcome. Returns the retry delay, or None."""
    import httpx

    from flows.datasources import netpolicy, pinned_http

    run = FlowRun.objects.select_related("flow", "flow__tenant").get(pk=run_id)
    record = {
        "tenant_id": run.tenant_id,
        "run": run,
        "event": event,
        "channel": channel,
        "target": url[:2000],
        "attempt": attempt,
    }
    try:
        # Each hop is checked by the network policy and sent to the address it checked.
        with pinned_http.PinnedClient(timeout=WEBHOOK_TIMEOUT_S) as client:
            reply = client.request(
                "POST",
                url,
                body=json.dumps(chat_message(channel, run, event, detail)),
                headers={"Content-Type": "application/json", "User-Agent": "Tributary-Alerts/1"},
                follow_redirects=True,
            )
        refused = robot_refused(channel, reply.text)
        ok = 200 <= reply.status < 300 and refused is None
        NotificationAttempt.objects.create(
            **record,
            ok=ok,
            status_code=reply.status,
            error="" if ok else (refused or f"HTTP {reply.status}"),
        )
    except (netpolicy.NetworkPolicyError, pinned_http.TooManyRedirects) as exc:
        NotificationAttempt.objects.create(**record, ok=False, error=f"refused: {exc}"[:500])
        return None  # policy refusals are final
    except httpx.HTTPError as exc:
        ok = False
        NotificationAttempt.objects.create(**record, ok=False, error=type(exc).__name__)
    if ok or attempt >= WEBHOOK_ATTEMPTS:
        return None
    return backoff(attempt)


def backoff(attempt: int) -> float:
    """Seconds before the next webhook attempt: 2, 4, 8 …"""
    return float(2**attempt)
