"""OpenAPI links (a drf-spectacular postprocessing hook): from the list and create responses of
a collection to the detail and action routes of its items, so that a client, or a stateful
fuzzer, follows real ids instead of guessing them.

Links are derived from the paths, so a new resource gets them the day it is added:
`GET|POST /x/` links to every operation under `/x/{param}/`, its parameters taken from the
request's own path and from the response body (`id`, or `number` for versions; the first
item of a list). A few collections hand ids to routes elsewhere (a flow's runs are read
under /runs/, a run's node runs under /node-runs/); CROSS names those.
"""

from __future__ import annotations

import re

PARAM = re.compile(r"\{([^}]+)\}")
# (source path, target prefix, field of the source's body that holds the target's id).
CROSS = [
    ("/api/v1/flows/{flow_id}/runs/", "/api/v1/runs/", None),
    ("/api/v1/runs/{id}/", "/api/v1/node-runs/", "node_runs"),
]
METHODS = ("get", "put", "patch", "post", "delete")


def _resolve(schema: dict, components: dict) -> dict:
    while isinstance(schema, dict) and "$ref" in schema:
        schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
    return schema if isinstance(schema, dict) else {}


def _item_pointer(schema: dict, components: dict, field: str, within: str | None) -> str | None:
    """JSON pointer (without '#') to `field` of the first item the body holds, or None.

    A body that is one of several shapes (a run, or a time range's runs) links through the
    first shape that has the field."""
    schema = _resolve(schema, components)
    for alternative in schema.get("oneOf") or schema.get("anyOf") or ():
        pointer = _item_pointer(alternative, components, field, within)
        if pointer is not None:
            return pointer
    prefix = ""
    if within:
        schema = _resolve(schema.get("properties", {}).get(within, {}), components)
        prefix = f"/{within}"
    if schema.get("type") == "array":
        schema, prefix = _resolve(schema.get("items", {}), components), f"{prefix}/0"
    elif "results" in schema.get("properties", {}):
        results = _resolve(schema["properties"]["results"], components)
        schema, prefix = _resolve(results.get("items", {}), components), f"{prefix}/results/0"
    if field in schema.get("properties", {}):
        return f"{prefix}/{field}"
    return None


def _body_field(param: str) -> str:
    return "id" if param == "id" or param.endswith("_id") else param


def _link_name(method: str, path: str) -> str:
    name = re.sub(r"[^A-Za-z0-9]+", "-", path.removeprefix("/api/v1/")).strip("-")
    return f"{method.upper()}-{name}"


def _targets(paths: dict, prefix: str):
    """(path, method, the parameter it adds) of each operation under `prefix{param}/`."""
    for path, ops in paths.items():
        if not path.startswith(prefix) or path == prefix:
            continue
        rest = path[len(prefix) :]
        match = re.match(r"\{([^}]+)\}/", rest)
        if match is None:
            continue
        for method in METHODS:
            if method in ops and ops[method].get("operationId"):
                yield path, method, match.group(1)


def _links_for(paths, components, source, ops, prefix, within):
    for method in ("get", "post"):
        operation = ops.get(method)
        if operation is None:
            continue
        for code, response in operation.get("responses", {}).items():
            if not code.startswith("2"):
                continue
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if not schema:
                continue
            links = response.setdefault("links", {})
            for path, target_method, new_param in _targets(paths, prefix):
                pointer = _item_pointer(schema, components, _body_field(new_param), within)
                if pointer is None:
                    continue
                parameters = {}
                for name in PARAM.findall(path):
                    if name == new_param:
                        parameters[name] = f"$response.body#{pointer}"
                    elif name in PARAM.findall(source):
                        parameters[name] = f"$request.path.{name}"
                    else:
                        break
                else:
                    links[_link_name(target_method, path)] = {
                        "operationId": paths[path][target_method]["operationId"],
                        "parameters": parameters,
                    }
            if not links:
                response.pop("links")


def add_links(result, generator, request, public):
    """drf-spectacular postprocessing hook: adds the links described in the module docstring."""
    paths = result.get("paths", {})
    components = result.get("components", {}).get("schemas", {})
    for source, ops in paths.items():
        if not source.endswith("/") or PARAM.search(source.rsplit("/", 2)[-2] or ""):
            continue  # detail routes (ending in a parameter) are targets, not sources
        _links_for(paths, components, source, ops, source, None)
    for source, prefix, within in CROSS:
        if source in paths:
            _links_for(paths, components, source, paths[source], prefix, within)
    return result


# Answers every operation may give, whatever its own responses say: the base layer's
# authentication and scope checks (401, 403), the shared input layer's 400 (any query or
# body can hold text that cannot be stored), a missing or invisible object (404, where the
# path names one), a body that is too large or of a type the route does not read (413, 415),
# and a write that conflicts with the object's state or other data (409).
ERROR_SCHEMA = "Error"
STANDARD_ERRORS = {
    # Query parameters too: an empty, repeated or ill-typed one (accounts/api/query.py).
    "400": "The input is invalid; the body names each field or query parameter and what is "
    "wrong with it.",
    "401": "Not authenticated (no, or an expired or revoked, token).",
    "403": "Not allowed: the token lacks the route's scope, or the role or right is missing.",
}


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: documents the error answers listed above."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault(
        ERROR_SCHEMA,
        {
            "type": "object",
            "description": "`detail`, or a list of messages per field (`non_field_errors` for "
            "the body as a whole).",
            "additionalProperties": True,
        },
    )
    ref = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}
    for path, ops in result.get("paths", {}).items():
        for method, operation in ops.items():
            if method not in METHODS:
                continue
            codes = dict(STANDARD_ERRORS)
            if PARAM.search(path):
                codes["404"] = "No such object, or one the caller may not see."
            elif any(p.get("name") == "page" for p in operation.get("parameters", [])):
                codes["404"] = "No such page (`page` past the last one)."
            if "requestBody" in operation:
                codes["413"] = "The request body is too large."
                codes["415"] = "The body's media type is not one this route reads."
            if method != "get":
                codes["409"] = "The change conflicts with the object's state or other data."
            responses = operation.setdefault("responses", {})
            for code, description in codes.items():
                responses.setdefault(
                    code,
                    {"description": description, "content": {"application/json": {"schema": ref}}},
                )
    return result
