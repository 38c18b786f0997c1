"""http: calls a URL the network policy allows, with a timeout, and checks the status."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ._support import schema_problems, shorten
from .base import ExecutionContext, NodeFailed, NodeResult, NodeType, ValidationContext, register

BODY_LIMIT = 2048
MAX_REDIRECTS = 5
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
# Header and query parameter names whose values are secrets: never logged.
SECRET_NAME = re.compile(
    r"auth|token|secret|password|passwd|pwd|key|cookie|session|credential|signature", re.I
)
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")


@register
class Http(NodeType):
    type = "http"
    label = "HTTP request"
    schema = {
        "type": "object",
        "title": "HTTP request",
        "properties": {
            "method": {"type": "string", "enum": METHODS, "default": "GET", "title": "Method"},
            "url": {
                "type": "string",
                "minLength": 1,
                "maxLength": 2000,
                "title": "URL",
                "format": "uri",
            },
            "headers": {
                "type": "object",
                "title": "Headers",
                "additionalProperties": {"type": "string", "maxLength": 4000},
                "maxProperties": 50,
                "default": {},
            },
            "body": {
                "type": ["string", "null"],
                "maxLength": 1_000_000,
                "title": "Body",
                "default": None,
            },
            "expected_status": {
                "title": "Expected status",
                "description": "One status code or a list; any 2xx when empty.",
                "oneOf": [
                    {"type": "integer", "minimum": 100, "maximum": 599},
                    {
                        "type": "array",
                        "items": {"type": "integer", "minimum": 100, "maximum": 599},
                        "maxItems": 100,
                    },
                ],
            },
            "timeout": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": 3600,
                "title": "Timeout (s)",
                "description": "Capped by the node's timeout.",
            },
            "follow_redirects": {"type": "boolean", "default": False, "title": "Follow redirects"},
        },
        "required": ["url"],
        "additionalProperties": False,
    }

    def validate(self, config: dict, ctx: ValidationContext) -> list[tuple[str, str]]:
        problems = schema_problems(self.schema, config)
        if problems:
            return problems
        url = config["url"]
        literal = url.split("${", 1)[0]
        scheme = literal.split(":", 1)[0].lower() if ":" in literal else None
        if scheme is not None and scheme not in ("http", "https"):
            problems.append(("url", "Only http:// and https:// URLs are allowed."))
        elif scheme is None and "${" not in url:
            problems.append(("url", "Give an absolute http:// or https:// URL."))
        elif "${" not in url:
            try:
                parts = urlsplit(url)
                parts.port  # noqa: B018 - raises ValueError on a bad port
            except ValueError as exc:
                problems.append(("url", f"Invalid URL: {exc}."))
            else:
                if not parts.hostname:
                    problems.append(("url", "The URL has no host."))
        for name in config.get("headers") or {}:
            if not HEADER_NAME.match(name):
                problems.append((f"headers.{name[:40]}", "Invalid header name."))
        return problems

    def output_names(self, config: dict) -> list[str]:
        return ["status", "body"]

    def prepare(self) -> None:
        from flows.datasources import pinned_http

        pinned_http.prepare()

    def execute(self, ctx: ExecutionContext) -> NodeResult:
        import httpx

        from flows.datasources import netpolicy, pinned_http

        cfg = ctx.config
        method = str(cfg.get("method") or "GET").upper()
        url = str(cfg.get("url", ""))
        headers = {str(k): str(v) for k, v in (cfg.get("headers") or {}).items()}
        body = cfg.get("body")
        timeout = min(float(ctx.timeout), float(cfg.get("timeout") or ctx.timeout))
        expected = expected_statuses(cfg.get("expected_status"))
        if headers:
            ctx.log(
                "headers: " + ", ".join(f"{k}={redact_header(k, v)}" for k, v in headers.items())
            )
        started = time.monotonic()

        def hop(method: str, url: str, status: int) -> None:
            elapsed = (time.monotonic() - started) * 1000
            ctx.log(f"{method} {redact_url(url)} → {status} ({elapsed:.0f} ms)")

        client = pinned_http.PinnedClient(timeout=timeout)
        ctx.on_cancel(client.close)
        try:
            reply = client.request(
                method,
                url,
                headers=headers,
                body=body if isinstance(body, str) else None,
                follow_redirects=bool(cfg.get("follow_redirects")),
                max_redirects=MAX_REDIRECTS,
                body_limit=BODY_LIMIT,
                on_hop=hop,
            )
        except netpolicy.NetworkPolicyError as exc:
            raise NodeFailed(f"url: {exc}") from None
        except pinned_http.TooManyRedirects as exc:
            raise NodeFailed(str(exc)) from None
        except httpx.TimeoutException:
            raise NodeFailed(
                f"{method} {redact_url(client.url)} timed out after {timeout:g}s."
            ) from None
        except httpx.HTTPError as exc:
            if ctx.cancelled():
                raise NodeFailed("Cancelled (the run was stopped).") from None
            raise NodeFailed(
                f"{method} {redact_url(client.url)} failed: "
                f"{shorten(str(exc) or type(exc).__name__, 300)}"
            ) from None
        finally:
            client.close()
        status, text = reply.status, reply.text
        ok = status in expected if expected else 200 <= status < 300
        if not ok:
            wanted = ", ".join(str(s) for s in expected) if expected else "2xx"
            raise NodeFailed(
                f"HTTP {status} (expected {wanted}); body starts: {shorten(text, 200)}"
            )
        return NodeResult(output={"status": status, "body": text})


def expected_statuses(value) -> list[int]:
    if value is None or value == []:
        return []
    if isinstance(value, int):
        return [value]
    return [int(v) for v in value]


def redact_header(name: str, value: str) -> str:
    return "***" if SECRET_NAME.search(name) else shorten(value, 100)


def redact_url(url: str) -> str:
    """The URL without credentials or secret-looking query values, for logs and messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = urlencode(
        [
            (k, "***" if SECRET_NAME.search(k) else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*",
    )
    return shorten(urlunsplit((parts.scheme, netloc, parts.path, query, "")), 300)
