"""`load_demo` creates the demo tenant, its users and a published sample flow, idempotently."""

from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import Membership, Tenant, User
from flows.models import DataSource, FlowVersion, TaskFlow

pytestmark = pytest.mark.django_db


def test_load_demo_twice_is_idempotent_and_prints_logins(settings, tmp_path):
    settings.SQLITE_DATASOURCE_DIRS = [str(tmp_path)]
    out = StringIO()
    call_command("load_demo", stdout=out)
    call_command("load_demo", stdout=out)
    text = out.getvalue()
    assert "demo-admin-pass-2024" in text and "demo-member-pass-2024" in text
    tenant = Tenant.objects.get(slug="demo")
    assert Membership.objects.filter(tenant=tenant).count() == 4
    assert User.objects.get(username="demo-admin").check_password("demo-admin-pass-2024")
    flow = TaskFlow.objects.get(tenant=tenant, name="Daily sales demo")
    assert flow.status == "published"
    assert FlowVersion.objects.filter(flow=flow).count() == 1
    assert set(flow.nodes.values_list("type", flat=True)) >= {
        "sql",
        "sql_assign",
        "condition",
        "data_sync",
    }
    assert DataSource.objects.filter(tenant=tenant).count() == 2
