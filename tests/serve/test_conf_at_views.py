"""A request (or operator) asking for other views than the model's without a threshold gets the threshold measured
for those views where the model records one: a fused score is a mean over the views, so the threshold chosen for
four views lets more clutter through in one."""

import re
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from shipdet.errors import ConfigError, ModelLoadError
from shipdet.inference.model import load_model_info
from shipdet.inference.operating_point import (
    CONF_AT_VIEWS_METADATA_KEY,
    CONF_METADATA_KEY,
    CONF_UPSAMPLED_AT_VIEWS_METADATA_KEY,
    CONF_UPSAMPLED_METADATA_KEY,
    VIEWS_METADATA_KEY,
    VIEWS_UPSAMPLED_METADATA_KEY,
    conf_at_views_metadata,
    parse_conf_at_views,
)
from shipdet.scale import METADATA_KEY as SCALE_METADATA_KEY
from shipdet.scale import ScaleRange
from tests.fake_model import detect_model
from tests.serve.conftest import live_server
from tests.serve.images import png

# The fake model scores its boxes 0.9, 0.6 and 0.05 wherever it looks; in 4 views each lands on its own place of
# the tile, scoring 0.9 / 4 = 0.225 fused. In 4 views at 0.2: four ships; in 1 view at 0.7: one, at 0.2: two.
TABLED = {VIEWS_METADATA_KEY: "4", CONF_METADATA_KEY: "0.2", CONF_AT_VIEWS_METADATA_KEY: '{"1": 0.7}'}


def detect(url: str, side: int = 64, **params: object) -> dict:
    r = httpx.post(url + "/v1/detect", content=png(side, side, 0), headers={"content-type": "image/png"},
                   params=params, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_views_asked_without_a_threshold_get_the_one_measured_for_them(tmp_path: Path) -> None:
    model = detect_model(tmp_path / "tabled.onnx", TABLED)
    with live_server(model, max_views=4) as server:
        own = detect(server.url)
        assert (own["thresholds"]["views"], own["thresholds"]["conf"], len(own["detections"])) == (4, 0.2, 4)
        one = detect(server.url, views=1)
        assert (one["thresholds"]["conf"], [d["score"] for d in one["detections"]]) == (0.7, [pytest.approx(0.9)])
        asked = detect(server.url, views=1, conf=0.2)  # a threshold the request sets is its own
        assert asked["thresholds"]["conf"] == 0.2 and len(asked["detections"]) == 2
        assert detect(server.url, views=2)["thresholds"]["conf"] == 0.2  # none measured for 2: the default
        models = httpx.get(server.url + "/v1/models", timeout=10).json()["models"][0]
        v2 = httpx.get(server.url + "/v2/models/" + models["name"], timeout=10).json()["parameters"]
        expected = {"1": 0.7, "2": 0.2, "4": 0.2, "8": 0.2}
        assert models["default_conf_at_views"] == v2["default_conf_at_views"] == expected
    with live_server(model, max_views=4, views=1) as server:  # the operator's views get their threshold too
        assert detect(server.url)["thresholds"]["conf"] == 0.7
    with live_server(model, max_views=4, views=1, conf=0.5) as server:  # and the operator's threshold wins
        assert detect(server.url)["thresholds"]["conf"] == 0.5


def test_upsampled_imagery_has_its_own_table(tmp_path: Path) -> None:
    model = detect_model(tmp_path / "split.onnx", {
        **TABLED, VIEWS_UPSAMPLED_METADATA_KEY: "1", CONF_UPSAMPLED_METADATA_KEY: "0.5",
        CONF_UPSAMPLED_AT_VIEWS_METADATA_KEY: '{"4": 0.15}', SCALE_METADATA_KEY: ScaleRange(1.0, 2.0).to_metadata()})
    info = load_model_info(model)
    inf = float("inf")
    assert [info.conf_for(1.0, v) for v in (None, 1, 2, 4)] == [0.2, 0.7, 0.2, 0.2]
    assert [info.conf_for(inf, v) for v in (None, 1, 2, 4)] == [0.5, 0.5, 0.5, 0.15]
    with live_server(model, max_views=4) as server:
        coarse = detect(server.url, side=32, gsd=4.0)  # upsampled x2: its own views and threshold
        assert (coarse["scale"]["factor"], coarse["thresholds"]["views"], coarse["thresholds"]["conf"]) == (2.0, 1, 0.5)
        assert detect(server.url, side=32, gsd=4.0, views=4)["thresholds"]["conf"] == 0.15


def test_a_model_without_a_table_serves_every_view_count_at_its_threshold(tmp_path: Path) -> None:
    info = load_model_info(detect_model(tmp_path / "plain.onnx", {VIEWS_METADATA_KEY: "4", CONF_METADATA_KEY: "0.3"}))
    assert {info.conf_for(f, v) for f in (1.0, 4.0) for v in (1, 2, 4, 8)} == {0.3}


@pytest.mark.parametrize("raw", ['{"3": 0.5}', '{"1": 1.5}', '[0.3]', "junk"])
def test_an_unusable_table_stops_the_load_naming_its_key(tmp_path: Path, raw: str) -> None:
    with pytest.raises(ModelLoadError, match=CONF_AT_VIEWS_METADATA_KEY):
        load_model_info(detect_model(tmp_path / "bad.onnx", {CONF_AT_VIEWS_METADATA_KEY: raw}))


def test_rescoring_and_evaluation_take_the_threshold_of_the_views_they_score_in(tmp_path: Path) -> None:
    from shipdet.rescore.params import RescoreParams
    from shipdet.rescore.scoring import scoring_conf

    engine = SimpleNamespace(info=load_model_info(detect_model(tmp_path / "tabled.onnx", TABLED)))
    assert scoring_conf(engine, RescoreParams()) == 0.2  # type: ignore[arg-type]
    assert scoring_conf(engine, RescoreParams(views=1)) == 0.7  # type: ignore[arg-type]
    assert scoring_conf(engine, RescoreParams(views=1, conf=0.4)) == 0.4  # type: ignore[arg-type]


def test_the_command_line_table_is_read_strictly() -> None:
    assert parse_conf_at_views("1=0.30, 2=0.28") == {1: 0.3, 2: 0.28}
    assert parse_conf_at_views(None) == {}
    for text, says in (("3=0.3", "'3' is not a view count"), ("1=2", "is not in (0, 1)"),
                       ("one", "is not VIEWS=CONF")):
        with pytest.raises(ConfigError, match=re.escape(says)):
            parse_conf_at_views(text)
    assert conf_at_views_metadata({1: 0.3, 4: 0.23}, 4, 0.23) == {CONF_AT_VIEWS_METADATA_KEY: '{"1": 0.3}'}
    assert conf_at_views_metadata({}, 4, 0.23) == {}
    with pytest.raises(ConfigError, match=r"the default views, whose threshold is 0\.23"):
        conf_at_views_metadata({4: 0.3}, 4, 0.23)
