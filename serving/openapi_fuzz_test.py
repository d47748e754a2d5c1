"""Property-based fuzz of the served OpenAPI document (schemathesis): no input gives a 5xx.

schemathesis generates requests from /openapi.json, valid and invalid, and sends them in process to
the ASGI app over the real pushed version; each response must not be a server error and must have
a status, content type and body the document declares. Bounded by `max_examples` per operation.
"""

import hypothesis
import pytest
import schemathesis
from schemathesis import checks

from serving import app as app_lib
from serving import model_store

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 40


@pytest.fixture(scope="module")
def served_app(pushed_version):
  store = model_store.ModelStore(pushed_version.destination)
  store.refresh()
  assert store.current is not None
  return app_lib.create_app(store)


@pytest.fixture
def api_schema(served_app):
  return schemathesis.openapi.from_asgi("/openapi.json", served_app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@hypothesis.settings(max_examples=MAX_EXAMPLES, deadline=None,
                     suppress_health_check=list(hypothesis.HealthCheck))
def test_openapi_fuzz_finds_no_server_error(case):
  case.call_and_validate(checks=[checks.not_a_server_error, checks.status_code_conformance,
                                 checks.content_type_conformance,
                                 checks.response_schema_conformance])
