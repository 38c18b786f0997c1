"""Sign-in, navigation, tenant switching and error pages."""

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.views.defaults import server_error

from tests.factories import MembershipFactory, TenantFactory, UserFactory
from tests.factories.accounts import PASSWORD

pytestmark = pytest.mark.django_db


def test_anonymous_user_is_sent_to_sign_in(page):
    response = page().get("/flows/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/flows/")


def test_sign_in_page_signs_in_and_lands_on_the_dashboard(page, member_user):
    client = page()
    assert client.get("/accounts/login/").status_code == 200
    response = client.post(
        "/accounts/login/", {"username": member_user.username, "password": PASSWORD}, follow=True
    )
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == "/"
    assert b"Dashboard" in response.content


def test_wrong_password_shows_the_error_on_the_form(page, member_user):
    response = page().post(
        "/accounts/login/", {"username": member_user.username, "password": "nope"}
    )
    assert response.status_code == 200
    assert b"banner error" in response.content


def test_navigation_shows_members_only_to_tenant_admins(page, admin_user, member_user):
    assert b'href="/tenant/members/"' in page(admin_user).get("/").content
    assert b'href="/tenant/members/"' not in page(member_user).get("/").content


def test_tenant_switcher_changes_the_page_tenant(page, tenant, member_user):
    second = TenantFactory(slug="initech", name="Initech")
    MembershipFactory(user=member_user, tenant=second, role="admin")
    client = page(member_user)
    # Two tenants and no default: the switcher lists both.
    body = client.get("/").content.decode()
    assert 'name="tenant"' in body and "Initech" in body
    response = client.post("/tenant/switch/", {"tenant": "initech", "next": "/flows/"})
    assert response.status_code == 302 and response["Location"] == "/flows/"
    assert "Initech" in client.get("/flows/").content.decode()


def test_switching_to_a_tenant_you_do_not_belong_to_is_404(page, member_user, other_tenant):
    assert (
        page(member_user).post("/tenant/switch/", {"tenant": other_tenant.slug}).status_code == 404
    )


def test_switch_refuses_an_offsite_redirect(page, member_user, tenant):
    response = page(member_user).post(
        "/tenant/switch/", {"tenant": tenant.slug, "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def test_user_without_a_tenant_gets_an_explanation(page, db):
    lonely = UserFactory(username="lonely")
    response = page(lonely).get("/")
    assert response.status_code == 403
    assert b"not an active member of any tenant" in response.content


def test_unknown_page_uses_the_404_template(page, member_user):
    response = page(member_user).get("/no-such-page/")
    assert response.status_code == 404
    assert b"Not found" in response.content
    assert b"Traceback" not in response.content


def test_server_error_page_shows_no_stack_trace():
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    body = response.content.decode()
    assert "Something went wrong" in body and "Traceback" not in body
    assert "Something went wrong" in render_to_string("500.html")


def test_pages_send_a_strict_content_security_policy(page, member_user):
    response = page(member_user).get("/flows/")
    policy = response.headers.get("Content-Security-Policy", "")
    assert "script-src 'self'" in policy
    # No inline script may be needed by our pages: the only <script> tags carry a src or JSON.
    body = response.content.decode()
    for chunk in body.split("<script")[1:]:
        head = chunk.split(">", 1)[0]
        assert "src=" in head or 'type="application/json"' in head, head
