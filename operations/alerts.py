"""Run alerts: the owner of the run's version and the flow's recipients are told by e-mail
and/or webhook when a run fails (and, if configured, succeeds or overruns its duration).

Every attempt is recorded as a NotificationAttempt; webhooks are retried with backoff.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.core.mail import send_mail

from flows.models import TaskFlow

from .models import FlowRun, NotificationAttempt

logger = logging.getLogger("tributary.alerts")

# The tasks of operations/tasks.py that alerts send (by name: tasks call this module).
SEND_ALERTS_TASK = "operations.send_alerts"
DELIVER_WEBHOOK_TASK = "operations.deliver_webhook"

WEBHOOK_ATTEMPTS = 4
WEBHOOK_TIMEOUT_S = 10.0


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
    return {
        "on_failure": True,
        "on_success": False,
        "emails": [],
        "webhooks": [],
        "max_duration_s": None,
        **notifications,
    }


def _owner_of(run: FlowRun):
    """The published version keeps the owner it was published with (PRODUCT.md)."""
    if run.version_id:
        return run.version.owner
    return run.flow.owner


def payload(run: FlowRun, event: str) -> dict:
    duration = None
    if run.started_at and run.finished_at:
        duration = (run.finished_at - run.started_at).total_seconds()
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
    }


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


def send_alerts(*, run_id: int, event: str) -> None:
    """E-mail the owner and recipients; queue one webhook delivery per configured URL."""
    from . import dispatch

    run = FlowRun.objects.select_related("flow", "flow__tenant", "version").get(pk=run_id)
    if NotificationAttempt.objects.filter(run=run, event=event).exists():
        return
    conf = _settings_of(run)
    owner = _owner_of(run)
    recipients = sorted({*(conf.get("emails") or []), *([owner.email] if owner.email else [])})
    body = payload(run, event)
    if recipients:
        subject = f"[Tributary] {run.flow.name}: run {run.pk} {event}"
        text = "\n".join(f"{k}: {v}" for k, v in body.items())
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
    for url in conf.get("webhooks") or []:
        dispatch.send_task_on_commit(DELIVER_WEBHOOK_TASK, run_id, event, url, 1)


def deliver_webhook(*, run_id: int, event: str, url: str, attempt: int) -> float | None:
    """POST the JSON payload once; record the outcome. Returns the retry delay, or None."""
    import httpx

    from flows.datasources import netpolicy, pinned_http

    run = FlowRun.objects.select_related("flow", "flow__tenant").get(pk=run_id)
    record = {
        "tenant_id": run.tenant_id,
        "run": run,
        "event": event,
        "channel": "webhook",
        "target": url[:2000],
        "attempt": attempt,
    }
    try:
        # Each hop is checked by the network policy and sent to the address it checked.
        with pinned_http.PinnedClient(timeout=WEBHOOK_TIMEOUT_S) as client:
            reply = client.request(
                "POST",
                url,
                body=json.dumps(payload(run, event)),
                headers={"Content-Type": "application/json", "User-Agent": "Tributary-Alerts/1"},
                follow_redirects=True,
            )
        ok = 200 <= reply.status < 300
        NotificationAttempt.objects.create(
            **record,
            ok=ok,
            status_code=reply.status,
            error="" if ok else f"HTTP {reply.status}",
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
