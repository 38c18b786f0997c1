"""Secrets on real workers: an http node sends the real value to a receiver, while the run's
rendered configuration, log, error, output and every API response show ***."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from flows.models import Secret
from flows.secrets import services as secret_services
from flows.services import node_create
from operations.models import NodeRun
from operations.services import run_start
from tests.factories import FlowFactory
from tests.operations.test_workers import finished, statuses

pytestmark = pytest.mark.integration

TOKEN = "tok-9f3b1c77-Real-Secret"
FLOW_KEY = "flowkey/with spaces&more"


class Receiver:
    """Records each request's path and headers; /echo answers with them, /fail with a 500
    whose body repeats the Authorization header (as a careless service would)."""

    def __init__(self):
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                seen = {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                }
                receiver.requests.append(seen)
                failing = self.path.startswith("/fail")
                body = json.dumps(
                    {"you_sent": seen["headers"].get("authorization"), "path": self.path}
                ).encode()
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def test_the_worker_sends_the_secret_while_everything_stored_and_shown_says_stars(
    celery_workers, api, tenant, admin_user, receiver
):
    # Given: a tenant-wide secret and a flow-scoped one, and a flow whose http nodes use them
    # in a header, in the query string and in the URL path
    flow = FlowFactory(tenant=tenant, owner=admin_user, concurrency_policy="ignore")
    client = api(admin_user, tenant)
    assert (
        client.post("/api/v1/secrets/", {"name": "API_TOKEN", "value": TOKEN}, format="json")
    ).status_code == 201
    secret_services.secret_create(
        ctx=_ctx(tenant, admin_user), name="FLOW_KEY", value=FLOW_KEY, flow=flow.pk
    )
    config = {
        "url": receiver.url("/echo/${secret.FLOW_KEY}?api_key=${secret.API_TOKEN}&day=${bizdate}"),
        "headers": {"Authorization": "Bearer ${secret.API_TOKEN}", "X-Plain": "${secret.FLOW_KEY}"},
    }
    node_create(flow=flow, user=admin_user, name="call", type="http", config=config)
    failing = {**config, "url": receiver.url("/fail?k=${secret.API_TOKEN}")}
    node_create(flow=flow, user=admin_user, name="fails", type="http", config=failing)

    # When: the owner try-runs it on the workers
    run = finished(run_start(flow=flow, mode="try", user=admin_user), timeout=60)

    # Then: the receiver got the real values
    assert statuses(run) == {"call": "succeeded", "fails": "failed"}, celery_workers.log_tail()
    echo = next(r for r in receiver.requests if r["path"].startswith("/echo"))
    assert echo["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert echo["headers"]["x-plain"] == FLOW_KEY
    assert f"api_key={TOKEN}" in echo["path"]
    assert "/echo/flowkey/with%20spaces&more" in echo["path"]
    # ... and nothing stored says them: rendered config, log, output, error
    call = NodeRun.objects.get(run=run, node_name="call", is_latest=True)
    fails = NodeRun.objects.get(run=run, node_name="fails", is_latest=True)
    assert call.rendered_config["headers"] == {
        "Authorization": "Bearer ***",
        "X-Plain": "***",
    }
    assert call.rendered_config["url"].startswith(receiver.url("/echo/***?api_key=***&day="))
    stored = json.dumps(
        [
            [nr.rendered_config, nr.log, nr.output, nr.error]
            for nr in NodeRun.objects.filter(run=run)
        ]
    )
    run.refresh_from_db()
    stored += run.error
    for value in _forms():
        assert value not in stored
    assert '"you_sent": "Bearer ***"' in call.output["body"]
    assert "Bearer ***" in fails.error and "HTTP 500" in fails.error
    # ... nor does any response: the run, its node runs and logs, the flow, its export
    responses = [
        client.get(f"/api/v1/runs/{run.pk}/"),
        client.get(f"/api/v1/node-runs/{call.pk}/"),
        client.get(f"/api/v1/node-runs/{call.pk}/log/"),
        client.get(f"/api/v1/node-runs/{fails.pk}/log/"),
        client.get(f"/api/v1/flows/{flow.pk}/graph/"),
        client.get(f"/api/v1/flows/{flow.pk}/export/"),
        client.get(f"/api/v1/flows/{flow.pk}/history/"),
        client.get("/api/v1/secrets/"),
        client.get(f"/api/v1/secrets/{Secret.objects.get(name='API_TOKEN').pk}/history/"),
        client.get("/api/v1/audit/"),
    ]
    for response in responses:
        assert response.status_code == 200, response.content
        for value in _forms():
            assert value not in response.content.decode(), response.request["PATH_INFO"]
    # The export carries the references, so an import elsewhere needs its own secrets.
    assert "${secret.API_TOKEN}" in responses[5].content.decode()


def _forms() -> list[str]:
    from urllib.parse import quote

    # Raw, and percent-encoded as the URL builders write it (query value, path).
    return [
        TOKEN,
        FLOW_KEY,
        quote(FLOW_KEY, safe=""),
        quote(FLOW_KEY),
        "flowkey/with%20spaces&more",
    ]


def _ctx(tenant, user):
    from accounts.choices import Role
    from accounts.selectors import TenantContext

    return TenantContext(tenant=tenant, user=user, role=Role.ADMIN)
