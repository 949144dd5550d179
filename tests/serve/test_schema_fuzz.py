"""Schema-based fuzzing (schemathesis 4) of the running service: no 500, every response matches the schema.

The fuzzing goes through the live server (the whole HTTP stack) rather than the bare ASGI callable: the
dynamic batcher runs on the server's event loop, and schemathesis' ASGI transport calls the app from a loop
of its own per request.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# What the service promises: never a 5xx it did not mean (503/504 are documented), and every response in the
# documented status codes, content types and shapes. (Parameter pairs such as transform+crs are not expressible
# in OpenAPI 3.0, so "schema-valid data is accepted" is not among the checks.)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_every_operation_never_500_and_matches_schema(server):
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/detect", "/v1/detect/batch", "/v1/models", "/readyz"}
    for operation in operations:

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def check(case: object) -> None:
            case.call_and_validate(base_url=server.url, checks=CHECKS)  # type: ignore[attr-defined]

        check()
