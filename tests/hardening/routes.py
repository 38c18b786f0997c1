"""Every route of the URLconf, with its URL template, kwargs and the HTTP methods it serves.

Routes are read from `django.urls.get_resolver()` so a route added tomorrow is walked by the
hardening tests the day it exists; nothing here lists routes by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern, RoutePattern

API_PREFIX = "/api/v1/"
WRITE_METHODS = ("post", "put", "patch", "delete")
_ROUTE_PARAM = re.compile(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>")


@dataclass(frozen=True)
class Route:
    """One URL pattern: `template` is "/api/v1/flows/{pk}/graph/", `name` the URL name."""

    template: str
    name: str
    kwargs: tuple[str, ...]
    methods: tuple[str, ...]
    namespace: str
    callback: object

    @property
    def is_api(self) -> bool:
        return self.template.startswith(API_PREFIX)

    @property
    def key(self) -> str:
        return f"{self.namespace}:{self.name}" if self.namespace else self.name

    def url(self, values: dict) -> str:
        return self.template.format(**{k: values[k] for k in self.kwargs})

    def segment_before(self, kwarg: str) -> str:
        """The static path segment naming what `kwarg` identifies ("nodes" in nodes/{pk})."""
        head = self.template.split("{" + kwarg + "}")[0].rstrip("/")
        return head.rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return self.template


def _regex_template(regex: str) -> tuple[str, list[str]]:
    text = regex.lstrip("^")
    for tail in ("\\Z", "$"):
        if text.endswith(tail):
            text = text[: -len(tail)]
    out, names, i = [], [], 0
    while i < len(text):
        if text.startswith("(?P<", i):
            end = text.index(">", i)
            names.append(text[i + 4 : end])
            depth, j = 1, end + 1
            while depth:
                depth += {"(": 1, ")": -1}.get(text[j], 0)
                j += 1
            out.append("{" + names[-1] + "}")
            i = j
        else:
            out.append(text[i])
            i += 1
    template = "".join(out)
    if re.search(r"[\\^$()\[\]?*+|]", template):
        raise AssertionError(f"cannot turn the regex route {regex!r} into a URL template")
    return template, names


def _template(pattern) -> tuple[str, list[str]]:
    if isinstance(pattern, RoutePattern):
        route = str(pattern)
        names = [m.group("name") for m in _ROUTE_PARAM.finditer(route)]
        return _ROUTE_PARAM.sub(lambda m: "{" + m.group("name") + "}", route), names
    if isinstance(pattern, RegexPattern):
        return _regex_template(pattern.regex.pattern)
    raise AssertionError(f"unknown URL pattern type {type(pattern).__name__}")


def view_methods(callback) -> tuple[str, ...]:
    """Methods the view serves: a ViewSet's action map, an APIView's handlers, else GET+POST."""
    actions = getattr(callback, "actions", None)
    cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    allowed = set(getattr(cls, "http_method_names", ()) or ())
    if actions:
        # DRF adds "head" to the action map on a view's first request: it is GET minus the body.
        methods = [m for m in actions if m != "head" and (not allowed or m in allowed)]
    elif cls is not None:
        methods = [m for m in allowed if m not in ("options", "head", "trace") and hasattr(cls, m)]
    else:
        methods = ["get", "post"]  # a function view: walk both, it must answer each sanely
    order = ("get", "post", "put", "patch", "delete")
    return tuple(sorted(methods, key=lambda m: order.index(m) if m in order else 99))


def _walk(patterns, prefix: str, names: list[str], namespace: str):
    for pattern in patterns:
        if not prefix and str(pattern.pattern).startswith("admin/"):
            continue  # the Django admin has its own walk, by model, through reverse()
        template, kwargs = _template(pattern.pattern)
        if isinstance(pattern, URLResolver):
            ns = pattern.namespace or namespace
            yield from _walk(pattern.url_patterns, prefix + template, names + kwargs, ns)
        elif isinstance(pattern, URLPattern):
            yield Route(
                template="/" + prefix + template,
                name=pattern.name or "",
                kwargs=tuple(names + kwargs),
                methods=view_methods(pattern.callback),
                namespace=namespace,
                callback=pattern.callback,
            )


def all_routes() -> list[Route]:
    return list(_walk(get_resolver().url_patterns, "", [], ""))


def api_routes() -> list[Route]:
    """Every route under /api/v1/."""
    return [r for r in all_routes() if r.is_api]


def page_routes() -> list[Route]:
    """HTML pages: everything but the API, its schema/docs, the Django admin and static files."""
    return [
        r
        for r in all_routes()
        if not r.template.startswith(("/api/", "/admin/", "/static/", "/media/"))
    ]


# --------------------------------------------------------------------------- ids for kwargs

# URL kwarg → which object id it takes, whatever the route.
KWARG_OBJECTS = {
    "flow_id": "flow",
    "number": "version",
    "node_id": "node",
    "run_id": "run",
    "node_run_id": "node_run",
    "datasource_id": "datasource",
    "service_account_id": "service_account",
    "delivery_id": "delivery",
}
# A generic `pk`/`id` names the object of the static segment just before it (nodes/{pk}).
SEGMENT_OBJECTS = {
    "flows": "flow",
    "nodes": "node",
    "edges": "edge",
    "versions": "version",
    "datasources": "datasource",
    "members": "membership",
    "runs": "run",
    "node-runs": "node_run",
    "tenants": "tenant",
    "schedules": "schedule",
    "secrets": "secret",
    "service-accounts": "service_account",
    "tokens": "token",
    "webhooks": "webhook",
}


class UnmappedKwarg(AssertionError):
    """A route takes a kwarg the hardening tests do not know how to fill: map it first."""


def object_of(route: Route, kwarg: str) -> str:
    """Which kind of object the kwarg identifies ("flow", "node", ...), or UnmappedKwarg."""
    if kwarg in KWARG_OBJECTS:
        return KWARG_OBJECTS[kwarg]
    segment = route.segment_before(kwarg)
    if kwarg in ("pk", "id") and segment in SEGMENT_OBJECTS:
        return SEGMENT_OBJECTS[segment]
    raise UnmappedKwarg(
        f"{route.template} ({route.key}): URL kwarg {kwarg!r} after '{segment}/' is not mapped to "
        "an object; add it to KWARG_OBJECTS or SEGMENT_OBJECTS in tests/hardening/routes.py and "
        "give the tenant-A world (tests/hardening/world.py) an object of that kind"
    )


def fill(route: Route, ids: dict, **override) -> str:
    """The route's URL with each kwarg set to ids[<kind of object>] (override by kind)."""
    values = {}
    for kwarg in route.kwargs:
        kind = object_of(route, kwarg)
        if kind not in override and kind not in ids:
            raise UnmappedKwarg(f"{route.template}: the world has no object of kind {kind!r}")
        values[kwarg] = override.get(kind, ids.get(kind))
    return route.url(values)
