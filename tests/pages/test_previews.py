"""The variables panel's preview: unsaved definitions resolved for a chosen business time."""

import json

import pytest

pytestmark = pytest.mark.django_db


def post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def test_variables_preview_resolves_unsaved_definitions(page, owner, flow):
    response = post(
        page(owner),
        f"/flows/{flow.pk}/variables/preview/",
        {
            "business_time": "2024-01-15T00:00:00+00:00",
            "variables": [
                {"name": "day", "type": "time", "format": "yyyyMMdd", "offset": "-1d"},
                {"name": "region", "type": "constant", "value": "eu"},
            ],
            "config": {
                "sql": "select * from t where d = '${day}' and r = '${region}' and b = '${bizdate}'"
            },
        },
    )
    assert response.status_code == 200
    data = response.json()
    assert data["values"]["day"] == "20240114" and data["values"]["bizdate"] == "2024-01-14"
    assert (
        data["rendered"]["sql"]
        == "select * from t where d = '20240114' and r = 'eu' and b = '2024-01-14'"
    )


def test_variables_preview_names_the_bad_definition(page, owner, flow):
    response = post(
        page(owner),
        f"/flows/{flow.pk}/variables/preview/",
        {
            "business_time": "2024-01-15T00:00",
            "variables": [{"name": "x", "type": "time", "format": "yyyy", "offset": "-1q"}],
        },
    )
    assert response.status_code == 400
    assert "variables[0].offset" in response.json()["variables"][0]


def test_variables_preview_reports_undefined_references(page, owner, flow):
    response = post(
        page(owner),
        f"/flows/{flow.pk}/variables/preview/",
        {"business_time": "2024-01-15T00:00", "variables": [], "config": {"sql": "select ${nope}"}},
    )
    assert response.status_code == 200
    assert "${nope}" in response.json()["render_error"]


def test_variables_preview_needs_a_business_time(page, owner, flow):
    response = post(page(owner), f"/flows/{flow.pk}/variables/preview/", {"variables": []})
    assert response.status_code == 400 and "business_time" in response.json()


def test_preview_is_404_for_another_tenants_flow(page, owner, foreign_flow):
    client = page(owner)
    assert (
        post(
            client,
            f"/flows/{foreign_flow.pk}/variables/preview/",
            {"business_time": "2024-01-01T00:00"},
        ).status_code
        == 404
    )


def test_preview_needs_the_csrf_token(owner, flow):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = post(
        client, f"/flows/{flow.pk}/variables/preview/", {"business_time": "2024-01-15T00:00"}
    )
    assert response.status_code == 403
