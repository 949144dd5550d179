"""The gRPC form of the Open Inference Protocol, checked with tritonclient.grpc: health, metadata, infer with a
BYTES input of encoded tiles (the same detections as HTTP), the same limits and keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.serve.conftest import LiveServer, live_server
from tests.serve.images import jpeg

grpcclient = pytest.importorskip("tritonclient.grpc")
from tritonclient.utils import InferenceServerException  # noqa: E402


@pytest.fixture(scope="module")
def grpc_server(fake_model: Path) -> Iterator[LiveServer]:
    with live_server(fake_model, grpc_port=0, max_tiles=3, api_keys=["k"], host="127.0.0.1") as s:
        yield s


def _client(server: LiveServer) -> grpcclient.InferenceServerClient:
    return grpcclient.InferenceServerClient(f"127.0.0.1:{server.app.state.service.grpc_port}")


def _infer(server: LiveServer, images: list[bytes], key: str | None = "k", **parameters: object):
    tensor = grpcclient.InferInput("images", [len(images)], "BYTES")
    tensor.set_data_from_numpy(np.array(images, dtype=object))
    headers = {"x-api-key": key} if key else None
    name = _client(server).get_model_metadata(_model(server), headers={"x-api-key": "k"}).name
    return _client(server).infer(name, [tensor], headers=headers, parameters=parameters or None)


def _model(server: LiveServer) -> str:
    return str(httpx.get(server.url + "/v1/models", headers={"x-api-key": "k"}).json()["models"][0]["name"])


def test_health_and_metadata(grpc_server: LiveServer) -> None:
    client = _client(grpc_server)
    assert client.is_server_live() and client.is_server_ready()
    assert client.get_server_metadata().name == "shipdet"
    meta = client.get_model_metadata(_model(grpc_server), headers={"x-api-key": "k"})
    assert [i.name for i in meta.inputs] == ["images"] and "boxes" in [o.name for o in meta.outputs]
    assert client.is_model_ready(_model(grpc_server), headers={"x-api-key": "k"})


def test_infer_gives_the_http_answer(grpc_server: LiveServer) -> None:
    tiles = [jpeg(value=0), jpeg(value=200)]
    result = _infer(grpc_server, tiles, conf=0.5)
    boxes, index = result.as_numpy("boxes"), result.as_numpy("image_index")
    for i, tile in enumerate(tiles):
        http = httpx.post(grpc_server.url + "/v1/detect", content=tile, params={"conf": 0.5},
                          headers={"content-type": "image/jpeg", "x-api-key": "k"}).json()["detections"]
        assert np.allclose(boxes[index == i], [d["xyxy"] for d in http], atol=0.01)
    assert result.as_numpy("num_detections").tolist() == [int((index == i).sum()) for i in range(2)]


@pytest.mark.parametrize(("images", "parameters", "code", "says"), [
    ([jpeg()], {"conf": 5.0}, "StatusCode.INVALID_ARGUMENT", "conf"),
    ([jpeg()], {"confidence": 0.5}, "StatusCode.INVALID_ARGUMENT", "confidence"),
    ([jpeg()] * 4, {}, "StatusCode.RESOURCE_EXHAUSTED", "at most 3"),
    ([b"not an image"], {}, "StatusCode.INVALID_ARGUMENT", "JPEG, PNG or TIFF"),
])
def test_the_same_limits_as_http(grpc_server: LiveServer, images: list[bytes], parameters: dict[str, object],
                                 code: str, says: str) -> None:
    with pytest.raises(InferenceServerException) as caught:
        _infer(grpc_server, images, **parameters)
    assert caught.value.status() == code and says in caught.value.message()


def test_keys_are_required(grpc_server: LiveServer) -> None:
    with pytest.raises(InferenceServerException) as caught:
        _infer(grpc_server, [jpeg()], key="wrong")
    assert caught.value.status() == "StatusCode.UNAUTHENTICATED"
