"""Bounded node logs and run events, written by explicit calls (never by signals)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from operations.models import LOG_LIMIT, LOG_TRUNCATED, NodeRun, RunEvent

# What survives of a truncated log: its beginning and, mostly, its end (where errors are).
LOG_HEAD = 8 * 1024


def log_line(message: str, at: datetime | None = None) -> str:
    at = at or timezone.now()
    return f"{at.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z {message}\n"


def bounded(old: str, new: str, limit: int = LOG_LIMIT) -> str:
    """`old + new` kept under `limit` characters: head, a truncation marker, then the tail."""
    text = old + new
    if len(text) <= limit:
        return text
    marker = f"{LOG_TRUNCATED}\n"
    if marker in old:
        head, _, rest = old.partition(marker)
        rest += new
    else:
        size = min(LOG_HEAD, limit // 4)
        cut = text.rfind("\n", 0, size)
        head = text[: cut + 1 if cut > 0 else size]
        rest = text[len(head) :]
    room = max(0, limit - len(head) - len(marker))
    tail = rest[-room:] if room else ""
    nl = tail.find("\n")
    if 0 <= nl < len(tail) - 1 and len(rest) > room:
        tail = tail[nl + 1 :]  # start the tail on a whole line
    return head + marker + tail


def append_log(node_run_id: int, text: str) -> None:
    """Append lines to a node run's log under its row lock (workers flush while running)."""
    if not text:
        return
    with transaction.atomic():
        row = NodeRun.objects.select_for_update().only("id", "log").filter(pk=node_run_id).first()
        if row is None:
            return
        row.log = bounded(row.log, text)
        row.save(update_fields=["log"])


def event(run, kind: str, message: str = "", *, node_run=None, user=None) -> RunEvent:
    """Record one run event."""
    row = event_row(run, kind, message, node_run=node_run, user=user)
    row.save(force_insert=True)
    return row


def event_row(run, kind: str, message: str = "", *, node_run=None, user=None) -> RunEvent:
    """An unsaved run event (for bulk inserts)."""
    return RunEvent(
        tenant_id=run.tenant_id,
        run_id=run.pk,
        node_run_id=getattr(node_run, "pk", node_run),
        kind=kind,
        user=user if getattr(user, "is_authenticated", False) else None,
        message=message[:2000],
    )
