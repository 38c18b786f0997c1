"""schedule.missed: a fire time that fired no run (here: the flow was frozen) is reported
once to the webhooks subscribed to it, by the sweep's report."""

import json

import pytest

from flows import services as flow_services
from flows.models import WebhookDelivery
from flows.webhooks.services import webhook_create
from scheduling import services
from scheduling.missed import schedules_report_missed
from tests.scheduling.test_fire import backdate, schedule_on, utc

pytestmark = pytest.mark.django_db


def test_a_missed_fire_time_is_reported_once(published_flow, member_user, admin_user, tenant):
    # Given an hourly schedule that fired at 10:00, then a frozen flow at 11:00
    subscription, _ = webhook_create(
        tenant=tenant,
        user=admin_user,
        url="https://hooks.example.com/m",
        events=["schedule.missed"],
    )
    schedule = schedule_on(published_flow, member_user, cron="0 * * * *")
    backdate(schedule, published_flow)
    services.schedule_fire(schedule_id=schedule.pk, now=utc(2024, 3, 5, 10, 0, 1))
    flow_services.flow_freeze(flow=published_flow, user=member_user)

    # When the sweep reports at 11:06 (11:00 is GRACE old), and again a minute later
    first = schedules_report_missed(now=utc(2024, 3, 5, 11, 6))
    again = schedules_report_missed(now=utc(2024, 3, 5, 11, 7))

    # Then 11:00 was reported once; 10:00 fired, so it is not missed
    assert (first, again) == (1, 0)
    delivery = WebhookDelivery.objects.get()
    body = json.loads(delivery.body)
    assert delivery.subscription_id == subscription.pk and body["type"] == "schedule.missed"
    assert body["data"]["fire_time"] == "2024-03-05T11:00:00Z"
    assert body["data"]["schedule"]["flow"] == published_flow.pk and body["data"]["frozen"]


def test_nothing_is_looked_at_without_a_subscriber(published_flow, member_user):
    schedule = schedule_on(published_flow, member_user, cron="0 * * * *")
    backdate(schedule, published_flow)

    assert schedules_report_missed(now=utc(2024, 3, 5, 11, 6)) == 0
    assert not WebhookDelivery.objects.exists()
