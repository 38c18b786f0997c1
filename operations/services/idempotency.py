"""Idempotent run creation: an `Idempotency-Key` makes a retried POST …/runs/ harmless.

The first request under a key inserts the key's row and creates its runs in one
transaction; a repeat from the same tenant within IDEMPOTENCY_WINDOW answers with those
runs and creates nothing, and a repeat with another body is a 409. Concurrent duplicates
are serialised by the unique (tenant, key) constraint: the second INSERT waits for the first
transaction, then fails, and that request reads the first one's runs.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.errors import ConflictError
from operations.models import FlowRun, RunRequestKey

IDEMPOTENCY_WINDOW = timedelta(hours=24)
MAX_KEY_LENGTH = 255
HEADER = "Idempotency-Key"


def request_fingerprint(*, flow_id: int, body: dict) -> str:
    """SHA-256 of the flow and the request's validated body (key order does not matter)."""
    text = json.dumps({"flow": flow_id, "body": body}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationError(
            {HEADER: [f"Give 1 to {MAX_KEY_LENGTH} printable characters, e.g. a UUID."]}
        )
    return key


def _replay(record: RunRequestKey, fingerprint: str):
    if record.fingerprint != fingerprint:
        raise ConflictError(
            "This Idempotency-Key was used for a different request: use a new key for a new "
            "request.",
            HEADER,
        )
    runs = {run.pk: run for run in FlowRun.objects.filter(pk__in=record.run_ids)}
    ordered = [runs[pk] for pk in record.run_ids if pk in runs]
    if record.many:
        return ordered
    return ordered[0] if ordered else []


def run_start_once(*, key: str, flow, user, body: dict, start):
    """`start()` (which creates the runs) at most once per (tenant, key) within the window.

    Returns (result, replayed): the runs `start` created, or those of the first request under
    the key. A key used with another body is a ConflictError (409).
    """
    key = check_key(key)
    fingerprint = request_fingerprint(flow_id=flow.pk, body=body)
    for _ in range(3):
        with transaction.atomic():
            try:
                with transaction.atomic():
                    record = RunRequestKey.objects.create(
                        tenant_id=flow.tenant_id,
                        key=key,
                        flow=flow,
                        fingerprint=fingerprint,
                        user=user if getattr(user, "is_authenticated", False) else None,
                    )
            except IntegrityError:
                record = (
                    RunRequestKey.objects.select_for_update()
                    .filter(tenant_id=flow.tenant_id, key=key)
                    .first()
                )
                if record is None:
                    continue  # the key expired and was taken again meanwhile: try again
                if record.created_at > timezone.now() - IDEMPOTENCY_WINDOW:
                    return _replay(record, fingerprint), True
                # Expired: the key starts afresh.
                record.delete()
                record = RunRequestKey.objects.create(
                    tenant_id=flow.tenant_id,
                    key=key,
                    flow=flow,
                    fingerprint=fingerprint,
                    user=user if getattr(user, "is_authenticated", False) else None,
                )
            result = start()
            many = isinstance(result, list)
            record.run_ids = [run.pk for run in result] if many else [result.pk]
            record.many = many
            record.save(update_fields=["run_ids", "many"])
            return result, False
    raise ConflictError("The request is being retried concurrently: try again.", HEADER)


def run_request_keys_expire(*, now=None) -> int:
    """Delete the keys older than the window (housekeeping); returns how many."""
    cutoff = (now or timezone.now()) - IDEMPOTENCY_WINDOW
    deleted, _ = RunRequestKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
