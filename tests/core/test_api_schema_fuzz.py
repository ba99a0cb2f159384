"""Schemathesis over every operation of /api/schema/: no 5xx, and every answer is what the
schema says (its status code is documented and its body matches the documented shape).

The caller is an admin token, so writes, approvals, sends and deletes all run — against the
test database, with a client, a product, a segment, a publication and an edition to hit.
Bounded (max_examples per operation) to finish in a few minutes on two cores, and
derandomized so CI sees the same cases every run; SCHEMA_FUZZ_EXAMPLES=200 SCHEMA_FUZZ_RANDOM=1
explores further by hand.
"""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from tests.factories import ClientFactory, HoldingFactory, ProductFactory, TransactionFactory

# Loading the schema needs no database (anonymous request, no session written).
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)



@pytest.fixture
def admin_headers(db, keep_connection, branch, rm_a):
    from core.services import api_token_issue
    from segments.services import segment_create
    from tests.newsletters import make_edition, make_publication

    token = api_token_issue(username="schema-fuzzer", role="admin")
    client = ClientFactory(client_no="A0000001", rm=rm_a, branch=branch)
    product = ProductFactory(product_code="F000001")
    HoldingFactory(client=client, product=product)
    TransactionFactory(client=client, product=product)
    segment_create(code="fuzz-rule", kind="rule", name_en="Fuzz", name_zh="模糊",
                   rule={"field": "age", "op": "gte", "value": 18}, actor=token.user,
                   refresh=False)
    publication = make_publication(actor=token.user)
    make_edition(author=token.user, publication=publication)
    return {"Authorization": f"Token {token.key}"}


@schema.parametrize()
@settings(max_examples=int(os.environ.get("SCHEMA_FUZZ_EXAMPLES", "25")),
          derandomize=not os.environ.get("SCHEMA_FUZZ_RANDOM"),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_every_operation_answers_as_its_schema_says(case, admin_headers):
    case.call_and_validate(headers=admin_headers,
                           checks=[not_a_server_error, response_schema_conformance,
                                   status_code_conformance])
