"""The API tokens page: every signed-in user sees and manages their own tokens only; a token
of someone else (same tenant or another) stays out of reach (404 through the API it uses)."""

import pytest

from accounts.services import tokens as token_services

pytestmark = pytest.mark.django_db


def _token(user, name="script"):
    token, key = token_services.token_issue(user=user, actor=user, name=name, scopes=["flows:read"])
    return token, key


@pytest.mark.parametrize("who", ["admin_user", "dba_user", "member_user", "outsider"])
def test_every_signed_in_user_gets_their_tokens_page(page, request, who):
    user = request.getfixturevalue(who)
    response = page(user).get("/account/tokens/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-testid="token-new"' in body and "flows:read" in body
    assert 'href="/account/tokens/"' in page(user).get("/account/password/").content.decode()


def test_anonymous_is_sent_to_sign_in(page):
    response = page().get("/account/tokens/")
    assert response.status_code == 302 and "login" in response["Location"]


def test_only_your_own_tokens_are_listed_and_revocable(page, admin_user, member_user, outsider):
    mine, key = _token(member_user, "mine")
    theirs, _ = _token(admin_user, "alices")
    foreign, _ = _token(outsider, "bobs")
    client = page(member_user)
    assert [t["name"] for t in client.get("/api/v1/me/tokens/").json()["results"]] == ["mine"]
    for other in (theirs, foreign):
        assert client.delete(f"/api/v1/me/tokens/{other.pk}/").status_code == 404
        other.refresh_from_db()
        assert other.revoked_at is None
    assert key not in client.get("/account/tokens/").content.decode()
