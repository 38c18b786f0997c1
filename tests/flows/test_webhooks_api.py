"""/api/v1/webhooks/: who manages subscriptions, the secret shown once, events recorded as
deliveries, signed POSTs through the outbound policy, retries with backoff, order per run,
deliveries listed with their attempts and sent again."""

from __future__ import annotations

import json

import pytest

from flows.models import WebhookDelivery
from flows.services import flow_publish
from flows.webhooks import services, signature
from tests.factories import chain_flow
from tests.integration.receiver import verify

pytestmark = pytest.mark.django_db

URL = "/api/v1/webhooks/"


def _subscribe(client, url="https://hooks.example.com/t", events=("run.failed",), **extra):
    return client.post(URL, {"url": url, "events": list(events), **extra}, format="json")


def test_a_tenant_admin_subscribes_and_sees_the_secret_once(api, admin_user):
    client = api(admin_user)

    res = _subscribe(client, events=["run.failed", "run.started"])

    assert res.status_code == 201, res.content
    body = res.json()
    assert body["secret"].startswith("whsec_") and len(body["secret"]) > 30
    assert body["events"] == ["run.started", "run.failed"]
    shown = client.get(f"{URL}{body['id']}/").json()
    assert "secret" not in shown and "secret" not in str(client.get(URL).json())


def test_a_given_secret_is_kept_and_never_returned(api, admin_user):
    res = _subscribe(api(admin_user), secret="s" * 20)

    assert res.json()["secret"] == "s" * 20


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://x", "events": ["run.failed"]}, "url"),
        ({"url": "https://x.example", "events": []}, "events"),
        ({"url": "https://x.example", "events": ["run.exploded"]}, "events"),
        ({"url": "https://x.example", "events": ["run.failed"], "secret": "short"}, "secret"),
    ],
)
def test_bad_subscriptions_are_a_400_naming_the_field(api, admin_user, body, field):
    res = api(admin_user).post(URL, body, format="json")

    assert res.status_code == 400, res.content
    assert field in res.json()


@pytest.mark.parametrize("who", ["member_user", "dba_user"])
def test_only_tenant_admins_manage_webhooks(request, api, admin_user, who):
    hook = _subscribe(api(admin_user)).json()
    client = api(request.getfixturevalue(who))

    assert _subscribe(client).status_code == 403
    assert client.get(URL).status_code == 403
    assert client.patch(f"{URL}{hook['id']}/", {"is_active": False}, format="json").status_code in (
        403,
        404,
    )


def test_another_tenants_webhook_is_404(api, admin_user, outsider):
    hook = _subscribe(api(admin_user)).json()

    assert api(outsider).get(f"{URL}{hook['id']}/").status_code == 404
    assert api(outsider).get(f"{URL}{hook['id']}/deliveries/").status_code == 404


def test_publishing_records_a_flow_published_delivery(api, admin_user, tenant):
    hook = _subscribe(api(admin_user), events=["flow.published"]).json()
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=1)

    flow_publish(flow=flow, user=admin_user)

    delivery = WebhookDelivery.objects.get()
    body = json.loads(delivery.body)
    assert delivery.subscription_id == hook["id"] and delivery.status == "pending"
    assert set(body) == {"id", "type", "occurred_at", "tenant", "data"}
    assert body["type"] == "flow.published" and body["tenant"] == tenant.slug
    assert body["data"]["flow"]["id"] == flow.pk and body["data"]["version"]["number"] == 1


def test_a_paused_subscription_gets_nothing(api, admin_user, tenant):
    hook = _subscribe(api(admin_user), events=["flow.published"]).json()
    api(admin_user).patch(f"{URL}{hook['id']}/", {"is_active": False}, format="json")
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=1)

    flow_publish(flow=flow, user=admin_user)

    assert not WebhookDelivery.objects.exists()


def test_a_delivery_is_signed_and_listed_with_its_attempts(
    api, admin_user, tenant, webhook_receiver
):
    # Given a subscription of the local receiver, and a first attempt the receiver refuses
    created = _subscribe(api(admin_user), url=webhook_receiver.url, events=["flow.published"])
    hook = created.json()
    webhook_receiver.secret = hook["secret"]
    webhook_receiver.fail_first(1, 503)
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=1)
    flow_publish(flow=flow, user=admin_user)
    delivery = WebhookDelivery.objects.get()

    # When the task sends it twice (the first answer is a 503)
    assert services.delivery_send(delivery.pk) == services.backoff(1)
    assert services.delivery_send(delivery.pk) is None

    # Then the receiver verified the second POST's signature over the raw body
    [got] = webhook_receiver.received
    assert got["headers"]["x-tributary-event"] == "flow.published"
    assert got["headers"]["x-tributary-delivery"] == str(delivery.pk)
    assert got["headers"]["x-tributary-signature"] == signature(hook["secret"], got["raw"])
    assert verify(hook["secret"], got["raw"], got["headers"]["x-tributary-signature"])
    assert got["json"]["data"]["flow"]["id"] == flow.pk
    listed = api(admin_user).get(f"{URL}{hook['id']}/deliveries/").json()["results"]
    assert listed[0]["status"] == "delivered" and listed[0]["attempts_made"] == 2
    assert [(a["number"], a["status_code"]) for a in listed[0]["attempts"]] == [(1, 503), (2, 200)]
    assert listed[0]["body"]["type"] == "flow.published"


def test_a_delivery_can_be_sent_again(api, admin_user, tenant, webhook_receiver):
    hook = _subscribe(api(admin_user), url=webhook_receiver.url, events=["flow.published"]).json()
    webhook_receiver.secret = hook["secret"]
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=1)
    flow_publish(flow=flow, user=admin_user)
    delivery = WebhookDelivery.objects.get()
    services.delivery_send(delivery.pk)

    res = api(admin_user).post(f"{URL}{hook['id']}/deliveries/{delivery.pk}/redeliver/")
    services.delivery_send(delivery.pk)

    assert res.status_code == 202, res.content
    assert len(webhook_receiver.received) == 2
    assert webhook_receiver.received[0]["raw"] == webhook_receiver.received[1]["raw"]
    assert (
        api(admin_user).post(f"{URL}{hook['id']}/deliveries/999999/redeliver/").status_code == 404
    )


def test_a_stream_is_delivered_in_order(api, admin_user, tenant, webhook_receiver):
    # Given two events of one stream, the later one's task runs first
    hook = _subscribe(api(admin_user), url=webhook_receiver.url, events=["flow.published"]).json()
    webhook_receiver.secret = hook["secret"]
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=1)
    flow_publish(flow=flow, user=admin_user)
    flow.refresh_from_db()
    flow_publish(flow=flow, user=admin_user)
    first, second = WebhookDelivery.objects.order_by("pk")

    # Then it waits for the earlier one, which goes first
    assert services.delivery_send(second.pk) == services.ORDER_WAIT_S
    assert services.delivery_send(first.pk) is None
    assert services.delivery_send(second.pk) is None
    numbers = [e["json"]["data"]["version"]["number"] for e in webhook_receiver.received]
    assert numbers == [1, 2]


def test_a_url_the_outbound_policy_refuses_is_recorded_not_raised(
    api, admin_user, tenant, settings
):
    settings.OUTBOUND_ALLOW = []
    hook = _subscribe(api(admin_user), url="http://127.0.0.1:9/x", events=["flow.published"]).json()
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=1)
    flow_publish(flow=flow, user=admin_user)
    delivery = WebhookDelivery.objects.get()

    assert services.delivery_send(delivery.pk) == services.backoff(1)

    [attempt] = (
        api(admin_user).get(f"{URL}{hook['id']}/deliveries/").json()["results"][0]["attempts"]
    )
    assert attempt["status_code"] is None and "outbound policy" in attempt["error"]


def test_attempts_stop_after_the_last_one(api, admin_user, tenant, webhook_receiver):
    hook = _subscribe(api(admin_user), url=webhook_receiver.url, events=["flow.published"]).json()
    webhook_receiver.secret = hook["secret"]
    webhook_receiver.fail_first(services.MAX_ATTEMPTS, 500)
    flow, _ = chain_flow(tenant=tenant, owner=admin_user, length=1)
    flow_publish(flow=flow, user=admin_user)
    delivery = WebhookDelivery.objects.get()

    delays = [services.delivery_send(delivery.pk) for _ in range(services.MAX_ATTEMPTS)]

    assert delays[:3] == [2.0, 4.0, 8.0] and delays[-1] is None
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempts == services.MAX_ATTEMPTS
