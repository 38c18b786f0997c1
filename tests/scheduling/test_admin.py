"""The schedule admin goes through the same services (validation, beat sync) and is tenant-scoped."""

import pytest
from django_celery_beat.models import PeriodicTask

from scheduling.models import Schedule

pytestmark = pytest.mark.django_db


def form(flow, **fields):
    return {
        "flow": flow.pk,
        "enabled": "on",
        "kind": "cron",
        "cron": "0 6 * * *",
        "interval": "",
        "time": "",
        "days": "[]",
        "start_date": "2024-01-01",
        "end_date": "",
        "timezone": "Europe/Berlin",
        **fields,
    }


def test_superuser_adds_a_schedule_and_beat_gets_its_entry(client, superuser, published_flow):
    client.force_login(superuser)

    res = client.post("/admin/scheduling/schedule/add/", form(published_flow))

    assert res.status_code == 302, res.content.decode()[:2000]
    schedule = Schedule.objects.get(flow=published_flow)
    assert (schedule.cron, schedule.timezone) == ("0 6 * * *", "Europe/Berlin")
    # Saved as the draft: beat gets it when the flow is published.
    assert not PeriodicTask.objects.filter(name=f"flow-schedule:{schedule.pk}", enabled=True)
    from flows import services as flow_services

    flow_services.flow_publish(flow=published_flow, user=superuser)
    assert PeriodicTask.objects.get(name=f"flow-schedule:{schedule.pk}").enabled
    assert schedule.history.first().history_user == superuser


def test_bad_cron_in_the_admin_is_a_form_error(client, superuser, flow):
    client.force_login(superuser)

    res = client.post("/admin/scheduling/schedule/add/", form(flow, cron="0 25 * * *"))

    assert res.status_code == 200
    assert "out of range" in res.content.decode()
    assert not Schedule.objects.exists()


def test_staff_tenant_admin_sees_only_own_tenant_schedules(
    client, admin_user, outsider, make_flow, member_user
):
    from flows import services as flow_services
    from scheduling import services

    mine = services.schedule_save(flow=make_flow("mine"), user=member_user, cron="0 1 * * *")
    foreign_flow = flow_services.flow_create(
        tenant=outsider.memberships.get().tenant, user=outsider, name="theirs"
    )
    theirs = services.schedule_save(flow=foreign_flow, user=outsider, cron="0 2 * * *")
    admin_user.is_staff = True
    admin_user.save()
    client.force_login(admin_user)

    res = client.get("/admin/scheduling/schedule/")

    assert res.status_code == 200
    assert list(res.context["cl"].queryset) == [mine]
    assert client.get(f"/admin/scheduling/schedule/{theirs.pk}/change/").status_code in (
        302,
        403,
        404,
    )
