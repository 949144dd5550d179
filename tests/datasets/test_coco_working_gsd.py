"""`convert_coco(working_gsd_m=...)`: each image is resampled from its own GSD (its georeference, read as `shipdet
rescore` reads it) to one working GSD, so one ship at two GSDs becomes one training box."""

import json
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from PIL import Image

from shipdet.datasets.classmap import ClassMap
from shipdet.datasets.coco import convert_coco
from shipdet.datasets.writer import read_manifest
from shipdet.errors import ConfigError
from shipdet.formats import from_yolo_lines
from tests.conftest import write_geotiff

UTM31N = "EPSG:32631"  # on the central meridian (easting 500 km) a UTM metre is 1 / 0.9996 m on the ground


def _coco(path: Path, images: list[tuple[str, int, int, list[float]]]) -> Path:
    coco = {"images": [{"id": i, "file_name": name, "width": w, "height": h}
                       for i, (name, w, h, _) in enumerate(images, 1)],
            "categories": [{"id": 1, "name": "ship"}],
            "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": box}
                            for i, (*_, box) in enumerate(images, 1)]}
    path.write_text(json.dumps(coco))
    return path


def _written(out: Path, name: str) -> tuple[tuple[int, int], np.ndarray, dict[str, str]]:
    with Image.open(out / "images" / f"{name}.jpg") as img:
        size = img.size
    lines = (out / "labels" / f"{name}.txt").read_text().splitlines()
    box = from_yolo_lines(lines, size[0], size[1], {0: "ship"}).xyxy
    row = next(r for r in read_manifest(out / "manifest.csv") if r["name"] == name)
    return size, box, row


def test_one_ship_at_two_gsds_becomes_one_box_at_the_working_gsd(tmp_path: Path) -> None:
    # an 80 m x 20 m ship: 8 x 2 px at 10 m, 16 x 4 px at 5 m
    write_geotiff(tmp_path / "coarse.tif", np.full((30, 40, 3), 90, np.uint8), Affine(10, 0, 500000, 0, -10, 5e6),
                  UTM31N)
    write_geotiff(tmp_path / "fine.tif", np.full((60, 80, 3), 90, np.uint8), Affine(5, 0, 500000, 0, -5, 5e6), UTM31N)
    Image.fromarray(np.full((30, 40, 3), 90, np.uint8)).save(tmp_path / "plain.jpg")  # no georeference: --gsd
    ann = _coco(tmp_path / "c.json", [("coarse.tif", 40, 30, [10, 8, 8, 2]), ("fine.tif", 80, 60, [20, 16, 16, 4]),
                                      ("plain.jpg", 40, 30, [10, 8, 8, 2])])
    convert_coco(ann, [tmp_path], tmp_path / "out", ClassMap.parse(None), gsd_m=10.0, working_gsd_m=2.5)
    coarse, fine, plain = (_written(tmp_path / "out", n) for n in ("coarse", "fine", "plain"))
    assert coarse[0] == fine[0] == plain[0] == (160, 120)
    for _, box, _ in (coarse, fine, plain):
        np.testing.assert_allclose(box[0], [40, 32, 72, 40], atol=0.5)  # 80 m x 20 m at 2.5 m
    assert float(coarse[2]["scale"]) == pytest.approx(4 / 0.9996, abs=2e-3)
    assert float(fine[2]["scale"]) == pytest.approx(2 / 0.9996, abs=1e-3)
    assert plain[2]["scale"] == "4"
    assert {r["gsd_m"] for r in (coarse[2], fine[2], plain[2])} == {"2.5"}


def test_an_image_of_unknown_gsd_is_skipped_by_name(tmp_path: Path) -> None:
    Image.fromarray(np.full((30, 40, 3), 90, np.uint8)).save(tmp_path / "plain.jpg")
    ann = _coco(tmp_path / "c.json", [("plain.jpg", 40, 30, [10, 8, 8, 2])])
    report = convert_coco(ann, [tmp_path], tmp_path / "out", ClassMap.parse(None), working_gsd_m=2.5)
    assert report.images == 0
    assert len(report.skipped) == 1 and "plain.jpg: no georeference" in report.skipped[0]


def test_scale_and_working_gsd_are_exclusive(tmp_path: Path) -> None:
    ann = _coco(tmp_path / "c.json", [])
    with pytest.raises(ConfigError, match="--scale and --working-gsd"):
        convert_coco(ann, [tmp_path], tmp_path / "out", ClassMap.parse(None), scale=3.0, working_gsd_m=2.5)


def test_an_unreadable_band_file_beside_an_image_is_a_skip_not_a_traceback(tmp_path: Path) -> None:
    Image.fromarray(np.full((30, 40, 3), 90, np.uint8)).save(tmp_path / "scene_rgb8.jpg")
    (tmp_path / "2023-04-08_Sentinel-2_L2A_B02_(Raw).tiff").write_bytes(b"not a tiff")
    ann = _coco(tmp_path / "c.json", [("scene_rgb8.jpg", 40, 30, [10, 8, 8, 2])])
    report = convert_coco(ann, [tmp_path], tmp_path / "out", ClassMap.parse(None), gsd_m=10.0, working_gsd_m=2.5)
    assert report.images == 0
    assert len(report.skipped) == 1 and "its georeference could not be read" in report.skipped[0]
