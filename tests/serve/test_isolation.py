"""Request isolation: nothing one request carries can fail another. Parameters are validated once, by the same
model, on every protocol (/v1, /v2, gRPC) and before decoding; a failure inside a shared batch fails only its own
request."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from grpc import aio

from shipdet.inference.engine import Engine
from shipdet.serve.batcher import DetectParams, DynamicBatcher
from shipdet.serve.grpc_server import SERVICE
from shipdet.serve.protos import grpc_predict_v2_pb2 as pb
from tests.fake_model import detect_model
from tests.serve.conftest import LiveServer, live_server
from tests.serve.images import jpeg


@pytest.fixture(scope="module")
def batching_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # A long batching delay: concurrent requests really share batches.
    with live_server(detect_model(tmp_path_factory.mktemp("m") / "fake.onnx"), max_delay_ms=300, max_batch=8,
                     max_tiles=4, grpc_port=0) as server:
        yield server


def _v2_body(images: list[bytes], parameters: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"inputs": [{"name": "images", "datatype": "BYTES", "shape": [len(images)],
                                        "data": [base64.b64encode(i).decode() for i in images]}]}
    if parameters is not None:
        body["parameters"] = parameters
    return body


def _model_name(server: LiveServer) -> str:
    return str(httpx.get(server.url + "/v1/models").json()["models"][0]["name"])


POISONED_V2: list[tuple[str, bytes]] = [
    ("conf-string", json.dumps(_v2_body([jpeg()], {"conf": "abc"})).encode()),
    ("conf-negative", json.dumps(_v2_body([jpeg()], {"conf": -1})).encode()),
    ("iou-five", json.dumps(_v2_body([jpeg()], {"iou": 5})).encode()),
    ("conf-nan", b'{"inputs": [{"name": "images", "datatype": "BYTES", "shape": [1], "data": ["'
     + base64.b64encode(jpeg()) + b'"]}], "parameters": {"conf": NaN}}'),
    ("classes-string", json.dumps(_v2_body([jpeg()], {"classes": "x"})).encode()),
    ("unknown-parameter", json.dumps(_v2_body([jpeg()], {"confidence": 0.5})).encode()),
    ("array-body", b"[1, 2, 3]"),
    ("string-body", b'"images"'),
    ("inputs-not-list", b'{"inputs": {"name": "images"}}'),
    ("huge-shape", b'{"inputs": [{"name": "images", "datatype": "BYTES", "shape": [1e400], "data": []}]}'),
    ("deep-nesting", b'{"inputs": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
    ("too-many-images", json.dumps(_v2_body([jpeg()] * 5)).encode()),
    ("corrupt-image", json.dumps(_v2_body([b"\xff\xd8\xff garbage"])).encode()),
]
POISONED_V1: list[tuple[str, dict[str, Any], bytes]] = [
    ("conf-string", {"conf": "abc"}, jpeg()),
    ("iou-five", {"iou": 5}, jpeg()),
    ("classes-negative", {"classes": "-1"}, jpeg()),
    ("transform-infinite", {"transform": "1e308,0,1e308,0,-1e308,1e308", "crs": "EPSG:32653"}, jpeg()),
    ("corrupt-image", {}, b"\xff\xd8\xff garbage"),
]


POISONED_GRPC: list[tuple[str, list[bytes], dict[str, Any]]] = [
    ("conf-string", [jpeg()], {"conf": "abc"}),
    ("conf-negative", [jpeg()], {"conf": -1.0}),
    ("unknown-parameter", [jpeg()], {"confidence": 0.5}),
    ("too-many-images", [jpeg()] * 5, {}),
    ("corrupt-image", [b"\xff\xd8\xff garbage"], {}),
]


def test_poisoned_requests_of_every_protocol_fail_alone(batching_server: LiveServer) -> None:
    name = _model_name(batching_server)
    expected = httpx.post(batching_server.url + "/v1/detect", content=jpeg(value=128),
                          headers={"content-type": "image/jpeg"}).json()["detections"]

    async def main() -> list[tuple[str, int, Any]]:
        async with httpx.AsyncClient(base_url=batching_server.url, timeout=30) as client:
            async def v1(label: str, params: dict[str, Any], body: bytes) -> tuple[str, int, Any]:
                r = await client.post("/v1/detect", content=body, params=params,
                                      headers={"content-type": "image/jpeg"})
                return label, r.status_code, r.json()

            async def v2(label: str, body: bytes) -> tuple[str, int, Any]:
                r = await client.post(f"/v2/models/{name}/infer", content=body,
                                      headers={"content-type": "application/json"})
                return label, r.status_code, r.json()

            async with aio.insecure_channel(f"127.0.0.1:{batching_server.app.state.service.grpc_port}") as channel:
                infer = channel.unary_unary(f"/{SERVICE}/ModelInfer", pb.ModelInferRequest.SerializeToString,
                                            pb.ModelInferResponse.FromString)

                async def grpc_call(label: str, images: list[bytes], parameters: dict[str, Any]
                                    ) -> tuple[str, int, Any]:
                    request = pb.ModelInferRequest(model_name=name, raw_input_contents=[b"".join(
                        struct.pack("<I", len(i)) + i for i in images)])
                    request.inputs.add(name="images", datatype="BYTES", shape=[len(images)])
                    for key, value in parameters.items():
                        setattr(request.parameters[key], "double_param" if isinstance(value, float) else
                                "string_param", value)
                    try:
                        answer = await infer(request, timeout=30)
                    except aio.AioRpcError as exc:
                        as_http = {grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.RESOURCE_EXHAUSTED: 413}
                        return label, as_http.get(exc.code(), 500), exc.details()
                    return label, 200, answer

                calls = []
                for round_ in range(3):  # valid and poisoned interleaved, all in flight together
                    calls += [v1(f"valid-v1-{round_}-{i}", {}, jpeg(value=128)) for i in range(4)]
                    calls += [v2(f"valid-v2-{round_}", json.dumps(_v2_body([jpeg(value=128)])).encode())]
                    calls += [grpc_call(f"valid-grpc-{round_}", [jpeg(value=128)], {})]
                    calls += [v2(f"poison-v2-{label}", body) for label, body in POISONED_V2]
                    calls += [v1(f"poison-v1-{label}", p, b) for label, p, b in POISONED_V1]
                    calls += [grpc_call(f"poison-grpc-{label}", images, params) for label, images, params in
                              POISONED_GRPC]
                return await asyncio.gather(*calls)

    results = asyncio.run(main())
    for label, status, body in results:
        assert status < 500, (label, status, body)  # no request gets a 500, its own or another's
        if label.startswith("valid-v1"):
            assert status == 200 and body["detections"] == expected, label
        elif label.startswith("valid-grpc"):
            assert status == 200, label
            scores = np.frombuffer(body.raw_output_contents[[o.name for o in body.outputs].index("scores")], "<f4")
            assert scores.tolist() == pytest.approx([d["score"] for d in expected], abs=1e-4), label
        elif label.startswith("valid-v2"):
            assert status == 200, label
            scores = next(o for o in body["outputs"] if o["name"] == "scores")["data"]
            assert scores == pytest.approx([d["score"] for d in expected], abs=1e-4), label
        else:
            assert status in (400, 413, 415, 422), (label, status, body)


@pytest.mark.parametrize(("name", "bad", "good"), [
    ("conf", -0.1, 1.0), ("conf", 1.5, 0.0), ("iou", 2, 0.5), ("max_det", 0, 3000), ("max_det", 3001, 1),
    ("gsd", 0.001, 10.0), ("gsd", 5000, 0.01), ("classes", "a,b", "0"),
])
def test_each_limit_applies_identically_on_v1_and_v2(batching_server: LiveServer, name: str, bad: Any,
                                                     good: Any) -> None:
    model = _model_name(batching_server)
    for value, ok in ((bad, False), (good, True)):
        v1 = httpx.post(batching_server.url + "/v1/detect", content=jpeg(), params={name: value},
                        headers={"content-type": "image/jpeg"}, timeout=30)
        v2_value = [int(c) for c in value.split(",")] if name == "classes" and ok else value
        v2 = httpx.post(batching_server.url + f"/v2/models/{model}/infer",
                        json=_v2_body([jpeg()], {name: v2_value}), timeout=30)
        assert (v1.status_code == 200) == ok and (v2.status_code == 200) == ok, (name, value, v1.text, v2.text)
        if not ok:
            assert v1.json()["error"]["code"] == "invalid_request" and v2.status_code == 400
            assert name in v1.json()["error"]["message"] and name in v2.json()["error"]


def test_a_failure_inside_a_shared_batch_fails_only_its_request(tmp_path: Any) -> None:
    engine = Engine(detect_model(tmp_path / "fake.onnx"), providers=["cpu"], streams=1)

    async def main() -> list[Any]:
        batcher = DynamicBatcher(engine, max_batch=8, max_delay_ms=500, queue_size=16)
        batcher.start()
        tile = np.full((64, 64, 3), 128, np.uint8)

        async def one(params: DetectParams) -> Any:
            with batcher.announce():
                batch, boxes = engine.preprocess([tile])
            try:
                return (await batcher.submit(batch[0].copy(), boxes[0], params))[0]
            except Exception as exc:  # this request's own failure
                return exc

        poisoned = DetectParams(conf="abc", iou=0.45)  # type: ignore[arg-type]  # what validation now stops
        results = await asyncio.gather(*(one(p) for p in [DetectParams(0.5, 0.45), poisoned,
                                                          DetectParams(0.5, 0.45), DetectParams(0.5, 0.45)]))
        await batcher.stop()
        return list(results)

    results = asyncio.run(main())
    assert isinstance(results[1], Exception)
    others = [r for i, r in enumerate(results) if i != 1]
    assert all(not isinstance(r, Exception) and len(r) == len(others[0]) > 0 for r in others)
    assert all(np.array_equal(r.xyxy, others[0].xyxy) for r in others)  # the same tile, the same answer
