"""The service accounts page in a real Chromium: an admin adds an account, issues it a token
(shown once), revokes it, and deactivates the account."""

from __future__ import annotations

import pytest

from accounts.models import ApiToken, Membership, ServiceAccount
from tests.browser.conftest import sign_in


@pytest.mark.django_db(transaction=True)
def test_admin_adds_an_account_and_manages_its_tokens(page, tenant, admin_user):
    page.on("dialog", lambda d: d.accept())
    sign_in(page, admin_user)
    page.goto("/tenant/service-accounts/")
    page.wait_for_selector("text=No service accounts yet.")

    page.click("[data-testid=sa-new]")
    page.fill("#sa-name", "Bad Name")
    page.click("#sa-form button[type=submit]")
    page.wait_for_selector("#sa-dialog .field-error")
    page.fill("#sa-name", "etl-bot")
    page.click("#sa-form button[type=submit]")
    row = page.locator("#sa-rows tr", has_text="etl-bot")
    row.wait_for()
    account = ServiceAccount.objects.get()

    row.locator("[data-act=tokens]").click()
    page.wait_for_selector("#sa-token-rows >> text=No tokens yet.")
    page.click("[data-testid=sa-token-new]")
    page.fill("#sa-token-name", "loader")
    page.check("#sa-token-form input[value='runs:read']")
    page.click("#sa-token-form button[type=submit]")
    page.wait_for_selector("[data-testid=sa-token-shown]:not([hidden])")
    key = page.inner_text("[data-testid=sa-token-shown] [data-token]").strip()
    token = ApiToken.objects.get(user=account.user)
    assert key.startswith(token.prefix) and token.scopes == ["runs:read"]

    trow = page.locator("#sa-token-rows tr", has_text="loader")
    trow.locator("[data-act=revoke]").click()
    trow.locator("[data-state=revoked]").wait_for()
    token.refresh_from_db()
    assert token.revoked_at is not None

    row.locator("[data-act=toggle]").click()
    page.locator("#sa-rows tr", has_text="deactivated").wait_for()
    assert Membership.objects.get(user=account.user, tenant=tenant).is_active is False
    page.reload()
    page.locator("#sa-rows tr", has_text="etl-bot").wait_for()
    assert key not in page.content()
