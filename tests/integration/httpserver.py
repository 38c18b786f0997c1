"""A local HTTP server for http nodes: fixed statuses, and requests that block until released.

`/status/<code>` answers that code; `/block/<key>[/<code>]` waits until `release(key)`.
A POST (an alert to a webhook or chat robot) is answered 200 and kept in `posts` with the
time it arrived.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

BLOCK_LIMIT = 60  # seconds a blocked request waits at most


class Server:
    def __init__(self):
        self.events: dict[str, threading.Event] = {}
        self.hits: Counter = Counter()
        self.blocked: Counter = Counter()
        # (arrival time, path, parsed JSON body) of every POST, in order.
        self.posts: list[tuple[datetime, str, object]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_GET(self):
                parts = self.path.strip("/").split("/")
                with server.lock:
                    server.hits[self.path] += 1
                if parts[0] == "block":
                    event = server.event(parts[1])
                    with server.lock:
                        server.blocked[parts[1]] += 1
                    try:
                        event.wait(BLOCK_LIMIT)
                    finally:
                        with server.lock:
                            server.blocked[parts[1]] -= 1
                    code = int(parts[2]) if len(parts) > 2 else 200
                    return self.reply(code, {"released": parts[1]})
                if parts[0] == "status":
                    return self.reply(int(parts[1]), {"status": int(parts[1])})
                return self.reply(200, {"ok": True})

            def do_POST(self):
                at = datetime.now(UTC)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    parsed = json.loads(body or b"null")
                except ValueError:
                    parsed = body.decode(errors="replace")
                with server.lock:
                    server.posts.append((at, self.path, parsed))
                return self.reply(200, {"ok": True})

            def reply(self, code, body):
                data = json.dumps(body).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the node was cancelled and closed its connection

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/{path.lstrip('/')}"

    def event(self, key: str) -> threading.Event:
        with self.lock:
            return self.events.setdefault(key, threading.Event())

    def release(self, key: str) -> None:
        self.event(key).set()

    def waiting(self, key: str) -> int:
        with self.lock:
            return self.blocked[key]

    def close(self):
        for event in list(self.events.values()):
            event.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http_server():
    server = Server()
    yield server
    server.close()
