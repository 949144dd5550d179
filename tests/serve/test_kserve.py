"""The Open Inference Protocol, driven by the stock tritonclient HTTP client against a real server."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import pytest

from tests.serve.images import jpeg

httpclient = pytest.importorskip("tritonclient.http")


@pytest.mark.parametrize("binary", [True, False], ids=["binary-extension", "json"])
def test_tritonclient_infer(server, binary):
    client = httpclient.InferenceServerClient(url=server.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    name = httpx.get(server.url + "/v1/models").json()["models"][0]["name"]
    assert client.is_model_ready(name)
    meta = client.get_model_metadata(name)
    assert meta["inputs"][0] == {"name": "images", "datatype": "BYTES", "shape": [-1]}
    images = [jpeg(value=0), jpeg(value=255), jpeg(value=128)]
    data = np.array(images if binary else [base64.b64encode(i) for i in images], dtype=np.object_)
    inp = httpclient.InferInput("images", [len(images)], "BYTES")
    inp.set_data_from_numpy(data, binary_data=binary)
    outputs = [httpclient.InferRequestedOutput(n, binary_data=binary)
               for n in ("boxes", "scores", "image_index", "num_detections")]
    result = client.infer(name, [inp], outputs=outputs, parameters={"conf": 0.85})
    assert result.as_numpy("num_detections").tolist() == [1, 1, 1]
    assert result.as_numpy("image_index").tolist() == [0, 1, 2]
    np.testing.assert_allclose(result.as_numpy("scores"), [0.9, 0.9, 0.9], atol=1e-5)
    boxes = result.as_numpy("boxes")
    native = [httpx.post(server.url + "/v1/detect", content=i, headers={"content-type": "image/jpeg"},
                         params={"conf": 0.85}).json()["detections"][0]["xyxy"] for i in images]
    np.testing.assert_allclose(boxes, native, atol=0.02)  # the same detections as the native API


def test_protocol_errors(server):
    client = httpclient.InferenceServerClient(url=server.url.removeprefix("http://"))
    from tritonclient.utils import InferenceServerException

    with pytest.raises(InferenceServerException, match="not served"):
        client.get_model_metadata("nope")
    r = httpx.post(server.url + "/v2/models/nope/infer", json={"inputs": []})
    assert r.status_code == 404 and "error" in r.json()
    name = httpx.get(server.url + "/v1/models").json()["models"][0]["name"]
    r = httpx.post(server.url + f"/v2/models/{name}/infer", json={"inputs": [{"name": "x", "datatype": "FP32"}]})
    assert r.status_code == 400 and "images" in r.json()["error"]
    bad = {"inputs": [{"name": "images", "datatype": "BYTES", "shape": [1], "data": ["bm90IGFuIGltYWdl"]}]}
    r = httpx.post(server.url + f"/v2/models/{name}/infer", json=bad)
    assert r.status_code == 400 and "JPEG, PNG or TIFF" in r.json()["error"]


def test_every_error_under_v2_has_the_protocol_shape(fake_model):
    from tests.serve.conftest import live_server

    with live_server(fake_model, max_body_bytes=2048, api_keys=["k"]) as s:
        key = {"x-api-key": "k"}
        name = httpx.get(s.url + "/v1/models", headers=key).json()["models"][0]["name"]
        answers = {
            401: httpx.get(f"{s.url}/v2/models/{name}"),
            404: httpx.get(s.url + "/v2/nothing/here", headers=key),
            405: httpx.delete(f"{s.url}/v2/models/{name}/infer", headers=key),
            413: httpx.post(f"{s.url}/v2/models/{name}/infer", content=b"{" * 4096, headers=key),
        }
        for status, r in answers.items():
            assert r.status_code == status, (status, r.text)
            assert isinstance(r.json()["error"], str) and r.json()["error"]
        v1 = httpx.get(s.url + "/v1/nothing", headers=key)  # the native API keeps its own shape
        assert v1.status_code == 404 and v1.json()["error"]["code"] == "not_found"


def test_what_a_triton_client_calls(server):
    from tritonclient.utils import InferenceServerException

    client = httpclient.InferenceServerClient(url=server.url.removeprefix("http://"))
    name = httpx.get(server.url + "/v1/models").json()["models"][0]["name"]
    assert client.get_server_metadata()["name"] == "shipdet"
    version = client.get_model_metadata(name)["versions"][0]
    assert client.get_model_metadata(name, model_version=version)["name"] == name
    assert client.is_model_ready(name, model_version=version)
    with pytest.raises(InferenceServerException):
        client.get_model_metadata(name, model_version="no-such-version")
    config = client.get_model_config(name)
    assert config["name"] == name and config["input"][0]["data_type"] == "TYPE_STRING"
    assert client.get_model_repository_index()[0] == {"name": name, "version": version, "state": "READY",
                                                      "reason": ""}
    before = client.get_inference_statistics(name)["model_stats"][0]
    tile = httpclient.InferInput("images", [1], "BYTES")
    tile.set_data_from_numpy(np.array([jpeg()], dtype=object), binary_data=True)
    result = client.infer(name, [tile], model_version=version)  # no outputs named: all come back binary
    assert result.as_numpy("boxes").shape[1] == 4
    assert all("binary_data_size" in o["parameters"] for o in result.get_response()["outputs"])
    after = client.get_inference_statistics(name)["model_stats"][0]
    assert after["inference_stats"]["success"]["count"] == before["inference_stats"]["success"]["count"] + 1
    assert after["inference_count"] == before["inference_count"] + 1
    assert after["execution_count"] > before["execution_count"]
