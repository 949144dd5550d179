"""The service serves a model at the operating threshold (and NMS IoU) recorded in it, unless the operator or the
request chooses another, and every answer says which threshold produced it."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shipdet.errors import ModelLoadError
from shipdet.inference.model import load_model_info
from shipdet.inference.operating_point import CONF_METADATA_KEY, CONF_UPSAMPLED_METADATA_KEY, NMS_IOU_METADATA_KEY
from shipdet.scale import METADATA_KEY as SCALE_METADATA_KEY
from shipdet.scale import ScaleRange
from tests.fake_model import detect_model
from tests.serve.conftest import LiveServer, live_server
from tests.serve.images import png


@pytest.fixture(scope="module")
def strict_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The fake model's boxes score 0.9, 0.6 and 0.05 (and an NMS duplicate at 0.8): 0.7 keeps one.
    return detect_model(tmp_path_factory.mktemp("model") / "strict.onnx", {CONF_METADATA_KEY: "0.7"})


@pytest.fixture(scope="module")
def strict_server(strict_model: Path) -> Iterator[LiveServer]:
    with live_server(strict_model) as server:
        yield server


def detect(server: LiveServer, side: int = 64, **params: float) -> dict:
    r = httpx.post(server.url + "/v1/detect", content=png(side, side, 0), headers={"content-type": "image/png"},
                   params=params, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_the_model_threshold_is_the_default(strict_server: LiveServer) -> None:
    own = detect(strict_server)
    assert own["thresholds"] == {"conf": 0.7, "iou": 0.45, "max_det": 300, "max_det_reached": False, "views": 1}
    assert [d["score"] for d in own["detections"]] == [pytest.approx(0.9)]
    asked = detect(strict_server, conf=0.25)
    assert asked["thresholds"]["conf"] == 0.25 and len(asked["detections"]) == 2
    assert model_defaults(strict_server, "default_conf") == (0.7, 0.7)


def model_defaults(server: LiveServer, key: str) -> tuple[float, float]:
    """`key` as `/v1/models` and the `/v2` model metadata report it."""
    models = httpx.get(server.url + "/v1/models", timeout=10).json()["models"][0]
    v2 = httpx.get(server.url + "/v2/models/" + models["name"], timeout=10).json()
    return models[key], v2["parameters"][key]


def test_the_operator_setting_outranks_the_model(strict_model: Path) -> None:
    with live_server(strict_model, conf=0.5) as server:
        answer = detect(server)
        assert answer["thresholds"]["conf"] == 0.5 and len(answer["detections"]) == 2


def test_a_model_without_a_recorded_threshold_is_served_at_0_25(fake_model: Path) -> None:
    assert load_model_info(fake_model).default_conf == 0.25


@pytest.mark.parametrize("raw", ["1.5", "0", "high"])
def test_an_unusable_recorded_threshold_stops_the_load(tmp_path: Path, raw: str) -> None:
    model = detect_model(tmp_path / "bad.onnx", {CONF_METADATA_KEY: raw})
    with pytest.raises(ModelLoadError, match=CONF_METADATA_KEY):
        load_model_info(model)


def test_the_model_nms_iou_is_the_default_and_the_operator_and_request_outrank_it(tmp_path: Path) -> None:
    # The fake model's strongest box has a duplicate at IoU 0.88: NMS at 0.95 keeps both, at 0.45 one.
    loose = detect_model(tmp_path / "loose.onnx", {CONF_METADATA_KEY: "0.7", NMS_IOU_METADATA_KEY: "0.95"})
    with live_server(loose) as server:
        own = detect(server)
        assert own["thresholds"]["iou"] == 0.95
        assert [d["score"] for d in own["detections"]] == [pytest.approx(0.9), pytest.approx(0.8)]
        asked = detect(server, iou=0.45)
        assert asked["thresholds"]["iou"] == 0.45 and len(asked["detections"]) == 1
        assert model_defaults(server, "default_iou") == (0.95, 0.95)
    with live_server(loose, iou=0.45) as server:
        answer = detect(server)
        assert answer["thresholds"]["iou"] == 0.45 and len(answer["detections"]) == 1


def test_a_model_without_a_recorded_nms_iou_is_served_at_0_45(fake_model: Path) -> None:
    assert load_model_info(fake_model).default_iou == 0.45


@pytest.mark.parametrize("raw", ["1", "0", "-0.2", "tight"])
def test_an_unusable_recorded_nms_iou_stops_the_load(tmp_path: Path, raw: str) -> None:
    model = detect_model(tmp_path / "bad.onnx", {NMS_IOU_METADATA_KEY: raw})
    with pytest.raises(ModelLoadError, match=NMS_IOU_METADATA_KEY):
        load_model_info(model)


def test_evaluation_scores_at_the_model_nms_iou(tmp_path: Path) -> None:
    """`shipdet evaluate` measures what is served: the model's NMS IoU, unless --nms-iou asks for another."""
    import numpy as np

    from shipdet.train.evaluate import onnx_predictor

    loose = detect_model(tmp_path / "loose.onnx", {NMS_IOU_METADATA_KEY: "0.95"})
    image = np.zeros((64, 64, 3), np.uint8)
    assert len(onnx_predictor(loose, providers=["cpu"], conf=0.7)([image])[0]) == 2
    assert len(onnx_predictor(loose, providers=["cpu"], conf=0.7, nms_iou=0.45)([image])[0]) == 1


def test_a_tile_the_scale_path_upsamples_is_served_at_the_model_threshold_for_upsampled_imagery(
        tmp_path: Path) -> None:
    model = detect_model(tmp_path / "two.onnx", {CONF_METADATA_KEY: "0.7", CONF_UPSAMPLED_METADATA_KEY: "0.25",
                                                SCALE_METADATA_KEY: ScaleRange(1.0, 2.0).to_metadata()})
    with live_server(model) as server:
        posted = detect(server)  # no GSD: scored as posted
        assert posted["thresholds"]["conf"] == 0.7 and len(posted["detections"]) == 1
        coarse = detect(server, side=32, gsd=4.0)  # upsampled x2 into the range
        assert coarse["scale"]["factor"] == 2.0
        assert coarse["thresholds"]["conf"] == 0.25 and len(coarse["detections"]) == 2
        asked = detect(server, side=32, gsd=4.0, conf=0.7)  # an explicit threshold is every tile's
        assert asked["thresholds"]["conf"] == 0.7 and len(asked["detections"]) == 1
        assert model_defaults(server, "default_conf_upsampled") == (0.25, 0.25)
        assert model_defaults(server, "default_conf") == (0.7, 0.7)
    with live_server(model, conf=0.5) as server:  # the operator's threshold is every tile's too
        assert detect(server, side=32, gsd=4.0)["thresholds"]["conf"] == 0.5
        assert model_defaults(server, "default_conf_upsampled") == (0.5, 0.5)


def test_a_model_without_a_threshold_for_upsampled_imagery_serves_it_at_its_one_threshold(
        strict_server: LiveServer) -> None:
    assert model_defaults(strict_server, "default_conf_upsampled") == (0.7, 0.7)


@pytest.mark.parametrize("raw", ["1.5", "none"])
def test_an_unusable_threshold_for_upsampled_imagery_stops_the_load(tmp_path: Path, raw: str) -> None:
    model = detect_model(tmp_path / "bad.onnx", {CONF_UPSAMPLED_METADATA_KEY: raw})
    with pytest.raises(ModelLoadError, match=CONF_UPSAMPLED_METADATA_KEY):
        load_model_info(model)
