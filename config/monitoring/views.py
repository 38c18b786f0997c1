"""`GET /metrics`: the Prometheus text exposition, for the platform operator.

Open to loopback clients (a Prometheus or agent on the same host) unless
METRICS_ALLOW_LOOPBACK is off; anyone else needs `Authorization: Bearer <METRICS_TOKEN>`.
A request that came through a proxy (it carries forwarding headers) is not a loopback
client, whatever address the proxy connects from.
"""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from .collector import TributaryCollector

PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def _is_loopback(request) -> bool:
    if any(request.META.get(h) for h in PROXY_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def metrics_refusal(request) -> HttpResponse | None:
    """None when the request may read the metrics, else the answer that refuses it."""
    token = getattr(settings, "METRICS_TOKEN", "") or ""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() == "bearer" and presented:
        if token and hmac.compare_digest(presented.strip().encode(), token.encode()):
            return None
        return _refuse(401, "The bearer token is not the metrics token.", token)
    if getattr(settings, "METRICS_ALLOW_LOOPBACK", True) and _is_loopback(request):
        return None
    if token:
        return _refuse(401, "Send Authorization: Bearer <METRICS_TOKEN>.", token)
    return _refuse(403, "The metrics are open to loopback clients only (METRICS_TOKEN is not set).")


def _refuse(status: int, detail: str, token: str = "") -> HttpResponse:
    response = JsonResponse({"detail": detail}, status=status)
    if status == 401 and token:
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@require_GET
def metrics(request):
    refusal = metrics_refusal(request)
    if refusal is not None:
        return refusal
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TributaryCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
