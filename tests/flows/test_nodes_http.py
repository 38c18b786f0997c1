"""http executor against a local HTTP server (127.0.0.1 is allowed by the test settings)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import override_settings

from flows.nodes import base
from flows.nodes.base import NodeFailed
from tests.factories.datasources import Recorder


class Server:
    """A tiny HTTP server that records what it receives and answers by path."""

    def __init__(self):
        self.received: list[dict] = []
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                outer.received.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": self.rfile.read(length).decode() if length else "",
                    }
                )
                path = self.path.split("?")[0]
                if path == "/slow":
                    outer.release.wait(10)
                status, body, extra = {
                    "/ok": (200, b'{"ok": true}', {}),
                    "/created": (201, b"made", {}),
                    "/fail": (500, b"boom: database unavailable", {}),
                    "/big": (200, b"x" * 10_000, {}),
                    "/redirect-local": (302, b"", {"Location": "/ok"}),
                    "/redirect-other-host": (
                        307,
                        b"",
                        {"Location": f"http://localhost:{self.server.server_port}/ok"},
                    ),
                    "/redirect-internal": (
                        302,
                        b"",
                        {"Location": "http://169.254.169.254/latest/meta-data/"},
                    ),
                    "/slow": (200, b"late", {}),
                }.get(path, (404, b"nope", {}))
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path, host="127.0.0.1"):
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def server():
    srv = Server()
    srv.thread.start()
    yield srv
    srv.release.set()
    srv.httpd.shutdown()
    srv.httpd.server_close()


def call(config, timeout=10):
    rec = Recorder(tenant_id=1, config=config, timeout=timeout)
    return base.get("http").execute(rec.ctx), rec


def test_sends_method_headers_and_body_and_returns_status_and_body(server):
    result, rec = call(
        {
            "method": "POST",
            "url": server.url("/created?day=2024-01-14&api_key=k-123"),
            "headers": {
                "Authorization": "Bearer tok-SECRET-1",
                "X-Trace": "abc",
                "Content-Type": "application/json",
            },
            "body": json.dumps({"day": "2024-01-14"}),
            "expected_status": [200, 201],
        }
    )
    assert result.output == {"status": 201, "body": "made"}
    [seen] = server.received
    assert seen["method"] == "POST"
    assert seen["path"] == "/created?day=2024-01-14&api_key=k-123"
    assert seen["headers"]["authorization"] == "Bearer tok-SECRET-1"
    assert seen["headers"]["x-trace"] == "abc"
    assert seen["headers"]["host"] == f"127.0.0.1:{server.port}"
    assert json.loads(seen["body"]) == {"day": "2024-01-14"}
    # Secrets never reach the node log.
    assert "tok-SECRET-1" not in rec.log and "k-123" not in rec.log
    assert "Authorization=***" in rec.log and "X-Trace=abc" in rec.log
    assert (
        f"POST http://127.0.0.1:{server.port}/created?day=2024-01-14&api_key=*** → 201" in rec.log
    )


def test_a_host_name_is_resolved_once_and_sent_as_the_host_header(server):
    result, _ = call({"url": server.url("/ok", host="localhost")})
    assert result.output["status"] == 200
    assert server.received[0]["headers"]["host"] == f"localhost:{server.port}"


def test_unexpected_status_fails_with_the_start_of_the_body(server):
    with pytest.raises(
        NodeFailed, match=r"HTTP 500 \(expected 2xx\); body starts: boom: database unavailable"
    ):
        call({"url": server.url("/fail")})
    result, _ = call({"url": server.url("/fail"), "expected_status": 500})
    assert result.output["status"] == 500


def test_the_body_output_is_bounded_to_2_kb(server):
    result, _ = call({"url": server.url("/big")})
    assert result.output["body"] == "x" * 2048


def test_redirects_are_not_followed_unless_asked_and_each_hop_is_checked(server):
    with pytest.raises(NodeFailed, match="HTTP 302"):
        call({"url": server.url("/redirect-local")})
    result, _ = call({"url": server.url("/redirect-local"), "follow_redirects": True})
    assert result.output == {"status": 200, "body": '{"ok": true}'}
    with pytest.raises(NodeFailed, match="url: Address 169.254.169.254 .* loopback or private"):
        call({"url": server.url("/redirect-internal"), "follow_redirects": True})


def test_credentials_are_not_forwarded_to_another_host_on_a_redirect(server):
    headers = {"Authorization": "Bearer tok-1", "Cookie": "s=1", "X-Trace": "abc"}
    call({"url": server.url("/redirect-local"), "headers": headers, "follow_redirects": True})
    call({"url": server.url("/redirect-other-host"), "headers": headers, "follow_redirects": True})
    _, kept, first, moved = (r["headers"] for r in server.received)
    # Same origin: the credentials follow; another origin: they stay behind.
    assert kept["authorization"] == "Bearer tok-1" and kept["cookie"] == "s=1"
    assert first["authorization"] == "Bearer tok-1"
    assert "authorization" not in moved and "cookie" not in moved
    assert moved["x-trace"] == "abc" and moved["host"] == f"localhost:{server.port}"


def test_timeout_is_the_smaller_of_node_and_config_timeouts(server):
    with pytest.raises(NodeFailed, match="timed out after 0.3s"):
        call({"url": server.url("/slow"), "timeout": 30}, timeout=0.3)
    server.release.set()


@override_settings(OUTBOUND_ALLOW=[])
def test_loopback_is_refused_without_the_operator_allowing_it(server):
    with pytest.raises(NodeFailed, match="url: Address 127.0.0.1 .* loopback or private"):
        call({"url": server.url("/ok")})
    assert server.received == []


def test_the_platform_broker_is_refused_even_on_an_allowed_network(server):
    with override_settings(CELERY_BROKER_URL=f"redis://127.0.0.1:{server.port}/0"):
        with pytest.raises(NodeFailed, match="platform's message broker"):
            call({"url": server.url("/ok")})
    assert server.received == []


def test_secret_values_are_redacted_from_logs_and_failure_messages(server):
    rec = Recorder(
        tenant_id=1,
        config={"url": f"http://user:hunter2@127.0.0.1:{server.port}/fail?token=t-SECRET"},
    )
    with pytest.raises(NodeFailed) as caught:
        base.get("http").execute(rec.ctx)
    for text in (str(caught.value), rec.log):
        assert "hunter2" not in text and "t-SECRET" not in text
    assert f"GET http://***@127.0.0.1:{server.port}/fail?token=*** → 500" in rec.log
