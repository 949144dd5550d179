"""The service as independent tools see it: a valid OpenAPI document with its security scheme and readable
operation ids, Prometheus metrics that parse, with process figures and every rejection series from the start."""

from __future__ import annotations

import httpx
from openapi_spec_validator import validate
from prometheus_client.parser import text_string_to_metric_families

from shipdet.serve.app import create_app
from shipdet.serve.metrics import REJECTION_REASONS
from shipdet.serve.settings import ServeSettings
from tests.serve.conftest import LiveServer


def test_openapi_is_valid_and_says_how_to_authenticate() -> None:
    schema = create_app(ServeSettings()).openapi()
    validate(schema)
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
        "description": schema["components"]["securitySchemes"]["ApiKey"]["description"]}
    detect = schema["paths"]["/v1/detect"]["post"]
    assert detect["operationId"] == "detect" and {"ApiKey": []} in detect["security"]
    assert "application/geo+json" in detect["responses"]["200"]["content"]
    ids = [op["operationId"] for path in schema["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids)) and all(i.isidentifier() and "__" not in i for i in ids)


def test_metrics_parse_with_process_figures_and_every_rejection_series(server: LiveServer) -> None:
    families = {f.name: f for f in text_string_to_metric_families(httpx.get(server.url + "/metrics").text)}
    for name in ("process_resident_memory_bytes", "process_cpu_seconds", "process_open_fds"):
        assert name in families and families[name].samples[0].value > 0
    reasons = {s.labels["reason"] for s in families["shipdet_rejections"].samples if s.name.endswith("_total")}
    assert reasons >= set(REJECTION_REASONS)
