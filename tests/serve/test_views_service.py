"""A tile scored in several views: each view's boxes mapped back to the tile, fused, reported; bad counts refused."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shipdet.errors import ConfigError, ModelLoadError
from shipdet.inference.model import load_model_info
from shipdet.inference.operating_point import VIEWS_METADATA_KEY
from shipdet.serve.settings import ServeSettings
from tests.fake_model import detect_model
from tests.serve.conftest import LiveServer, live_server
from tests.serve.images import png

# The fake model finds its boxes at fixed places of its 64 x 64 input whatever it is shown (a black tile: no
# shift): its best, 0.9, at x 12-28, y 16-24. In the mirrored views that place is another place of the tile.
BEST = [12.0, 16.0, 28.0, 24.0]
MIRRORED = [BEST, [36.0, 16.0, 52.0, 24.0], [12.0, 40.0, 28.0, 48.0], [36.0, 40.0, 52.0, 48.0]]


@pytest.fixture(scope="module")
def four_view_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return detect_model(tmp_path_factory.mktemp("model") / "four.onnx", {VIEWS_METADATA_KEY: "4"})


@pytest.fixture(scope="module")
def four_view_server(four_view_model: Path) -> Iterator[LiveServer]:
    with live_server(four_view_model, max_views=4) as server:
        yield server


def detect(server: LiveServer, **params: object) -> httpx.Response:
    return httpx.post(server.url + "/v1/detect", content=png(64, 64, 0), headers={"content-type": "image/png"},
                      params=params, timeout=30)


def test_the_model_s_views_are_the_default_and_each_view_s_ship_is_averaged_over_all(
        four_view_server: LiveServer) -> None:
    answer = detect(four_view_server, conf=0.2).json()
    assert answer["thresholds"]["views"] == 4 and answer["thresholds"]["conf"] == 0.2
    # each view's best box lands on its own place of the tile: seen by one view of four, it scores 0.9 / 4
    boxes = sorted(d["xyxy"] for d in answer["detections"])
    assert boxes == sorted(MIRRORED)
    assert [d["score"] for d in answer["detections"]] == [pytest.approx(0.225)] * 4
    models = httpx.get(four_view_server.url + "/v1/models", timeout=10).json()["models"][0]
    assert models["default_views"] == 4


def test_a_request_may_ask_for_one_view(four_view_server: LiveServer) -> None:
    answer = detect(four_view_server, conf=0.2, views=1).json()
    assert answer["thresholds"]["views"] == 1
    assert [(d["xyxy"], round(d["score"], 3)) for d in answer["detections"]] == [(BEST, 0.9), ([44, 36, 52, 44], 0.6)]


@pytest.mark.parametrize(("views", "says"), [(3, "views"), ("two", "views"), (8, "over this service's limit of 4")])
def test_a_view_count_that_is_not_offered_is_refused(four_view_server: LiveServer, views: object, says: str) -> None:
    r = detect(four_view_server, views=views)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request" and says in r.text


def test_an_operator_cannot_default_to_more_views_than_allowed(four_view_model: Path) -> None:
    with pytest.raises(ConfigError, match="over the limit of 2"):
        ServeSettings(model=four_view_model, views=4, max_views=2)


def test_an_unusable_recorded_view_count_stops_the_load(tmp_path: Path) -> None:
    model = detect_model(tmp_path / "bad.onnx", {VIEWS_METADATA_KEY: "3"})
    with pytest.raises(ModelLoadError, match=VIEWS_METADATA_KEY):
        load_model_info(model)


def test_the_open_inference_protocol_takes_views_as_a_parameter(four_view_server: LiveServer) -> None:
    import base64

    name = httpx.get(four_view_server.url + "/v1/models", timeout=10).json()["models"][0]["name"]
    request = {"inputs": [{"name": "images", "datatype": "BYTES", "shape": [1],
                           "data": [base64.b64encode(png(64, 64, 0)).decode()]}],
               "parameters": {"conf": 0.5, "views": 1}}
    one = httpx.post(four_view_server.url + f"/v2/models/{name}/infer", json=request, timeout=30).json()
    request["parameters"] = {"conf": 0.2}  # the model's four views: each view's best box lands elsewhere
    four = httpx.post(four_view_server.url + f"/v2/models/{name}/infer", json=request, timeout=30).json()
    counts = {r["name"]: r for r in one["outputs"]}["num_detections"]["data"], \
        {r["name"]: r for r in four["outputs"]}["num_detections"]["data"]
    assert counts == ([2], [4])
    request["parameters"] = {"views": 3}
    refused = httpx.post(four_view_server.url + f"/v2/models/{name}/infer", json=request, timeout=30)
    assert refused.status_code == 400 and "views" in refused.text


def test_the_service_answers_what_the_library_scores_in_the_same_views() -> None:
    """The bundled model on a synthetic harbour tile (no GSD: scored as posted, in the model's views for that):
    the service's answer is `detect_in_views`'s."""
    import io

    import numpy as np
    from PIL import Image

    from shipdet.datasets.synth import SynthConfig, make_scene
    from shipdet.inference.engine import Engine
    from shipdet.inference.views import detect_in_views
    from shipdet.serve.settings import DEFAULT_MODEL

    pixels, _ = make_scene(3, SynthConfig(width=512, height=512, gsd_m=1.0))
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    engine = Engine(DEFAULT_MODEL, providers=["cpu"])
    views = engine.info.views_for(1.0)
    assert views > 1  # the bundled model fuses views: the path under test
    expected = detect_in_views(engine, [pixels], views, conf=0.02, iou=0.45)[0]
    assert len(expected) > 0  # something to compare
    with live_server(DEFAULT_MODEL) as server:
        r = httpx.post(server.url + "/v1/detect", content=buf.getvalue(), headers={"content-type": "image/png"},
                       params={"conf": 0.02}, timeout=60)
    answer = r.json()
    assert answer["thresholds"]["views"] == views
    got = sorted((d["score"], d["xyxy"]) for d in answer["detections"])
    want = sorted(zip(expected.score.tolist(), expected.xyxy.tolist(), strict=True))
    assert len(got) == len(want)
    np.testing.assert_allclose([g[0] for g in got], [w[0] for w in want], atol=1e-5)
    np.testing.assert_allclose([g[1] for g in got], [w[1] for w in want], atol=0.02)


def test_a_tile_needing_more_model_inputs_than_allowed_is_refused_before_any_is_made(tmp_path: Path) -> None:
    from shipdet.scale import METADATA_KEY, ScaleRange

    model = detect_model(tmp_path / "scaled.onnx", {METADATA_KEY: ScaleRange(1.0, 2.0).to_metadata()})
    with live_server(model, max_tile_inferences=40) as server:
        tile = {"content": png(64, 64, 128), "headers": {"content-type": "image/png"}, "timeout": 30}
        four = httpx.post(server.url + "/v1/detect", params={"gsd": 4.0, "views": 4}, **tile)  # 9 windows x 4
        assert four.status_code == 200 and four.json()["scale"]["windows"] == 9
        eight = httpx.post(server.url + "/v1/detect", params={"gsd": 4.0, "views": 8}, **tile)  # 9 x 8 = 72
        assert eight.status_code == 413 and eight.json()["error"]["code"] == "image_too_large"
        assert "72 model inputs, over the limit of 40" in eight.json()["error"]["message"]


def test_a_tile_the_scale_path_upsamples_is_scored_in_the_model_s_views_for_upsampled_imagery(tmp_path: Path) -> None:
    from shipdet.inference.operating_point import VIEWS_UPSAMPLED_METADATA_KEY
    from shipdet.scale import METADATA_KEY, ScaleRange

    model = detect_model(tmp_path / "split.onnx", {VIEWS_METADATA_KEY: "4", VIEWS_UPSAMPLED_METADATA_KEY: "1",
                                                  METADATA_KEY: ScaleRange(1.0, 2.0).to_metadata()})
    coarse = {"content": png(32, 32, 0), "headers": {"content-type": "image/png"}, "timeout": 30}
    with live_server(model, max_views=4) as server:
        posted = detect(server, conf=0.2).json()  # no GSD: scored as posted, in the model's 4 views
        assert posted["thresholds"]["views"] == 4 and len(posted["detections"]) == 4
        upsampled = httpx.post(server.url + "/v1/detect", params={"gsd": 4.0, "conf": 0.2}, **coarse).json()
        assert upsampled["scale"]["factor"] == 2.0 and upsampled["thresholds"]["views"] == 1
        asked = httpx.post(server.url + "/v1/detect", params={"gsd": 4.0, "conf": 0.2, "views": 2}, **coarse).json()
        assert asked["thresholds"]["views"] == 2  # views a request asks for are every tile's
        name = httpx.get(server.url + "/v1/models", timeout=10).json()["models"][0]
        v2 = httpx.get(server.url + "/v2/models/" + name["name"], timeout=10).json()["parameters"]
        assert (name["default_views"], name["default_views_upsampled"]) == (4, 1)
        assert (v2["default_views"], v2["default_views_upsampled"]) == (4, 1)
    with live_server(model, max_views=4, views=2) as server:  # the operator's views are every tile's
        upsampled = httpx.post(server.url + "/v1/detect", params={"gsd": 4.0, "conf": 0.2}, **coarse).json()
        assert upsampled["thresholds"]["views"] == 2


def test_a_model_scored_in_more_views_than_the_service_allows_on_any_imagery_is_refused_at_load(
        tmp_path: Path) -> None:
    from shipdet.inference.operating_point import VIEWS_UPSAMPLED_METADATA_KEY
    from shipdet.serve.state import ServiceState

    model = detect_model(tmp_path / "many.onnx", {VIEWS_METADATA_KEY: "1", VIEWS_UPSAMPLED_METADATA_KEY: "8"})
    with pytest.raises(ConfigError, match="scored in 8 views by default, over the limit of 4"):
        ServiceState(ServeSettings(model=model, max_views=4)).load()
    with pytest.raises(ModelLoadError, match=VIEWS_UPSAMPLED_METADATA_KEY):
        load_model_info(detect_model(tmp_path / "bad.onnx", {VIEWS_UPSAMPLED_METADATA_KEY: "3"}))
