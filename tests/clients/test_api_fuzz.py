"""Schema-driven fuzzing of the client, product and cash-flow operations: no input may cause a
5xx.

Schemathesis reads /api/schema/ from the WSGI app and sends generated requests (valid and
invalid) with an ops token, so writes are exercised too. Bounded to finish in well under 60s.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from config.wsgi import application
from tests.factories import ClientFactory, ProductFactory

# Loading the schema needs no database (anonymous request, no session written).
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application).include(
    path_regex=r"^/api/v1/(clients|products|cash-flows)/")



@pytest.fixture
def ops_headers(db, keep_connection, branch, rm_a):
    from core.services import api_token_issue

    ClientFactory(client_no="A0000001", rm=rm_a, branch=branch)
    ProductFactory(product_code="F000001")
    token = api_token_issue(username="fuzzer", role="ops")
    return {"Authorization": f"Token {token.key}"}


@schema.parametrize()
@settings(max_examples=25,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_no_input_makes_the_api_fail(case, ops_headers):
    case.call_and_validate(headers=ops_headers, checks=[not_a_server_error])
