"""`shipdet evaluate-scenes`: whole scenes scored as `shipdet rescore` scores them, at the model's operating
threshold unless another is asked for, against COCO truth on the scene's pixel grid."""

import json
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from shipdet.errors import DatasetFormatError
from shipdet.inference.operating_point import (
    CONF_METADATA_KEY,
    CONF_UPSAMPLED_METADATA_KEY,
    NMS_IOU_METADATA_KEY,
    VIEWS_METADATA_KEY,
    VIEWS_UPSAMPLED_METADATA_KEY,
)
from shipdet.train.scene_eval import evaluate_scenes, scenes_markdown
from tests.conftest import write_geotiff
from tests.fake_model import detect_model

pytest.importorskip("rasterio")

# The fake model on a dark 64 px image (zero would be nodata, never scored): boxes scoring 0.9 at (12, 16, 28, 24)
# and 0.6 at (44, 36, 52, 44).
TRUTH = [[12, 16, 16, 8], [44, 36, 8, 8]]  # COCO x, y, w, h


@pytest.fixture
def port(tmp_path: Path) -> tuple[Path, Path]:
    scene = tmp_path / "scenes" / "porta"
    scene.mkdir(parents=True)
    write_geotiff(scene / "porta_rgb.tif", np.full((64, 64, 3), 1, np.uint8), Affine(10, 0, 500_000, 0, -10, 4_700_000),
                  "EPSG:32633")
    coco = {"images": [{"id": 1, "file_name": "porta_rgb.tif", "width": 64, "height": 64}],
            "annotations": [{"id": i, "image_id": 1, "category_id": 1, "bbox": b} for i, b in enumerate(TRUTH)],
            "categories": [{"id": 1, "name": "ship"}]}
    annotations = tmp_path / "coco.json"
    annotations.write_text(json.dumps(coco))
    return scene, annotations


def test_scenes_are_measured_at_the_model_threshold_unless_told(port: tuple[Path, Path], tmp_path: Path) -> None:
    scene, annotations = port
    model = detect_model(tmp_path / "strict.onnx", {CONF_METADATA_KEY: "0.7"})
    own = evaluate_scenes(model, annotations, [scene], [1.0])
    asked = evaluate_scenes(model, annotations, [scene], [1.0], conf=0.25)
    assert own[0]["conf"] == 0.7 and (own[0]["tp"], own[0]["fn"], own[0]["recall"]) == (1, 1, 0.5)
    assert asked[0]["conf"] == 0.25 and (asked[0]["tp"], asked[0]["fp"], asked[0]["recall"]) == (2, 0, 1.0)
    assert own[0]["per_scene_recall"] == {"porta_rgb": 0.5} and own[0]["tiles"] == 1
    assert "2 ships, NMS IoU 0.45, match IoU 0.3" in scenes_markdown(own, model, 0.3)
    assert "| 1 | 10.00 m | 0.7 | 1 | 1 |" in scenes_markdown(own, model, 0.3)  # factor, GSD, conf, views, tiles
    assert "| 1 of 2 (0.09-0.91) |" in scenes_markdown(own, model, 0.3)  # Wilson: 0.5 -+ 0.41 for two ships


def test_upsampled_scenes_are_measured_at_the_model_threshold_for_them(port: tuple[Path, Path],
                                                                      tmp_path: Path) -> None:
    scene, annotations = port
    model = detect_model(tmp_path / "two.onnx", {CONF_METADATA_KEY: "0.7", CONF_UPSAMPLED_METADATA_KEY: "0.25"})
    rows = evaluate_scenes(model, annotations, [scene], [1.0, 2.0])
    assert [r["conf"] for r in rows] == [0.7, 0.25]  # as `shipdet rescore` scores a scene it upsamples
    assert [r["conf"] for r in evaluate_scenes(model, annotations, [scene], [1.0, 2.0], conf=0.5)] == [0.5, 0.5]


def test_upsampled_scenes_are_measured_in_the_model_views_for_them(port: tuple[Path, Path], tmp_path: Path) -> None:
    scene, annotations = port
    model = detect_model(tmp_path / "views.onnx", {VIEWS_METADATA_KEY: "2", VIEWS_UPSAMPLED_METADATA_KEY: "1"})
    rows = evaluate_scenes(model, annotations, [scene], [1.0, 2.0], conf=0.25)
    assert [r["views"] for r in rows] == [2, 1]  # as `shipdet rescore` scores a scene it upsamples
    assert "| 2 | 5.00 m | 0.25 | 1 |" in scenes_markdown(rows, model, 0.3)
    assert [r["views"] for r in evaluate_scenes(model, annotations, [scene], [1.0, 2.0], views=4)] == [4, 4]


def test_scenes_are_measured_at_the_model_nms_iou_unless_told(port: tuple[Path, Path], tmp_path: Path) -> None:
    """As `shipdet rescore` scores them: the fake model's duplicate box (IoU 0.88 with the strongest) survives NMS
    at the 0.95 the model records, and is a false alarm; at an explicit 0.45 it is suppressed."""
    scene, annotations = port
    loose = detect_model(tmp_path / "loose.onnx", {NMS_IOU_METADATA_KEY: "0.95"})
    own = evaluate_scenes(loose, annotations, [scene], [1.0], conf=0.25)
    asked = evaluate_scenes(loose, annotations, [scene], [1.0], conf=0.25, nms_iou=0.45)
    assert own[0]["nms_iou"] == 0.95 and (own[0]["tp"], own[0]["fp"]) == (2, 1)
    assert asked[0]["nms_iou"] == 0.45 and (asked[0]["tp"], asked[0]["fp"]) == (2, 0)


def test_the_recall_interval_is_wilson_s() -> None:
    from shipdet.train.scene_eval import recall_interval

    low, high = recall_interval(5, 24) or (0.0, 0.0)
    assert (round(low, 3), round(high, 3)) == (0.092, 0.405)  # by hand: (p + z^2/2n -+ z sqrt(...)) / (1 + z^2/n)
    assert recall_interval(0, 0) is None


def test_a_scene_without_truth_is_named(port: tuple[Path, Path], tmp_path: Path) -> None:
    scene, annotations = port
    other = scene.parent / "portb"
    other.mkdir()
    write_geotiff(other / "portb_rgb.tif", np.full((64, 64, 3), 1, np.uint8), Affine(10, 0, 0, 0, -10, 0), "EPSG:32633")
    with pytest.raises(DatasetFormatError, match="portb"):
        evaluate_scenes(detect_model(tmp_path / "m.onnx"), annotations, [scene, other], [1.0])


def test_each_scene_can_be_measured_at_its_own_factor_as_the_scale_path_chooses_it(port: tuple[Path, Path],
                                                                                   tmp_path: Path) -> None:
    """`--factors own`: the 10 m scene of a model declaring 2.5-5 m is upsampled x2, as `shipdet rescore` would,
    and measured at the model's threshold for upsampled imagery."""
    from shipdet.scale import METADATA_KEY, ScaleRange

    scene, annotations = port
    model = detect_model(tmp_path / "ranged.onnx", {CONF_METADATA_KEY: "0.7", CONF_UPSAMPLED_METADATA_KEY: "0.25",
                                                   METADATA_KEY: ScaleRange(2.5, 5.0).to_metadata()})
    own, fixed = evaluate_scenes(model, annotations, [scene], [None, 2.0], overlap=16)
    assert own["scene_factors"] == [pytest.approx(2.0, rel=1e-3)] and own["conf"] == 0.25  # geodesic GSD: 10.004 m
    assert own["tp"] == fixed["tp"] and own["tiles"] == fixed["tiles"] == 9  # 32 native px windows, 8 px overlap
    assert "| each scene's own (x2.00-x2.00) | 5.00-5.00 m | 0.25 |" in scenes_markdown([own], model, 0.3)


def test_folders_without_scenes_are_a_clear_error(port: tuple[Path, Path], tmp_path: Path) -> None:
    from shipdet.errors import DatasetNotFoundError

    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="no scene in"):
        evaluate_scenes(detect_model(tmp_path / "m.onnx"), port[1], [tmp_path / "empty"], [None])
