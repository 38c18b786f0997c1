"""HTTP requests that connect only to the address the network policy checked, hop by hop.

Used by the http node and the alert webhooks. Every hop (the first request and each
redirect followed) is checked with `netpolicy.check_url`, then sent to the checked address
itself with the original host in the `Host` header and as the TLS server name, so a DNS
answer that changes between check and connect (DNS rebinding) cannot redirect the request.
httpx is told never to follow redirects or read proxy settings on its own.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from . import netpolicy

BODY_LIMIT = 2048
MAX_REDIRECTS = 5
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
# Credentials meant for one origin are not sent on to another one after a redirect
# (what httpx and browsers do when they follow redirects themselves).
ORIGIN_BOUND_HEADERS = ("authorization", "proxy-authorization", "cookie")


class TooManyRedirects(Exception):
    """More redirects than allowed."""


@dataclass
class Reply:
    """The last hop's answer: status, the first `body_limit` bytes as text, its URL."""

    status: int
    text: str
    url: str


_tls: list[ssl.SSLContext] = []
_tls_lock = threading.Lock()


def _tls_context() -> ssl.SSLContext:
    """httpx's default TLS settings (certifi's CAs), built once per process: loading the CA
    bundle costs 0.1-0.3 s, which every alert and http node would otherwise pay."""
    with _tls_lock:
        if not _tls:
            import certifi

            _tls.append(ssl.create_default_context(cafile=certifi.where()))
        return _tls[0]


def prepare() -> None:
    """Build what every client needs once per process: the TLS context, and httpx's
    transport modules (imported by a client's first construction)."""
    _tls_context()
    with httpx.Client(trust_env=False, verify=_tls_context()):
        pass


class PinnedClient:
    """One httpx client for a request and its redirects; `url` names the hop in progress."""

    def __init__(self, *, timeout: float):
        self._client = httpx.Client(
            timeout=timeout, follow_redirects=False, trust_env=False, verify=_tls_context()
        )
        self.url = ""

    def __enter__(self) -> PinnedClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (safe from another thread: aborts a request in progress)."""
        self._client.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        body: str | bytes | None = None,
        follow_redirects: bool = False,
        max_redirects: int = MAX_REDIRECTS,
        body_limit: int = BODY_LIMIT,
        on_hop: Callable[[str, str, int], None] | None = None,
    ) -> Reply:
        """Send the request, following redirects if asked; each hop checked and pinned.

        Raises netpolicy.NetworkPolicyError (a hop the policy refuses), TooManyRedirects,
        or httpx.HTTPError; `on_hop(method, url, status)` is called after every hop.
        """
        headers = dict(headers or {})
        for _hop in range(max_redirects + 1):
            self.url = url
            host, _port, addresses = netpolicy.check_url(url)
            status, text, location = self._send(
                method, url, host, addresses[0], headers, body, body_limit
            )
            if on_hop is not None:
                on_hop(method, url, status)
            if not (follow_redirects and location and status in REDIRECT_STATUSES):
                return Reply(status, text, url)
            target = urljoin(url, location)
            if _origin(target) != _origin(url):
                headers = {
                    k: v for k, v in headers.items() if k.lower() not in ORIGIN_BOUND_HEADERS
                }
            if status == 303 or (status in (301, 302) and method == "POST"):
                method, body = "GET", None
            url = target
        raise TooManyRedirects(f"More than {max_redirects} redirects.")

    def _send(self, method, url, host, address, headers, body, body_limit):
        """One request to the checked address (no second DNS lookup); the first bytes of the body."""
        target = httpx.URL(url)
        pinned = target.copy_with(host=address)
        request_headers = {**headers}
        if not any(k.lower() == "host" for k in request_headers):
            default = 443 if target.scheme == "https" else 80
            request_headers["Host"] = (
                host if target.port in (None, default) else f"{host}:{target.port}"
            )
        # Uncompressed, so stopping after `body_limit` bytes bounds what is read and decoded.
        if not any(k.lower() == "accept-encoding" for k in request_headers):
            request_headers["Accept-Encoding"] = "identity"
        extensions = {}
        if target.scheme == "https":
            extensions["sni_hostname"] = host  # certificate checked against the name, not the IP
        request = self._client.build_request(
            method,
            pinned,
            headers=request_headers,
            content=body.encode() if isinstance(body, str) else body,
            extensions=extensions,
        )
        response = self._client.send(request, stream=True)
        try:
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size >= body_limit:
                    break
            text = b"".join(chunks)[:body_limit].decode(
                response.encoding or "utf-8", errors="replace"
            )
            return response.status_code, text, response.headers.get("location")
        finally:
            response.close()


def _origin(url: str) -> tuple[str, str, int | None]:
    try:
        parts = urlsplit(url)
        return parts.scheme, (parts.hostname or "").lower(), parts.port
    except ValueError:
        return ("", url, None)
