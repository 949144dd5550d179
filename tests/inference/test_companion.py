"""A model with a graph for upsampled imagery: the engine scores what the scale path upsampled with that graph, the
batcher runs each graph on its own part of a mixed batch, and loading refuses a companion that does not fit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from shipdet.errors import ModelLoadError
from shipdet.inference.companion import UPSAMPLED_GRAPH_METADATA_KEY, CompanionGraph, companion_path
from shipdet.inference.engine import Engine
from shipdet.inference.model import file_sha256
from shipdet.scale import METADATA_KEY, ScaleRange, detect_resampled
from shipdet.serve.batcher import DetectParams, DynamicBatcher
from tests.fake_model import detect_model, write_fake_yolo

RANGE = {METADATA_KEY: ScaleRange(1.0, 2.0).to_metadata()}
COMPANION_BOX = (38.0, 38.0, 50.0, 50.0)  # where the upsampled graph sees its one ship, in input pixels


def write_companion(path: Path, imgsz: int = 64) -> Path:
    """A graph that finds one ship at COMPANION_BOX whatever it is shown: the main graph never finds it there."""
    base = np.array([[44.0], [44.0], [12.0], [12.0], [0.9]], dtype=np.float32)
    return write_fake_yolo(path, base, np.zeros_like(base), imgsz=imgsz)


def write_pair(folder: Path, sha: str | None = None) -> Path:
    """`pair.onnx` (the main graph: `detect_model`'s boxes) naming `pair.upsampled.onnx` with its sha256."""
    companion = write_companion(companion_path(folder / "pair.onnx"))
    ref = CompanionGraph(companion.name, sha or file_sha256(companion))
    return detect_model(folder / "pair.onnx", {**RANGE, **ref.to_metadata()})


def test_upsampled_imagery_goes_to_the_companion_graph_and_the_rest_to_the_main_one(tmp_path: Path) -> None:
    engine = Engine(write_pair(tmp_path), providers=["cpu"], streams=1)
    tile = np.full((64, 64, 3), 128, np.uint8)
    assert engine.for_factor(1.0) is engine and engine.for_factor(0.5) is engine  # as posted, or downsampled
    assert engine.upsampled is not None and engine.for_factor(4.0) is engine.upsampled
    native = engine.detect([tile], conf=0.5)[0]
    upsampled = engine.for_factor(4.0).detect([tile], conf=0.5)[0]
    assert np.allclose(upsampled.xyxy, [COMPANION_BOX])
    assert not any(np.allclose(box, COMPANION_BOX) for box in native.xyxy) and len(native) > 0


def test_the_scale_path_scores_resampled_windows_with_the_companion_and_maps_its_boxes_back(tmp_path: Path) -> None:
    engine = Engine(write_pair(tmp_path), providers=["cpu"], streams=1)
    window = np.full((32, 32, 3), 128, np.uint8)
    doubled = detect_resampled(engine, [window], 2.0, conf=0.5, iou=0.45)[0]
    assert np.allclose(doubled.xyxy, [np.array(COMPANION_BOX) / 2])  # found at 64 px, in the window's 32 px
    as_posted = detect_resampled(engine, [np.full((64, 64, 3), 128, np.uint8)], 1.0, conf=0.5, iou=0.45)[0]
    assert not any(np.allclose(box, COMPANION_BOX) for box in as_posted.xyxy)


def test_a_mixed_batch_runs_each_graph_on_its_own_tiles(tmp_path: Path) -> None:
    engine = Engine(write_pair(tmp_path), providers=["cpu"], streams=1)
    batch, boxes = engine.preprocess([np.full((64, 64, 3), 128, np.uint8)] * 4)
    factors = [1.0, 4.0, 1.0, 2.0]
    sizes: list[int] = []

    async def main() -> list[np.ndarray]:
        batcher = DynamicBatcher(engine, max_batch=8, max_delay_ms=1000, queue_size=16,
                                 on_batch=lambda n, _s: sizes.append(n))
        batcher.start()
        futures = [f for k in range(4) for f in batcher.enqueue([(batch[k].copy(), boxes[k])],
                                                                  DetectParams(conf=0.5, iou=0.45, factor=factors[k]))]
        found = await asyncio.gather(*futures)
        await batcher.stop()
        return [d.xyxy for d, _ in found]

    found = asyncio.run(main())
    assert sizes == [4]  # one batch, two graphs
    for factor, xyxy in zip(factors, found, strict=True):
        assert any(np.allclose(box, COMPANION_BOX) for box in xyxy) == (factor > 1)


def test_a_model_without_a_companion_scores_all_imagery_with_its_one_graph(tmp_path: Path) -> None:
    engine = Engine(detect_model(tmp_path / "one.onnx", RANGE), providers=["cpu"])
    assert engine.upsampled is None and engine.for_factor(4.0) is engine


def test_loading_refuses_a_companion_whose_sha256_differs_from_the_one_the_model_names(tmp_path: Path) -> None:
    model = write_pair(tmp_path, sha="0" * 64)
    with pytest.raises(ModelLoadError, match=r"pair.upsampled.onnx has sha256 .* names 000000000000"):
        Engine(model, providers=["cpu"])
    assert Engine(model, providers=["cpu"], verify=False).upsampled is not None  # the operator's opt-out


def test_loading_refuses_a_missing_or_unfit_companion(tmp_path: Path) -> None:
    model = write_pair(tmp_path)
    companion_path(model).unlink()
    with pytest.raises(ModelLoadError, match=r"names pair.upsampled.onnx .* not beside it"):
        Engine(model, providers=["cpu"])
    other = write_companion(companion_path(model), imgsz=32)  # takes 32 px, the model 64 px
    detect_model(model, {**RANGE, **CompanionGraph(other.name, file_sha256(other)).to_metadata()})
    with pytest.raises(ModelLoadError, match=r"differs from pair.onnx in its input size"):
        Engine(model, providers=["cpu"])


@pytest.mark.parametrize("value", ['{"file": "../elsewhere.onnx", "sha256": "' + "a" * 64 + '"}',
                                   '{"file": "x.onnx", "sha256": "abc"}', '["x.onnx"]', "not json"])
def test_a_companion_entry_that_is_not_a_file_beside_the_model_with_its_sha256_stops_the_load(
        tmp_path: Path, value: str) -> None:
    model = detect_model(tmp_path / "bad.onnx", {UPSAMPLED_GRAPH_METADATA_KEY: value})
    with pytest.raises(ModelLoadError, match=r"upsampled graph|shipdet_upsampled_graph"):
        Engine(model, providers=["cpu"])
