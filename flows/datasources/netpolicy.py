"""Where data sources and http nodes may connect: the operator's outbound network policy.

Every address a host resolves to (getaddrinfo) is checked, in this order:

1. the platform's own servers are refused whatever the lists say, by host:port (names
   resolved to addresses; a server on loopback or on every interface answers on any
   local address): its database server (``DATABASES`` / ``DATABASE_URL``), every database
   on it (a superuser of that server reads files and runs programs on it), and the Celery
   broker, result backend and cache (any database number). Only a server the operator
   names as ``host:port`` in ``OUTBOUND_ALLOW_PLATFORM_SERVERS`` may be reached, and even
   then never the platform's own database (same server and database name);
2. ``OUTBOUND_DENY`` (hosts, ``.domain`` suffixes, CIDR networks) is refused;
3. ``OUTBOUND_ALLOW`` is allowed;
4. loopback, private, link-local, shared, multicast, reserved and unspecified addresses are
   refused;
5. anything else is allowed.

Callers connect to one of the addresses returned by the check (never resolve again), so a
DNS answer that changes between check and connect cannot redirect them.

SQLite data sources are files in the tenant's own folder, ``<dir>/<tenant slug>/`` under
each of ``SQLITE_DATASOURCE_DIRS``; any other path is refused with one message.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_PORTS = {
    "postgres": 5432,
    "postgresql": 5432,
    "pgsql": 5432,
    "postgis": 5432,
    "mysql": 3306,
    "mariadb": 3306,
    "redis": 6379,
    "rediss": 6379,
    "amqp": 5672,
    "amqps": 5671,
    "pyamqp": 5672,
    "memcache": 11211,
    "memcached": 11211,
    "http": 80,
    "https": 443,
}


class NetworkPolicyError(Exception):
    """The policy refuses this destination; the message says why (it never holds a secret)."""


@dataclass(frozen=True)
class Endpoint:
    """One of the platform's own services, refused to every data source and http node."""

    label: str
    host: str
    port: int | None
    # For database servers: the platform's own database names (casefolded), refused even
    # on a server the operator opted in.
    databases: frozenset[str] | None = None


@dataclass(frozen=True)
class Policy:
    """Allow and deny lists plus the platform's protected endpoints."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    protected: tuple[Endpoint, ...] = ()
    # "host:port" of platform servers the operator lets data sources reach (opt-in).
    platform_servers: tuple[str, ...] = ()
    _allow_nets: tuple[IPNetwork, ...] = field(default=(), repr=False)
    _allow_hosts: tuple[str, ...] = field(default=(), repr=False)
    _deny_nets: tuple[IPNetwork, ...] = field(default=(), repr=False)
    _deny_hosts: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        for side in ("allow", "deny"):
            nets, hosts = _split_entries(getattr(self, side))
            object.__setattr__(self, f"_{side}_nets", nets)
            object.__setattr__(self, f"_{side}_hosts", hosts)

    def check(self, host: str, port: int | None, *, database: str | None = None) -> list[str]:
        """Return the addresses of `host` one may connect to; raise NetworkPolicyError if any is refused."""
        host = normalize_host(host)
        name = host.lower()
        if _host_listed(name, self._deny_hosts):
            raise NetworkPolicyError(f"Host {host} is denied by the operator's network policy.")
        addresses = resolve(host, port)
        host_allowed = _host_listed(name, self._allow_hosts)
        for ip in addresses:
            for endpoint in self.protected:
                if not _same_endpoint(ip, port, endpoint):
                    continue
                if _owns_database(endpoint, database):
                    raise NetworkPolicyError(
                        f"{host}:{port}/{database} is the platform's own database; data "
                        "sources and http nodes may never reach it."
                    )
                if not self._opted_in(endpoint):
                    raise NetworkPolicyError(
                        f"{host}:{port} is {endpoint.label}; data sources and http nodes may "
                        "not reach it unless the operator names it in "
                        "OUTBOUND_ALLOW_PLATFORM_SERVERS."
                    )
            if any(ip in net for net in self._deny_nets):
                raise NetworkPolicyError(
                    f"Address {ip} of {host} is denied by the operator's network policy."
                )
            if host_allowed or any(ip in net for net in self._allow_nets):
                continue
            if is_internal(ip):
                raise NetworkPolicyError(
                    f"Address {ip} of {host} is a loopback or private address, refused unless the "
                    "operator allows it (OUTBOUND_ALLOW)."
                )
        return [str(ip) for ip in addresses]

    def _opted_in(self, endpoint: Endpoint) -> bool:
        """The operator named this very server (same port, an address in common) in the opt-in."""
        for entry in self.platform_servers:
            parsed = _server_entry(entry)
            if parsed is None or parsed[1] != endpoint.port:
                continue
            if _same_server(parsed[0], endpoint.host):
                return True
        return False


def normalize_host(host: str) -> str:
    """Strip IPv6 brackets; refuse what is not one plain host name or address."""
    host = (host or "").strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise NetworkPolicyError("A host is required.")
    # Unix sockets, multi-host lists and option smuggling would bypass the checks below.
    if any(ch in host for ch in "/\\,;@ \t\n\r") or host.startswith("-") or len(host) > 253:
        raise NetworkPolicyError(f"'{host[:80]}' is not a valid host name or address.")
    return host


def resolve(host: str, port: int | None) -> list[IPAddress]:
    """Every address of `host`, in resolver order (a literal address resolves to itself)."""
    literal = _parse_ip(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise NetworkPolicyError(f"Host {host} cannot be resolved ({_gai_reason(exc)}).") from None
    out: list[IPAddress] = []
    for info in infos:
        ip = _parse_ip(str(info[4][0]))
        if ip is not None and ip not in out:
            out.append(ip)
    if not out:
        raise NetworkPolicyError(f"Host {host} has no address.")
    return out


def is_internal(ip: IPAddress) -> bool:
    """Loopback, private, link-local, shared (CGNAT), multicast, reserved or unspecified."""
    ip = _unmap(ip)
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT)
        or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)
    )


_CGNAT = ipaddress.ip_network("100.64.0.0/10")
# A tenant slug as a folder name: never a path separator, "." or "..".
_SLUG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,99}")


def current_policy() -> Policy:
    """The policy the settings describe right now (cheap: built once per settings value)."""
    return _policy_for(
        tuple(getattr(settings, "OUTBOUND_ALLOW", ()) or ()),
        tuple(getattr(settings, "OUTBOUND_DENY", ()) or ()),
        tuple(getattr(settings, "OUTBOUND_ALLOW_PLATFORM_SERVERS", ()) or ()),
        _protected_key(),
    )


def check(host: str, port: int | None, *, database: str | None = None) -> list[str]:
    """Check a destination against the current policy; return the addresses to connect to."""
    return current_policy().check(host, port, database=database)


def check_url(url: str) -> tuple[str, int, list[str]]:
    """Check an http(s) URL; return (host, port, addresses)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise NetworkPolicyError(f"Invalid URL: {exc}.") from None
    if parts.scheme not in ("http", "https"):
        raise NetworkPolicyError("Only http and https URLs are allowed.")
    if not parts.hostname:
        raise NetworkPolicyError("The URL has no host.")
    port = port or DEFAULT_PORTS[parts.scheme]
    return parts.hostname, port, check(parts.hostname, port)


def tenant_sqlite_dirs(tenant_slug: str, *, create: bool = False) -> list[Path]:
    """The tenant's own SQLite folders, ``<dir>/<tenant slug>/`` under each SQLITE_DATASOURCE_DIRS.

    With `create`, the folders that do not exist yet are made (an allowed directory that
    cannot be written is skipped: the check below still refuses everything outside).
    """
    if not isinstance(tenant_slug, str) or not _SLUG_RE.fullmatch(tenant_slug):
        return []
    folders = []
    for root in getattr(settings, "SQLITE_DATASOURCE_DIRS", ()) or ():
        folder = Path(os.path.realpath(os.path.join(str(root), tenant_slug)))
        if create:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError:
                pass
        folders.append(folder)
    return folders


def check_sqlite_path(path: str, *, tenant_slug: str) -> Path:
    """A SQLite data source file: absolute, inside one of the tenant's own folders, never the platform's.

    Every refusal says the same thing, whether the file exists or not, so a path tells a
    tenant nothing about files outside its folders.
    """
    folders = tenant_sqlite_dirs(tenant_slug)
    shown = ", ".join(f"{f}{os.sep}" for f in folders) or "none (SQLITE_DATASOURCE_DIRS is empty)"
    refused = NetworkPolicyError(
        "A SQLite data source must be the absolute path of a file in this tenant's "
        f"folder: {shown}."
    )
    if (
        not isinstance(path, str)
        or not path
        or "\x00" in path
        or path.startswith("file:")
        or not os.path.isabs(path)
    ):
        raise refused
    real = Path(os.path.realpath(path))
    if not any(folder in real.parents for folder in folders):
        raise refused
    for own in _platform_sqlite_files():
        if real == own or str(real).startswith(str(own) + "-"):
            raise refused
    return real


def platform_endpoints() -> list[Endpoint]:
    """The platform's database(s), broker, result backend and cache servers."""
    from django.db import connections

    endpoints: list[Endpoint] = []
    for alias, conf in settings.DATABASES.items():
        engine = conf.get("ENGINE", "")
        if "sqlite" in engine:
            continue
        kind = "mysql" if "mysql" in engine else "postgresql"
        names = {conf.get("NAME"), (conf.get("TEST") or {}).get("NAME")}
        try:
            # During tests the live connection points at the test database.
            names.add(connections[alias].settings_dict.get("NAME"))
        except Exception:  # noqa: BLE001 - an unconfigured alias simply adds nothing
            pass
        if not (conf.get("TEST") or {}).get("NAME") and conf.get("NAME"):
            names.add(f"test_{conf['NAME']}")
        endpoints.append(
            Endpoint(
                label="the platform's database server",
                host=conf.get("HOST") or "localhost",
                port=int(conf.get("PORT") or DEFAULT_PORTS[kind]),
                databases=frozenset(str(n).casefold() for n in names if n),
            )
        )
    urls = [
        ("the platform's message broker", getattr(settings, "CELERY_BROKER_URL", "") or ""),
        ("the platform's result backend", getattr(settings, "CELERY_RESULT_BACKEND", "") or ""),
    ]
    for cache in (getattr(settings, "CACHES", {}) or {}).values():
        location = cache.get("LOCATION") or ""
        for loc in location if isinstance(location, list | tuple) else str(location).split(";"):
            urls.append(("the platform's cache", loc if "://" in loc else f"memcached://{loc}"))
    for label, value in urls:
        for url in str(value).split(";"):
            endpoint = _url_endpoint(label, url.strip())
            if endpoint is not None:
                endpoints.append(endpoint)
    return endpoints


# --- internals ---------------------------------------------------------------------------


def _url_endpoint(label: str, url: str) -> Endpoint | None:
    if not url or "://" not in url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.split("+")[0]
    if not parts.hostname or scheme in ("filesystem", "memory", "file", "django", "db"):
        return None
    return Endpoint(label=label, host=parts.hostname, port=port or DEFAULT_PORTS.get(scheme))


def _protected_key() -> tuple:
    from django.db import connections

    db = []
    for alias, conf in settings.DATABASES.items():
        try:
            live = connections[alias].settings_dict.get("NAME")
        except Exception:  # noqa: BLE001
            live = None
        db.append(
            (
                alias,
                conf.get("ENGINE"),
                conf.get("HOST"),
                conf.get("PORT"),
                str(conf.get("NAME")),
                str(live),
            )
        )
    caches = tuple(
        sorted(str(c.get("LOCATION")) for c in (getattr(settings, "CACHES", {}) or {}).values())
    )
    return (
        tuple(db),
        getattr(settings, "CELERY_BROKER_URL", None),
        getattr(settings, "CELERY_RESULT_BACKEND", None),
        caches,
    )


@lru_cache(maxsize=16)
def _policy_for(
    allow: tuple[str, ...], deny: tuple[str, ...], servers: tuple[str, ...], _key: tuple
) -> Policy:
    return Policy(
        allow=allow, deny=deny, protected=tuple(platform_endpoints()), platform_servers=servers
    )


def _platform_sqlite_files() -> list[Path]:
    from django.db import connections

    files: list[Path] = []
    for alias, conf in settings.DATABASES.items():
        if "sqlite" not in conf.get("ENGINE", ""):
            continue
        names = [conf.get("NAME"), (conf.get("TEST") or {}).get("NAME")]
        try:
            names.append(connections[alias].settings_dict.get("NAME"))
        except Exception:  # noqa: BLE001
            pass
        for name in names:
            if name and str(name) != ":memory:" and not str(name).startswith("file:"):
                files.append(Path(os.path.realpath(str(name))))
    return files


def _split_entries(entries) -> tuple[tuple[IPNetwork, ...], tuple[str, ...]]:
    nets: list[IPNetwork] = []
    hosts: list[str] = []
    for raw in entries:
        entry = str(raw).strip()
        if not entry:
            continue
        try:
            nets.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            hosts.append(entry.lower().rstrip("."))
    return tuple(nets), tuple(hosts)


def _host_listed(name: str, hosts: tuple[str, ...]) -> bool:
    name = name.rstrip(".")
    return any(
        name == h or (h.startswith(".") and (name.endswith(h) or name == h[1:])) for h in hosts
    )


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _unmap(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


@lru_cache(maxsize=1)
def _own_addresses() -> frozenset[IPAddress]:
    """Addresses of this machine: a service on loopback is also reachable through them."""
    found: set[IPAddress] = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            ip = _parse_ip(str(info[4][0]))
            if ip is not None:
                found.add(_unmap(ip))
    except OSError:
        pass
    return frozenset(found)


def _is_local(ip: IPAddress) -> bool:
    ip = _unmap(ip)
    return ip.is_loopback or ip.is_unspecified or ip in _own_addresses()


@lru_cache(maxsize=64)
def _endpoint_addresses(host: str) -> frozenset[IPAddress]:
    try:
        return frozenset(_unmap(ip) for ip in resolve(host, None))
    except NetworkPolicyError:
        return frozenset()


def _same_endpoint(ip: IPAddress, port: int | None, endpoint: Endpoint) -> bool:
    """`ip:port` reaches the endpoint's server (whatever database or number is asked for)."""
    if endpoint.port is not None and port is not None and endpoint.port != port:
        return False
    return _same_address(ip, _endpoint_addresses(endpoint.host))


def _same_address(ip: IPAddress, theirs: frozenset[IPAddress]) -> bool:
    ip = _unmap(ip)
    if ip in theirs:
        return True
    # A server bound to loopback or to every interface answers on any local address.
    return _is_local(ip) and any(_is_local(other) for other in theirs)


def _same_server(host: str, other: str) -> bool:
    """Two host names (or addresses) that reach the same machine."""
    mine = _endpoint_addresses(host)
    return any(_same_address(ip, mine) for ip in _endpoint_addresses(other))


def _owns_database(endpoint: Endpoint, database: str | None) -> bool:
    return (
        endpoint.databases is not None
        and database is not None
        and database.casefold() in endpoint.databases
    )


def _server_entry(entry: str) -> tuple[str, int] | None:
    """("host", port) of an OUTBOUND_ALLOW_PLATFORM_SERVERS entry ("host:port", "[::1]:5432")."""
    try:
        parts = urlsplit(f"//{str(entry).strip()}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return parts.hostname, port


def _gai_reason(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror) and exc.args and len(exc.args) > 1:
        return str(exc.args[1])
    return type(exc).__name__
