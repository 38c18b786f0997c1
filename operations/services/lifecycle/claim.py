"""Claiming a node: queued -> running for this worker, with what executing it needs."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field

from django.utils import timezone

from flows.secrets.runtime import RenderedConfig
from operations.choices import EventKind, RunMode, RunStatus
from operations.engine.core import RUNNING
from operations.models import FlowRun, NodeRun
from operations.plan import Plan, plan_for

from .. import slots, store
from ..logs import event, log_line
from ..monitor import Tracked
from ..webhooks import run_webhook
from .execute import render_node_config
from .retry import LOST_PREFIX, node_lost

HOSTNAME = socket.gethostname()


def worker_name() -> str:
    return f"{HOSTNAME}:{os.getpid()}"


@dataclass
class Claim:
    """A node run this worker has moved to running, with what executing it needs."""

    row: dict
    plan: Plan
    spec: object
    rendered: dict | None
    render_error: str
    tracked: Tracked
    dry: bool
    info: dict = field(default_factory=dict)
    # Secrets hook: the values to execute with and their redaction (see .execute).
    secrets: RenderedConfig | None = None


def node_claim(node_run_id: int) -> Claim | None:
    """queued -> running with one status-guarded UPDATE; None when there is nothing to do.

    The node's own status is the guard: stopping a run stops its queued nodes, pausing it
    puts them back to pending, so a message for them finds nothing to claim. Under fair
    share a node whose tenant or pool has no free slot is parked as waiting instead.
    """
    now = timezone.now()
    me = worker_name()
    # Fair share: the slot of the node's tenant and pools is taken by this claim, or the
    # node is parked as waiting (slots.claim_fair).
    got, admit = slots.claim_fair(node_run_id, now, me)
    if admit:
        # Parked, and a slot was released meanwhile: admission decides who takes it.
        slots.admit_quietly()
        return None
    if got is None:
        row = NodeRun.objects.filter(pk=node_run_id).values("run_id", "worker").first()
        if row and _worker_is_dead(row["worker"]):
            # The broker redelivered the message of a process of this host that died: the
            # node it ran, or the ones it went on with, are lost with it.
            for pk in NodeRun.objects.filter(
                run_id=row["run_id"], status=RUNNING, worker=row["worker"]
            ).values_list("pk", flat=True):
                node_lost(pk, f"{LOST_PREFIX}: process {row['worker']} died while running the node")
        return None
    return claimed(got, now, me)


def claimed(got: dict, now, me: str) -> Claim:
    """What executing a node this worker just moved to running needs."""
    node_run_id = got["id"]
    info = store.run_info(got["run_id"])
    row = {
        **got,
        "run__status": info["status"],
        "run__mode": info["mode"],
        "run__flow_id": info["flow_id"],
        "run__version_id": info["version_id"],
        "run__business_time": info["business_time"],
        "run__parameters": info.get("parameters") or {},
    }
    plan = plan_for(run_id=row["run_id"], version_id=info["version_id"], stamp=info["stamp"])
    spec = plan.nodes.get(row["node_id"])
    dry = info["mode"] == RunMode.DRY
    rendered, render_error, secrets = render_node_config(row, plan, spec, tolerant=dry)
    if info["status"] != RunStatus.RUNNING:
        waiting = FlowRun.objects.filter(
            pk=row["run_id"], status__in=(RunStatus.QUEUED, RunStatus.WAITING)
        )
        with store.relaxed_commit():
            if waiting.filter(started_at__isnull=True).update(
                status=RunStatus.RUNNING, started_at=now
            ):
                run = FlowRun(pk=row["run_id"], tenant_id=row["tenant_id"])
                event(run, EventKind.RUN_STARTED, f"Started by node {row['node_name']}.")
                run_webhook(run=row["run_id"], tenant_id=row["tenant_id"], event_type="run.started")
            else:
                waiting.update(status=RunStatus.RUNNING)
        info["status"] = RunStatus.RUNNING
    timeout = spec.timeout if spec else 3600
    tracked = Tracked(node_run_id=node_run_id, deadline=time.monotonic() + timeout)
    tracked.rendered = rendered
    tracked.log(log_line(f"attempt {row['attempt']} started on {me}"))
    return Claim(row, plan, spec, rendered, render_error, tracked, dry, info, secrets)


def _worker_is_dead(worker: str) -> bool:
    host, _, pid = (worker or "").rpartition(":")
    if host != HOSTNAME or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
