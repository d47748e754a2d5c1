"""Property-based fuzz of the served OpenAPI document (schemathesis): no input gives a 5xx.

schemathesis generates requests from /openapi.json, valid and invalid (negative mode), and sends
them in process to the ASGI app over the real pushed version; each response must not be a server
error and must have a status, content type and body the document declares. Bounded by
`MAX_EXAMPLES` per operation and mode (about 30 s).

Driven with Hypothesis' `@given` over each operation's strategy rather than schemathesis' pytest
plugin, whose `from_fixture` does not run under this project's pytest.
"""

import hypothesis
from hypothesis import strategies as st
import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis import checks

from serving import app as app_lib
from serving import model_store

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 30
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance]


@pytest.fixture(scope="module")
def api_schema(pushed_version):
  store = model_store.ModelStore(pushed_version.destination)
  assert store.refresh() is not None
  return schemathesis.openapi.from_asgi("/openapi.json", app_lib.create_app(store))


def operations(schema):
  return [result.ok() for result in schema.get_all_operations()]


def test_the_document_lists_every_endpoint(api_schema):
  labels = {operation.label for operation in operations(api_schema)}
  assert {f"POST {app_lib.PREDICT_PATH}", f"POST {app_lib.CLASSIFY_IMAGE_PATH}",
          f"GET {app_lib.MODEL_PATH}", f"GET {app_lib.METADATA_PATH}", "GET /metrics",
          "GET /healthz", "GET /readyz"} <= labels


def test_openapi_fuzz_finds_no_server_error(api_schema):
  statuses = []
  for operation in operations(api_schema):
    strategy = st.one_of(operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                         operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))

    @hypothesis.given(case=strategy)
    @hypothesis.settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                         suppress_health_check=list(hypothesis.HealthCheck))
    def fuzz(case):
      response = case.call_and_validate(checks=CHECKS)
      statuses.append(response.status_code)

    fuzz()
  assert any(status == 200 for status in statuses)
  assert any(400 <= status < 500 for status in statuses)  # Invalid requests were generated.
