"""The webhooks page in a real Chromium: an admin subscribes a URL (the generated secret is
shown once, then never again), pauses it, sees a failed delivery and sends it again; a
wrong URL is refused next to the field."""

from __future__ import annotations

import uuid

import pytest

from flows.models import WebhookDelivery, WebhookSubscription
from tests.browser.conftest import sign_in


@pytest.mark.django_db(transaction=True)
def test_admin_subscribes_pauses_and_redelivers(page, tenant, admin_user):
    sign_in(page, admin_user)
    page.goto("/webhooks/")
    page.wait_for_selector("text=No webhooks yet.")

    # A wrong URL and no event: both refused in the dialog, naming the fields
    page.click("[data-testid=webhook-new]")
    page.fill("#webhook-url", "not a url")
    page.click("#webhook-form button[type=submit]")
    page.wait_for_selector("#webhook-dialog >> text=Give an http(s) URL")
    assert WebhookSubscription.objects.count() == 0

    page.fill("#webhook-url", "https://hooks.example.com/tributary")
    page.check("#webhook-form input[value='run.failed']")
    page.check("#webhook-form input[value='flow.published']")
    page.click("#webhook-form button[type=submit]")
    page.wait_for_selector("[data-testid=webhook-secret]:not([hidden])")
    hook = WebhookSubscription.objects.get()
    assert hook.events == ["run.failed", "flow.published"]
    shown = page.inner_text("[data-testid=webhook-secret] [data-secret]").strip()
    assert shown == hook.secret and shown.startswith("whsec_")
    row = page.locator("#webhook-rows tr", has_text="hooks.example.com")
    row.wait_for()
    assert "active" in row.inner_text()

    # Pause it
    row.locator("[data-act=toggle]").click()
    page.locator("#webhook-rows tr", has_text="paused").wait_for()
    hook.refresh_from_db()
    assert hook.is_active is False

    # A failed delivery is listed with its status and can be sent again
    delivery = WebhookDelivery.objects.create(
        tenant=tenant,
        subscription=hook,
        event_id=uuid.uuid4(),
        event_type="run.failed",
        stream="run:1",
        body="{}",
        status="failed",
        attempts=8,
        last_status_code=503,
    )
    page.locator("#webhook-rows tr [data-act=deliveries]").click()
    drow = page.locator(f"#delivery-rows tr[data-id='{delivery.pk}']")
    drow.locator("[data-status=failed]").wait_for()
    assert "HTTP 503" in drow.inner_text()
    drow.locator("[data-act=redeliver]").click()
    drow.locator("[data-status=pending]").wait_for()
    delivery.refresh_from_db()
    assert delivery.status == "pending"

    # After a reload the secret is nowhere on the page
    page.reload()
    page.locator("#webhook-rows tr", has_text="hooks.example.com").wait_for()
    assert shown not in page.content()
