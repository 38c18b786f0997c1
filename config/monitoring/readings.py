"""Gauges of /metrics, read at scrape time from PostgreSQL and the broker (never from a
process's memory, which would differ from one web process to the next)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Max
from django.utils import timezone

from operations.choices import RUN_ACTIVE, NodeStatus
from operations.models import FlowRun, NodeRun
from scheduling.models import ScheduleFiring

logger = logging.getLogger("tributary.metrics")

# Node states that hold or wait for a worker slot.
NODE_ACTIVE = (NodeStatus.QUEUED, NodeStatus.WAITING, NodeStatus.RUNNING)
RECENT = timedelta(minutes=5)
BROKER_TIMEOUT_S = 2.0


def active_runs() -> list[tuple[str, str, int]]:
    """(tenant slug, state, runs) for runs not finished yet (an index-only count)."""
    rows = (
        FlowRun.objects.filter(status__in=list(RUN_ACTIVE))
        .order_by()
        .values("tenant__slug", "status")
        .annotate(n=Count("id"))
    )
    return [(r["tenant__slug"], r["status"], r["n"]) for r in rows]


def active_node_runs() -> list[tuple[str, str, int]]:
    """(tenant slug, state, node runs) queued, waiting or running: the tenant's slot use."""
    rows = (
        NodeRun.objects.filter(status__in=list(NODE_ACTIVE))
        .order_by()
        .values("tenant__slug", "status")
        .annotate(n=Count("id"))
    )
    return [(r["tenant__slug"], r["status"], r["n"]) for r in rows]


def recent_lateness() -> float | None:
    """The largest lateness of the fire times of the last five minutes (None: none fired)."""
    since = timezone.now() - RECENT
    return ScheduleFiring.objects.filter(fire_time__gte=since, lateness__isnull=False).aggregate(
        worst=Max("lateness")
    )["worst"]


def queue_names() -> list[str]:
    return [q.name for q in settings.CELERY_TASK_QUEUES]


def queue_depths() -> dict[str, int] | None:
    """Messages waiting in each of the platform's broker queues; None when the broker is down."""
    from kombu.exceptions import ChannelError, OperationalError

    from config.celery_app import app

    depths: dict[str, int] = {}
    try:
        with app.connection_for_read(connect_timeout=BROKER_TIMEOUT_S) as conn:
            conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_S)
            for name in queue_names():
                # A channel per queue: AMQP closes the channel that declared a missing queue.
                channel = conn.channel()
                try:
                    _queue, count, _consumers = channel.queue_declare(queue=name, passive=True)
                    depths[name] = int(count)
                except ChannelError:
                    depths[name] = 0  # never declared, or empty and gone (Redis): nothing waits
                finally:
                    try:
                        channel.close()
                    except Exception:  # noqa: BLE001 - a channel AMQP already closed
                        pass
    except (OperationalError, OSError, ConnectionError) as exc:
        logger.warning("metrics: the broker is unreachable: %s", exc)
        return None
    return depths


def fair_share() -> dict:
    """Worker slots up, each tenant's effective running-node limit, and each capped data
    source's pool (tenant slug, name, cap, nodes running) — the fair share's numbers."""
    from accounts.models import Tenant
    from flows.models import DataSource
    from operations.services import slots

    state = slots.read_state()
    limits = []
    for slug, own in Tenant.objects.order_by("slug").values_list("slug", "max_running_nodes"):
        limit = own if own is not None else state.default
        if limit is not None:
            limits.append((slug, limit))
    pools = []
    for pk, slug, name, cap in (
        DataSource.objects.filter(max_concurrency__isnull=False)
        .order_by("tenant__slug", "name")
        .values_list("pk", "tenant__slug", "name", "max_concurrency")
    ):
        used = NodeRun.objects.filter(status=NodeStatus.RUNNING, pools__contains=f",{pk},").count()
        pools.append((slug, name, cap, used))
    return {"worker_slots": state.slots, "tenant_limits": limits, "pools": pools}
