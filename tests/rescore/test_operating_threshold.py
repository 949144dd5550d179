"""`shipdet rescore` scores at the model's recorded operating point (threshold, views, NMS IoU) unless told
another, and says which."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from shipdet.detections import Detections
from shipdet.rescore.params import RescoreParams
from shipdet.rescore.run import RescoreRun
from shipdet.rescore.sources import resolve_sources
from tests.rescore.conftest import ThresholdEngine, _Info


class _OperatingInfo(_Info):
    sha256 = "2" * 64
    name = "operating"
    default_conf = 0.6


class ConfRecordingEngine(ThresholdEngine):
    info = _OperatingInfo()  # type: ignore[assignment]

    def __init__(self) -> None:
        self.seen: list[float] = []
        self.nms: list[float] = []

    def detect(self, images: list[np.ndarray], conf: float = 0.25, iou: float = 0.45) -> list[Detections]:
        self.seen.append(conf)
        self.nms.append(iou)
        return super().detect(images, conf, iou)


def test_the_model_threshold_is_the_default_and_an_explicit_one_wins(scenes: Path, tmp_path: Path) -> None:
    runs = {}
    for name, params in (("own", RescoreParams()), ("asked", RescoreParams(conf=0.3))):
        engine = ConfRecordingEngine()
        runs[name] = RescoreRun(tmp_path / name, engine, params)
        counts = runs[name].run(resolve_sources([str(scenes)]))
        assert counts["done"] == 5 and counts["failed"] == 0
        expected = 0.6 if name == "own" else 0.3
        assert engine.seen and set(engine.seen) == {expected}
        assert (pd.read_csv(tmp_path / name / "scenes.csv")["conf"] == expected).all()  # the output says which
    # A resumed run never mixes scenes scored at different thresholds: the threshold is part of each scene's key.
    assert runs["own"].params_hash != runs["asked"].params_hash
    assert runs["own"].params_hash == RescoreRun(tmp_path / "again", ConfRecordingEngine(),
                                                 RescoreParams(conf=0.6)).params_hash


class _FourViewInfo(_OperatingInfo):
    default_views = 4


def test_the_model_views_are_the_default_and_recorded(scenes: Path, tmp_path: Path) -> None:
    engine = ConfRecordingEngine()
    engine.info = _FourViewInfo()  # type: ignore[assignment]
    run = RescoreRun(tmp_path / "four", engine, RescoreParams())
    assert run.run(resolve_sources([str(scenes)]))["done"] == 5
    # every view is decoded at conf / views (a ship no view scores that high cannot reach 0.6 fused)
    assert engine.seen and set(engine.seen) == {0.15}
    assert (pd.read_csv(tmp_path / "four" / "scenes.csv")["views"] == 4).all()
    assert run.params_hash != RescoreRun(tmp_path / "one", engine, RescoreParams(views=1)).params_hash


def test_a_view_count_that_is_not_offered_is_refused() -> None:
    with pytest.raises(ValidationError, match="views must be one of 1, 2, 4, 8"):
        RescoreParams(views=3)


def test_one_view_keeps_the_key_runs_had_before_views_existed(tmp_path: Path) -> None:
    import hashlib
    import json

    # the fields runs had then: no views, no threshold or views of their own for upsampled scenes
    before = RescoreParams(conf=0.3, iou=0.45).model_dump(exclude={"max_batch", "readahead", "views",
                                                                   "conf_upsampled", "views_upsampled"})
    key = hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:16]
    assert RescoreParams(conf=0.3, iou=0.45, views=1).digest() == RescoreParams(conf=0.3, iou=0.45).digest() == key
    assert RescoreParams(conf=0.3, iou=0.45, views=1, views_upsampled=1).digest() == key
    assert RescoreParams(conf=0.3, iou=0.45, views=2).digest() != key
    two = RescoreParams(conf=0.3, iou=0.45, views=2).digest()
    assert RescoreParams(conf=0.3, iou=0.45, views=2, views_upsampled=2).digest() == two  # the same views for all
    assert RescoreParams(conf=0.3, iou=0.45, views=4, views_upsampled=2).digest() not in (key, two)
    # A model that records no NMS IoU resolves to the 0.45 every run used before it was recorded: same key.
    engine = ConfRecordingEngine()
    assert RescoreRun(tmp_path, engine, RescoreParams(conf=0.3)).params_hash == key


class _LooseNmsInfo(_OperatingInfo):
    default_iou = 0.6


def test_the_model_nms_iou_is_the_default_and_recorded(scenes: Path, tmp_path: Path) -> None:
    engine = ConfRecordingEngine()
    engine.info = _LooseNmsInfo()  # type: ignore[assignment]
    run = RescoreRun(tmp_path / "loose", engine, RescoreParams())
    assert run.run(resolve_sources([str(scenes)]))["done"] == 5
    assert engine.nms and set(engine.nms) == {0.6}
    assert (pd.read_csv(tmp_path / "loose" / "scenes.csv")["nms_iou"] == 0.6).all()
    asked = RescoreRun(tmp_path / "asked", engine, RescoreParams(iou=0.45))
    assert asked.params_hash != run.params_hash
    assert run.params_hash == RescoreRun(tmp_path / "same", engine, RescoreParams(conf=0.6, iou=0.6)).params_hash
