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
