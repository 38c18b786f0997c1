"""Schemathesis over every operation of the live OpenAPI schema: no 5xx, responses as documented.

The schema is drf-spectacular's, generated from the code at collection time, so a new
endpoint is fuzzed the day it is added. Requests go through the real WSGI application
(middleware, authentication, throttles) as members of a seeded tenant: most examples use
the ids of objects that exist, so the fuzzer reaches past the 404 into the validation and
the services. Every example runs in a savepoint rolled back afterwards, so each one meets
the same seeded tenant. FUZZ_EXAMPLES sets the examples per operation (default 15, with the
negative phase and the stateful test about 13 minutes on two loaded cores with -n 2;
FUZZ_EXAMPLES=100 is the issue's figure).

Checks: no 5xx; every status code and response body as the schema documents them (the
error answers every route may give are documented once, config/openapi.py); and data the
schema rules out is refused (negative phase). The stateful test then follows the schema's
links from list and create responses to item routes, with the ids those responses hold.
FUZZ_STATEFUL_EXAMPLES sets its scenarios (default 10).
"""

from __future__ import annotations

import json
import os

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.services import token_sign_in

from . import routes, world

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
STATEFUL_EXAMPLES = int(os.environ.get("FUZZ_STATEFUL_EXAMPLES", "10"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def live_schema():
    """The OpenAPI document /api/schema/ serves, loaded into schemathesis with the WSGI app."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    raw = json.loads(OpenApiJsonRenderer().render(document))
    schema = schemathesis.openapi.from_dict(raw)
    schema.app = WSGIHandler()
    return schema


SCHEMA = live_schema()
OPERATIONS = {result.ok().label: result.ok() for result in SCHEMA.get_all_operations()}


def real_path_parameters(operation, ids: dict) -> dict:
    """Path parameters set to seeded ids ({flow_id} → the flow, nodes/{id} → a node, …)."""
    names = [p.name for p in operation.path_parameters]
    route = routes.Route(
        template=operation.path,
        name="",
        kwargs=tuple(names),
        methods=(),
        namespace="",
        callback=None,
    )
    return {name: ids[routes.object_of(route, name)] for name in names}


def has_negatable_input(operation) -> bool:
    """Whether the schema rules anything out for the operation: a body or a query or header
    parameter (path parameters are set to real ids). Only those get a negative phase."""
    return bool(len(operation.body) or len(operation.query) or len(operation.headers))


@pytest.fixture
def keep_connection():
    """The WSGI handler closes the connection after each request, as Django's test client
    prevents: the test's transaction (and its seeded tenant) must outlive the request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(victim, keep_connection):
    """The hardening tenant (flows, nodes, edges, a version, a data source, runs, a schedule)."""
    tokens = {key: token_sign_in(user=victim.users[key])[1] for key in ("owner", "admin")}
    return victim, tokens


def test_every_operation_is_fuzzed():
    assert len(OPERATIONS) >= 50
    paths = {op.path for op in OPERATIONS.values()}
    assert "/api/v1/flows/{id}/graph/" in paths


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_fuzz_operation(label, seeded):
    victim, tokens = seeded
    operation = OPERATIONS[label]
    who = world.who_calls(operation.path)
    headers = {"Authorization": f"Token {tokens[who]}", "X-Tenant": victim.tenant.slug}
    real = real_path_parameters(operation, victim.ids)
    strategies = [operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real)]
    if real:
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE))
    if has_negatable_input(operation):
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=real))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(strategies))
    def fuzz(case):
        with transaction.atomic():
            response = case.call(headers=headers)
            transaction.set_rollback(True)
        case.validate_response(response, checks=CHECKS, headers=headers)

    fuzz()


def test_fuzz_world_has_every_kind_of_path_id(victim):
    """Each path parameter of the schema maps to a seeded object (else the fuzz only sees 404s)."""
    for operation in OPERATIONS.values():
        assert set(real_path_parameters(operation, victim.ids)) == {
            p.name for p in operation.path_parameters
        }
    assert world.MARKER in victim.tenant.slug


def test_fuzz_stateful(seeded):
    """Scenarios that follow the schema's links (list or create, then the item's routes)."""
    victim, tokens = seeded

    class Workflow(SCHEMA.as_state_machine()):
        def setup(self):
            # Each scenario in a savepoint rolled back at its end: all meet the seeded tenant.
            self.atomic = transaction.atomic()
            self.atomic.__enter__()

        def teardown(self):
            transaction.set_rollback(True)
            self.atomic.__exit__(None, None, None)

        def get_call_kwargs(self, case):
            token = tokens[world.who_calls(case.operation.path)]
            return {"headers": {"Authorization": f"Token {token}", "X-Tenant": victim.tenant.slug}}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS, headers=kwargs.get("headers"))

    try:
        Workflow.run(
            settings=settings(
                max_examples=STATEFUL_EXAMPLES,
                stateful_step_count=6,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
        )
    except Unsatisfiable:  # pragma: no cover - the schema has links; say so if that changes
        pytest.fail("the schema offers no link to follow")
