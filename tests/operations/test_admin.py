"""The Django admin shows runs read-only and its actions call the run services."""

import pytest

from operations.models import FlowRun
from operations.services import run_start
from tests.factories import chain_flow

pytestmark = pytest.mark.django_db


def test_admin_lists_runs_and_stops_them_through_the_service(client, superuser, tenant, admin_user):
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=2)
    run = run_start(flow=flow, mode="try", user=admin_user)
    client.force_login(superuser)

    assert client.get("/admin/operations/flowrun/").status_code == 200
    assert client.get(f"/admin/operations/flowrun/{run.pk}/change/").status_code == 200
    assert client.get("/admin/operations/noderun/").status_code == 200
    res = client.post(
        "/admin/operations/flowrun/",
        {"action": "run_stopped", "_selected_action": [run.pk]},
    )
    assert res.status_code == 302
    assert FlowRun.objects.get(pk=run.pk).status == "stopped"
    assert client.get("/admin/operations/flowrun/add/").status_code == 403


def test_admin_shows_the_om_audit_trail_read_only(client, superuser, tenant, admin_user):
    from operations.models import OperationRecord
    from operations.services import run_stop

    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=2)
    run = run_start(flow=flow, mode="try", user=admin_user)
    run_stop(run=run, user=admin_user, reason="stuck on the warehouse lock")
    record = OperationRecord.objects.get(run=run)
    client.force_login(superuser)

    page = client.get("/admin/operations/operationrecord/").content.decode()
    assert "stuck on the warehouse lock" in page and flow.name in page
    assert client.get(f"/admin/operations/operationrecord/{record.pk}/change/").status_code == 200
    assert client.get("/admin/operations/operationrecord/add/").status_code == 403
    res = client.post(f"/admin/operations/operationrecord/{record.pk}/delete/", {"post": "yes"})
    assert res.status_code == 403
    assert OperationRecord.objects.filter(pk=record.pk).exists()


def test_admin_shows_webhook_deliveries_with_their_attempts(client, superuser, tenant, admin_user):
    from flows.models import WebhookAttempt, WebhookDelivery
    from flows.webhooks.services import webhook_create

    subscription, _ = webhook_create(
        tenant=tenant,
        user=admin_user,
        url="https://hooks.example.com/in",
        events=["run.failed"],
        secret="s" * 20,
    )
    delivery = WebhookDelivery.objects.create(
        tenant=tenant,
        subscription=subscription,
        event_id="00000000-0000-0000-0000-000000000002",
        event_type="run.failed",
        stream="run:1",
        body="{}",
        status="failed",
        attempts=1,
    )
    WebhookAttempt.objects.create(
        tenant=tenant, delivery=delivery, number=1, status_code=502, error="Bad Gateway"
    )
    client.force_login(superuser)

    assert "hooks.example.com" in client.get("/admin/flows/webhookdelivery/").content.decode()
    page = client.get(f"/admin/flows/webhookdelivery/{delivery.pk}/change/").content.decode()
    assert "502" in page and "Bad Gateway" in page
    assert "s" * 20 not in page
    assert client.get("/admin/flows/webhookdelivery/add/").status_code == 403
