"""The watchdog (a periodic task): lost workers, parked attempts that are due, lost messages,
and nodes waiting for a fair-share slot that is free."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from operations import conf, dispatch
from operations.choices import RUN_ACTIVE, EventKind, WaitingReason
from operations.engine.core import CLAIMABLE, RUNNING, WAITING, sends
from operations.models import FlowRun, NodeRun

from .creation import runs_admit, runs_waiting_tenants
from .decisions import is_paused, run_evaluate, run_plan
from .lifecycle import LOST_PREFIX, node_lost
from .locking import lock_node_run
from .logs import event
from .slots import admit
from .store import RUN_FIELDS


def _node_timeout(run_id: int, node_id: int) -> int:
    run = FlowRun.objects.select_related("version").only(*RUN_FIELDS).get(pk=run_id)
    spec = run_plan(run).nodes.get(node_id)
    return spec.timeout if spec else 3600


def watchdog_sweep(
    *, heartbeat_timeout: float | None = None, resend_after: float | None = None
) -> dict:
    """Fail or retry nodes whose worker stopped beating, send due parked nodes, re-send lost ones."""
    now = timezone.now()
    heartbeat_timeout = heartbeat_timeout or conf.get("TRIBUTARY_HEARTBEAT_TIMEOUT")
    resend_after = resend_after or conf.get("TRIBUTARY_QUEUED_RESEND_AFTER")
    stale_before = now - timedelta(seconds=heartbeat_timeout)
    report = {"lost": 0, "sent": 0, "resent": 0, "evaluated": 0}

    for pk, worker, beat in NodeRun.objects.filter(
        status=RUNNING, heartbeat_at__lt=stale_before
    ).values_list("pk", "worker", "heartbeat_at")[:500]:
        reason = (
            f"{LOST_PREFIX}: {worker or 'its worker'} sent no heartbeat since {beat.isoformat()}"
        )
        if node_lost(pk, reason, stale_before=stale_before):
            report["lost"] += 1

    # Queued nodes and deferred ones (between two checks) whose time has come, or whose
    # message the broker may have lost.
    due = NodeRun.objects.filter(
        status__in=CLAIMABLE, queued_at__isnull=True, next_attempt_at__lte=now
    )
    resend = NodeRun.objects.filter(
        status__in=CLAIMABLE, queued_at__lt=now - timedelta(seconds=resend_after)
    )
    for qs, key in ((due, "sent"), (resend, "resent")):
        for pk, run_id in qs.values_list("pk", "run_id")[:1000]:
            with transaction.atomic():
                nr = lock_node_run(pk)
                if nr is None or nr.status not in CLAIMABLE:
                    continue
                run = FlowRun.objects.only("status", "tenant_id").get(pk=run_id)
                if not sends(nr.status, paused=is_paused(run)):
                    continue
                nr.queued_at = now
                nr.save(update_fields=["queued_at"])
                dispatch.send_nodes([(nr.pk, now, None, _node_timeout(run_id, nr.node_id))])
                if key == "resent":
                    event(
                        run,
                        EventKind.NODE_RESENT,
                        f"{nr.node_name} queued since long: sent again",
                        node_run=nr,
                    )
            report[key] += 1

    # A safety net for gates: runs holding waiting nodes whose previous run may have moved.
    for run_id in (
        NodeRun.objects.filter(
            status=WAITING,
            waiting_reason=WaitingReason.CONCURRENCY_POLICY,
            run__status__in=RUN_ACTIVE,
        )
        .values_list("run_id", flat=True)
        .distinct()[:200]
    ):
        run_evaluate(run_id)
        report["evaluated"] += 1

    # Fair share: nodes parked for a slot whose release no finishing task noticed (a
    # worker killed while holding it, a limit raised).
    report["admitted"] = admit(fresh=True)
    for tenant_id in runs_waiting_tenants():
        report["admitted"] += runs_admit(tenant_id)
    return report
