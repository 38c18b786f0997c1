"""Every query parameter of every GET route is read strictly (accounts/api/query.py).

The routes and their parameters come from the live OpenAPI schema (drf-spectacular walks the
URLconf), so a list filter added tomorrow is walked the day it exists. For each parameter:
a valid value answers 200 (given once); and, as the schema rules them out, a value of the
wrong type, an empty value (where empty is not "no filter") and a repeated one (where the
schema does not document a list) answer 400 with a body naming the parameter.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from rest_framework.test import APIClient

from tests.factories import UserFactory

from . import routes, world

pytestmark = pytest.mark.django_db

# Valid values for text parameters whose format the schema gives only in words (a new one
# of those needs an example here: the walk says which), or whose first choice needs more
# (kind=cron needs a cron); with what they need alongside. Typed parameters need none.
EXAMPLES = {
    "after": "2024-01-01T00:00:00",
    "since": "2024-01-01T00:00:00Z",
    "until": "2099-01-01T00:00:00Z",
    "from": "2024-01-01",
    "to": "2024-01-31",
    "date": "2024-01-01",
    "time": "06:30",
    "timezone": "UTC",
    "cron": "0 6 * * *",
    "interval": "5",
    "days": "mon",
    "table": f"{world.MARKER}_orders",
    "against": "editing",
    "ordering": "id",
    "object_type": "flow,node",
    "kind": "daily",
}
ALONGSIDE = {"kind": [("time", "06:30")], "interval": [("kind", "minutes")]}
# Values of the right type that the parameter still rules out.
WRONG = {
    "ordering": "no_such_field",
    "object_type": "no_such_type",
    "against": "no-such-version",
}
# Text the view documents as "comma-separated, or repeat the parameter".
REPEATABLE = {("/api/v1/flows/{flow_id}/schedule/preview/", "days")}


def _schema() -> dict:
    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document))


SCHEMA = _schema()


def _query_parameters(operation) -> list[dict]:
    return [p for p in operation.get("parameters", []) if p.get("in") == "query"]


GETS = {
    path: ops["get"]
    for path, ops in SCHEMA["paths"].items()
    if "get" in ops and _query_parameters(ops["get"])
}


def valid_value(parameter: dict) -> str:
    schema = parameter.get("schema", {})
    if schema.get("type") == "string" and parameter["name"] in EXAMPLES:
        return EXAMPLES[parameter["name"]]
    if schema.get("type") == "array":
        schema = schema.get("items", {})
    if "enum" in schema:
        return schema["enum"][0]
    return {
        "boolean": "true",
        "integer": str(max(1, schema.get("minimum", 1))),
        "number": "1",
    }.get(
        schema.get("type"),
        {
            "date": "2024-01-01",
            "date-time": "2024-01-01T00:00:00Z",
            "uuid": "00000000-0000-4000-8000-000000000000",
        }.get(schema.get("format"), "x"),
    )


def wrong_value(parameter: dict) -> str | None:
    """A value the schema rules out (or the parameter's own rule), or None for free text."""
    schema = parameter.get("schema", {})
    if parameter["name"] in WRONG:
        return WRONG[parameter["name"]]
    if schema.get("type") == "array":
        schema = schema.get("items", {})
    if "enum" in schema:
        return "not-a-choice"
    if schema.get("type") in ("boolean", "integer", "number"):
        return "maybe"
    if schema.get("format") in ("date", "date-time", "uuid"):
        return "not-a-" + schema["format"]
    return None


def free_text(parameter: dict) -> bool:
    """Text where empty means "no filter" (search, name): the only kind that may be empty."""
    schema = parameter.get("schema", {})
    return (
        schema.get("type") == "string"
        and not {"enum", "format"} & set(schema)
        and schema.get("minLength", 0) == 0
    )


def cases(path: str, parameter: dict) -> list[tuple[str, list[str]]]:
    """(what, values) a request must be refused for, naming the parameter."""
    found = []
    wrong = wrong_value(parameter)
    if wrong is not None:
        found.append(("a value of the wrong type", [wrong]))
    if not free_text(parameter):
        found.append(("an empty value", [""]))
    many = parameter.get("schema", {}).get("type") == "array"
    if not many and (path, parameter["name"]) not in REPEATABLE:
        found.append(("a repeated value", [valid_value(parameter)] * 2))
    return found


@pytest.fixture
def call(victim):
    """GET `path` (its ids filled from the victim's world) as who may read it."""
    superuser = UserFactory(username=f"{world.MARKER}-root", is_superuser=True, is_staff=True)
    clients = {}

    def get(path, operation, query: list[tuple[str, str]]):
        names = [p["name"] for p in operation.get("parameters", []) if p.get("in") == "path"]
        route = routes.Route(
            template=path,
            name=operation["operationId"],
            kwargs=tuple(names),
            methods=("get",),
            namespace="",
            callback=None,
        )
        url = path.format(**{n: victim.ids[routes.object_of(route, n)] for n in names})
        who = "root" if path.startswith("/api/v1/tenants/") else world.who_calls(path)
        if who not in clients:
            user = superuser if who == "root" else victim.users[who]
            client = APIClient()
            client.force_authenticate(user=user)
            client.credentials(HTTP_X_TENANT=victim.tenant.slug)
            clients[who] = client
        required = [
            (p["name"], valid_value(p))
            for p in _query_parameters(operation)
            if p.get("required") and p["name"] not in dict(query)
        ]
        return clients[who].get(f"{url}?{urlencode(required + query)}")

    return get


def test_the_walk_sees_every_list_filter():
    names = {(path, p["name"]) for path, op in GETS.items() for p in _query_parameters(op)}
    for expected in [
        ("/api/v1/datasources/", "engine"),
        ("/api/v1/members/", "is_active"),
        ("/api/v1/flows/", "is_public"),
        ("/api/v1/secrets/", "tenant_wide"),
        ("/api/v1/audit/", "object_type"),
        ("/api/v1/dashboard/", "days"),
        ("/api/v1/lineage/", "datasource"),
        ("/api/v1/flows/{id}/export/", "format"),
        ("/api/v1/flows/{flow_id}/schedule/preview/", "days"),
        ("/api/v1/runs/", "status"),
    ]:
        assert expected in names


@pytest.mark.parametrize("path", sorted(GETS))
def test_every_query_parameter_is_strict(path, call):
    operation = GETS[path]
    failures = []
    for parameter in _query_parameters(operation):
        name = parameter["name"]
        # Given once with a valid value, the parameter is accepted.
        res = call(path, operation, [(name, valid_value(parameter)), *ALONGSIDE.get(name, [])])
        if res.status_code != 200:
            failures.append(f"?{name}={valid_value(parameter)}: {res.status_code} {res.content!r}")
        # Each way the schema rules out is a 400 whose body names the parameter.
        for what, values in cases(path, parameter):
            res = call(path, operation, [*((name, v) for v in values), *ALONGSIDE.get(name, [])])
            body = (
                res.json()
                if res.headers.get("Content-Type", "").startswith("application/json")
                else {}
            )
            if res.status_code != 400 or name not in body:
                failures.append(f"{name} with {what} {values!r}: {res.status_code} {res.content!r}")
    assert not failures, f"{path}:\n" + "\n".join(failures)
