"""The OpenAPI schema generates without warnings and the docs are served without a CDN."""

import pytest
from django.core.management import call_command


def test_schema_generates_without_warnings(db, tmp_path, capsys):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(out))
    assert out.stat().st_size > 1000


@pytest.mark.django_db
def test_docs_page_uses_local_assets(client, admin_user):
    client.force_login(admin_user)
    res = client.get("/api/docs/")
    assert res.status_code == 200
    body = res.content.decode()
    assert "cdn.jsdelivr" not in body and "unpkg.com" not in body
    assert "/static/drf_spectacular_sidecar/" in body
