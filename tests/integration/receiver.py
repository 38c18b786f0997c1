"""A local webhook receiver for tests: records every POST and verifies its signature the way
the README tells integrators to, answering 401 to a bad signature.

`fail_first(n, code)` makes the next n POSTs answer `code` (a subscriber that is down).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a subscriber does (README): recompute the HMAC over the raw body, compare."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header or "")


class Receiver:
    def __init__(self):
        self.secret = ""
        self.received: list[dict] = []  # verified deliveries, in arrival order
        self.refused: list[dict] = []  # bad signatures and failures it was told to answer
        self.lock = threading.Lock()
        self._fail: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                entry = {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "raw": raw,
                }
                with receiver.lock:
                    failing = receiver._fail.pop(0) if receiver._fail else None
                    if failing is not None:
                        receiver.refused.append(entry)
                        code = failing
                    elif not verify(
                        receiver.secret, raw, self.headers.get("X-Tributary-Signature")
                    ):
                        receiver.refused.append(entry)
                        code = 401
                    else:
                        entry["json"] = json.loads(raw)
                        receiver.received.append(entry)
                        code = 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def fail_first(self, count: int, code: int = 503) -> None:
        with self.lock:
            self._fail = [code] * count

    def types(self) -> list[str]:
        with self.lock:
            return [e["json"]["type"] for e in self.received]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def webhook_receiver():
    receiver = Receiver()
    yield receiver
    receiver.stop()
