"""The API tokens page in a real Chromium: a member creates a token (shown once, and it
works against the API), sees it listed without its secret, then revokes it."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from accounts.models import ApiToken
from tests.browser.conftest import sign_in


def _api_status(url: str, key: str, tenant: str) -> int:
    """A request with the token only (no browser cookies)."""
    req = urllib.request.Request(url, headers={"Authorization": f"Token {key}", "X-Tenant": tenant})
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.django_db(transaction=True)
def test_member_creates_and_revokes_a_token(page, tenant, member_user, live_server):
    sign_in(page, member_user)
    page.goto("/")
    page.click("[data-testid=nav-tokens]")
    page.wait_for_selector("text=No API tokens yet.")

    # No scope: refused in the dialog, naming the field
    page.click("[data-testid=token-new]")
    page.fill("#token-name", "nightly export")
    page.click("#token-form button[type=submit]")
    page.wait_for_selector("#token-dialog .field-error")
    assert ApiToken.objects.count() == 0

    page.check("#token-form input[value='flows:read']")
    page.click("#token-form button[type=submit]")
    page.wait_for_selector("[data-testid=token-shown]:not([hidden])")
    key = page.inner_text("[data-testid=token-shown] [data-token]").strip()
    token = ApiToken.objects.get()
    assert token.user == member_user and token.scopes == ["flows:read"]
    row = page.locator("#token-rows tr", has_text="nightly export")
    row.wait_for()
    assert "flows:read" in row.inner_text() and key not in row.inner_text()

    # The shown token works against the API
    assert _api_status(live_server.url + "/api/v1/flows/", key, tenant.slug) == 200

    # Revoke it: listed as revoked, refused by the API; after a reload the secret is gone
    page.on("dialog", lambda d: d.accept())
    row.locator("[data-act=revoke]").click()
    row.locator("[data-state=revoked]").wait_for()
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert _api_status(live_server.url + "/api/v1/flows/", key, tenant.slug) == 401
    page.reload()
    page.locator("#token-rows tr", has_text="nightly export").wait_for()
    assert key not in page.content()
