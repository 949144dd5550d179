"""`POST /v1/detect?gsd=`: a tile outside the model's scale range is resampled into it, scored (in windows when it
outgrows the model's input) and its boxes are mapped back; the response says which factor was applied."""

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from shipdet.scale import METADATA_KEY, ScaleRange
from tests.fake_model import detect_model
from tests.serve.conftest import LiveServer, live_server
from tests.serve.images import png


@pytest.fixture(scope="module")
def scaled_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    model: Path = detect_model(tmp_path_factory.mktemp("model") / "scaled.onnx",
                               {METADATA_KEY: ScaleRange(1.0, 2.0).to_metadata()})
    with live_server(model, max_body_bytes=2_000_000, max_pixels=4_000_000) as server:
        yield server


def detect(server: LiveServer, body: bytes, **params: float) -> httpx.Response:
    return httpx.post(server.url + "/v1/detect", content=body, headers={"content-type": "image/png"},
                      params=params, timeout=30)


def test_coarse_tile_is_upsampled_and_boxes_map_back(scaled_server: LiveServer) -> None:
    # A uniform tile keeps its mean brightness when resampled, so the fake model's boxes depend on size only.
    small = detect(scaled_server, png(32, 32, 128), gsd=4.0).json()
    big = detect(scaled_server, png(64, 64, 128)).json()
    assert small["scale"] == {"gsd_m": 4.0, "factor": 2.0, "windows": 1, "graph": "main"}
    assert big["scale"] == {"gsd_m": None, "factor": 1.0, "windows": 1, "graph": "main"}  # no GSD: scored as it is
    assert small["image"]["width"] == 32  # boxes and sizes are in the tile's own pixels
    assert len(small["detections"]) == len(big["detections"]) > 0
    for a, b in zip(small["detections"], big["detections"], strict=True):
        assert np.allclose(np.array(a["xyxy"]) * 2, b["xyxy"], atol=0.05)


def test_within_the_range_nothing_is_resampled(scaled_server: LiveServer) -> None:
    assert detect(scaled_server, png(64, 64, 128), gsd=1.5).json()["scale"]["factor"] == 1.0


def test_resampled_tile_larger_than_the_input_is_scored_in_windows(scaled_server: LiveServer) -> None:
    data = detect(scaled_server, png(64, 64, 128), gsd=4.0).json()
    assert data["scale"]["windows"] == 9  # 128 px in 64 px windows, 16 px overlap: 3 x 3
    boxes = np.array([d["xyxy"] for d in data["detections"]])
    assert len(boxes) > 0 and (boxes >= -0.5).all() and (boxes <= 64.5).all()


def test_a_tile_that_letterboxing_would_make_coarser_than_the_range_is_scored_in_windows(
        scaled_server: LiveServer) -> None:
    # The model's input is 64 px and its range 1-2 m. At 1.5 m, an 80 px tile letterboxed whole is scored at
    # 1.875 m (inside the range); a 96 px tile would be at 2.25 m, so it is scored in windows at its own scale.
    inside = detect(scaled_server, png(80, 80, 128), gsd=1.5).json()
    coarsened = detect(scaled_server, png(96, 96, 128), gsd=1.5).json()
    unknown = detect(scaled_server, png(96, 96, 128)).json()
    assert inside["scale"] == {"gsd_m": 1.5, "factor": 1.0, "windows": 1, "graph": "main"}
    # 96 px in 64 px windows: 2 x 2
    assert coarsened["scale"] == {"gsd_m": 1.5, "factor": 1.0, "windows": 4, "graph": "main"}
    assert unknown["scale"]["windows"] == 1  # without a GSD the tile is letterboxed whole, as before
    boxes = np.array([d["xyxy"] for d in coarsened["detections"]])
    assert len(boxes) > 0 and (boxes >= -0.5).all() and (boxes <= 96.5).all()


def test_max_det_caps_the_tile_not_each_window_and_says_when_it_was_reached(scaled_server: LiveServer) -> None:
    whole = detect(scaled_server, png(64, 64, 128), gsd=4.0, max_det=3000).json()  # 9 windows, nothing cut
    assert whole["thresholds"]["max_det"] == 3000 and whole["thresholds"]["max_det_reached"] is False
    cap = max(len(whole["detections"]) - 1, 1)
    capped = detect(scaled_server, png(64, 64, 128), gsd=4.0, max_det=cap).json()
    assert len(capped["detections"]) == cap and capped["thresholds"]["max_det_reached"] is True
    best = sorted((d["score"] for d in whole["detections"]), reverse=True)[:cap]
    assert np.allclose(sorted((d["score"] for d in capped["detections"]), reverse=True), best)
    one = detect(scaled_server, png(64, 64, 128), max_det=1).json()  # one window that hit the cap
    assert len(one["detections"]) == 1 and one["thresholds"]["max_det_reached"] is True


def test_resampling_past_the_pixel_limit_is_refused_before_scoring(scaled_server: LiveServer) -> None:
    r = detect(scaled_server, png(1200, 1200, 128), gsd=4.0)  # 2,400 x 2,400 once resampled
    assert r.status_code == 413 and r.json()["error"]["code"] == "image_too_large"
    assert "resampled x2.00" in r.json()["error"]["message"]


@pytest.mark.parametrize("gsd", ["0", "-3", "abc", "1e400"])
def test_bad_gsd_is_a_422(scaled_server: LiveServer, gsd: str) -> None:
    r = httpx.post(scaled_server.url + "/v1/detect", content=png(), headers={"content-type": "image/png"},
                   params={"gsd": gsd}, timeout=30)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"


def test_a_tile_with_more_windows_than_the_queue_holds_is_scored(tmp_path: Path) -> None:
    model = detect_model(tmp_path / "scaled.onnx", {METADATA_KEY: ScaleRange(1.0, 2.0).to_metadata()})
    with live_server(model, queue_size=2, max_batch=2) as server:  # 9 windows, taken a batch at a time
        r = detect(server, png(64, 64, 128), gsd=4.0)
        assert r.status_code == 200 and r.json()["scale"]["windows"] == 9


def test_a_large_tile_s_model_inputs_are_made_a_batch_at_a_time(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A resampled tile's inputs (windows x views, 3 MiB each at 512 px) are not all held from the start: the
    first batch's worth is made with the tile, each later batch while the one before is scored."""
    from shipdet.serve.dataplane import PreparedTile

    made: list[tuple[int, int]] = []
    inputs = PreparedTile.inputs

    def recorded(tile: PreparedTile, start: int, stop: int) -> list:
        made.append((start, stop))
        return inputs(tile, start, stop)

    monkeypatch.setattr(PreparedTile, "inputs", recorded)
    model = detect_model(tmp_path / "scaled.onnx", {METADATA_KEY: ScaleRange(1.0, 2.0).to_metadata()})
    answers = []
    for max_batch in (4, 32):
        made.clear()
        with live_server(model, max_batch=max_batch) as server:  # 9 windows in 2 views: 18 inputs
            r = detect(server, png(64, 64, 128), gsd=4.0, views=2)
        assert r.status_code == 200 and r.json()["scale"]["windows"] == 9
        answers.append(r.json()["detections"])
        if max_batch == 4:  # one for the place held while decoding and a batch; then a batch at a time
            assert made == [(0, 5), (5, 9), (9, 13), (13, 17), (17, 18)]
        else:
            assert made == [(0, 18)]
    assert answers[0] == answers[1] and answers[0]


def test_a_georeference_implying_an_implausible_gsd_is_a_422(scaled_server: LiveServer) -> None:
    r = httpx.post(scaled_server.url + "/v1/detect", content=png(64, 64, 128), headers={"content-type": "image/png"},
                   params={"transform": "0.0001,0,500000,0,-0.0001,4000000", "crs": "EPSG:32633"}, timeout=30)
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_georeference"


def test_the_open_inference_protocol_reports_the_scale_factor_and_the_cap(tmp_path: Path) -> None:
    httpclient = pytest.importorskip("tritonclient.http")
    grpcclient = pytest.importorskip("tritonclient.grpc")
    model = detect_model(tmp_path / "scaled.onnx", {METADATA_KEY: ScaleRange(1.0, 2.0).to_metadata()})
    tiles = [png(32, 32, 128), png(64, 64, 128)]
    with live_server(model, grpc_port=0, max_body_bytes=2_000_000, host="127.0.0.1") as server:
        native = [detect(server, tile, gsd=4.0, max_det=1).json() for tile in tiles]
        expected_factors = [n["scale"]["factor"] for n in native]
        expected_reached = [n["thresholds"]["max_det_reached"] for n in native]
        assert expected_factors == [2.0, 2.0] and expected_reached == [True, True]
        name = httpx.get(server.url + "/v1/models").json()["models"][0]["name"]
        answers = []
        for binary in (True, False):
            inp = httpclient.InferInput("images", [2], "BYTES")
            data = tiles if binary else [base64.b64encode(t) for t in tiles]  # plain JSON carries base64
            inp.set_data_from_numpy(np.array(data, dtype=np.object_), binary_data=binary)
            outputs = [httpclient.InferRequestedOutput(n, binary_data=binary)
                       for n in ("num_detections", "scale_factor", "max_det_reached")]
            client = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
            answers.append(client.infer(name, [inp], outputs=outputs, parameters={"gsd": 4.0, "max_det": 1}))
        tensor = grpcclient.InferInput("images", [2], "BYTES")
        tensor.set_data_from_numpy(np.array(tiles, dtype=np.object_))
        grpc = grpcclient.InferenceServerClient(f"127.0.0.1:{server.app.state.service.grpc_port}")
        answers.append(grpc.infer(name, [tensor], parameters={"gsd": 4.0, "max_det": 1}))
        plain = client.infer(name, [inp], parameters={"max_det": 1000})  # no GSD: scored as it is, nothing cut
    for answer in answers:
        assert answer.as_numpy("scale_factor").tolist() == expected_factors
        assert answer.as_numpy("max_det_reached").tolist() == expected_reached
        assert answer.as_numpy("num_detections").tolist() == [1, 1]
    assert plain.as_numpy("scale_factor").tolist() == [1.0, 1.0]
    assert plain.as_numpy("max_det_reached").tolist() == [False, False]
