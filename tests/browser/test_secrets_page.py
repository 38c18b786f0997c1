"""The secrets page in a real Chromium: an admin adds a secret and sets a new value; the
value is never shown again (not in the table, not in the edit dialog); a member sees the
names to reference, without the buttons to manage them."""

from __future__ import annotations

import pytest

from flows.models import Secret
from tests.browser.conftest import sign_in

VALUE = "browser-Secret-Value-31c9"


@pytest.mark.django_db(transaction=True)
def test_admin_manages_secrets_and_never_sees_a_value_again(page, tenant, admin_user, member_user):
    sign_in(page, admin_user)
    page.goto("/secrets/")
    page.wait_for_selector("text=No secrets yet.")
    page.click("[data-testid=secret-new]")
    page.fill("#secret-name", "API_TOKEN")
    page.fill("#secret-value", VALUE)
    page.click("#secret-form button[type=submit]")
    row = page.locator("#secret-rows tr", has_text="API_TOKEN")
    row.wait_for()
    assert "${secret.API_TOKEN}" in row.inner_text()
    assert Secret.objects.get(name="API_TOKEN").value == VALUE

    # A too short value is refused in the dialog, naming the field
    row.locator("[data-act=edit]").click()
    assert page.input_value("#secret-value") == ""
    page.fill("#secret-value", "abc")
    page.click("#secret-form button[type=submit]")
    page.wait_for_selector("#secret-dialog >> text=At least 4 characters.")
    page.fill("#secret-value", VALUE + "-2")
    page.click("#secret-form button[type=submit]")
    page.wait_for_selector("#secret-dialog", state="hidden")
    page.wait_for_function("() => !document.querySelector('#secret-dialog').open")
    assert Secret.objects.get(name="API_TOKEN").value == VALUE + "-2"
    assert VALUE not in page.content()

    # A member sees the name and its reference, and no way to change it
    page.context.clear_cookies()
    sign_in(page, member_user)
    page.goto("/secrets/")
    page.locator("#secret-rows tr", has_text="${secret.API_TOKEN}").wait_for()
    assert page.locator("[data-testid=secret-new]").count() == 0
    assert page.locator("[data-act=edit]").count() == 0
    assert VALUE not in page.content()
