"""Django admin for webhook subscriptions: writes through the services, the secret is
write-only (never on a page), tenant admins see only their tenants' subscriptions."""

import pytest

from flows.models import WebhookSubscription
from flows.webhooks import services

pytestmark = pytest.mark.django_db

SECRET = "admin-typed-secret-7f3a91"


@pytest.fixture
def staff_admin(admin_user):
    admin_user.is_staff = True
    admin_user.save()
    return admin_user


def test_admin_adds_and_changes_a_webhook_and_never_sees_the_secret(client, staff_admin, tenant):
    client.force_login(staff_admin)
    url = "/admin/flows/webhooksubscription/add/"
    base = {"tenant": tenant.pk, "url": "https://hooks.example.com/x", "is_active": "on"}
    missing = client.post(url, {**base, "events_choice": ["run.failed"]})
    assert missing.status_code == 200
    assert "A new webhook needs a secret" in missing.content.decode()
    short = client.post(url, {**base, "events_choice": ["run.failed"], "secret": "short"})
    assert "Give 16 to 200 characters" in short.content.decode()
    no_event = client.post(url, {**base, "secret": SECRET})
    assert no_event.status_code == 200 and not WebhookSubscription.objects.exists()

    added = client.post(
        url, {**base, "events_choice": ["run.failed", "run.started"], "secret": SECRET}
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    hook = WebhookSubscription.objects.get()
    assert hook.secret == SECRET and hook.events == ["run.started", "run.failed"]
    assert hook.history.get().history_user == staff_admin

    for path in ("change", "history"):
        page = client.get(f"/admin/flows/webhooksubscription/{hook.pk}/{path}/")
        assert page.status_code == 200
        assert SECRET not in page.content.decode()
        assert hook.secret_encrypted not in page.content.decode()

    # Saving with an empty secret keeps it; unticking "active" pauses it
    kept = client.post(
        f"/admin/flows/webhooksubscription/{hook.pk}/change/",
        {"url": "https://hooks.example.com/y", "events_choice": ["run.failed"], "secret": ""},
    )
    assert kept.status_code == 302, kept.content.decode()[:2000]
    hook.refresh_from_db()
    assert (hook.url, hook.events, hook.is_active, hook.secret) == (
        "https://hooks.example.com/y",
        ["run.failed"],
        False,
        SECRET,
    )


def test_a_tenant_admin_sees_only_their_tenants_webhooks(client, outsider, tenant, admin_user):
    hook, _ = services.webhook_create(
        tenant=tenant, user=admin_user, url="https://acme.example.com/h", events=["run.failed"]
    )
    outsider.is_staff = True
    outsider.save()
    client.force_login(outsider)
    listing = client.get("/admin/flows/webhooksubscription/")
    assert listing.status_code == 200
    assert "acme.example.com" not in listing.content.decode()
    change = client.get(f"/admin/flows/webhooksubscription/{hook.pk}/change/")
    assert change.status_code in (302, 403, 404)
