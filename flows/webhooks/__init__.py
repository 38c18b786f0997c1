"""Signed event webhooks: tenant admins subscribe URLs to platform events; each event is a
JSON body signed with HMAC-SHA256 of the subscription's secret, delivered at least once,
with backoff, in order per run, through the pinned outbound HTTP policy.

`services.webhook_event` is what the apps call (explicitly, never from signals) when
something happens; `tasks.deliver_webhook_event` sends one delivery on its own queue, so a
subscriber that is down never slows a run.
"""

import hashlib
import hmac

EVENT_TYPES = (
    "run.started",
    "run.succeeded",
    "run.failed",
    "run.stopped",
    "node.failed",
    "node.retrying",
    "run.deadline_missed",
    "run.deadline_at_risk",
    "flow.published",
    "schedule.missed",
)
SIGNATURE_HEADER = "X-Tributary-Signature"
EVENT_HEADER = "X-Tributary-Event"
DELIVERY_HEADER = "X-Tributary-Delivery"
# The queue deliveries travel on (workers without -Q consume it too).
QUEUE = "tributary.webhooks"


def signature(secret: str, body: bytes) -> str:
    """The X-Tributary-Signature value of a body: sha256=<hex HMAC-SHA256 with the secret>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
