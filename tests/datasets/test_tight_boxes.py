"""Axis-aligned labels are the object's own tight box, checked against boxes computed by hand for each converter
that sees more than a box (masks, polygons, quadrilaterals). For a diagonal, pointed hull the box around the
minimum-area rectangle is far looser; the oriented label stays that rectangle."""

import json
from pathlib import Path

import numpy as np
import pytest
import shapely
from PIL import Image

from shipdet.datasets.airbus import convert_airbus, rle_encode
from shipdet.datasets.classmap import ClassMap
from shipdet.datasets.coco import convert_coco
from shipdet.datasets.labelfiles import convert_dota, convert_yolo
from shipdet.datasets.writer import read_manifest
from shipdet.formats import from_yolo_lines

# A diagonal hull with pointed ends (pixels x, y): bow at (10, 10), stern at (42, 42), beam about 4 px.
HULL = [(10, 10), (15, 12), (41, 37), (42, 42), (37, 41), (12, 15)]
HULL_BOX = [10, 10, 42, 42]


def _image(path: Path, w: int = 64, h: int = 64) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(path)
    return path


def _boxes(root: Path, name: str, w: int = 64, h: int = 64, oriented: bool = False) -> np.ndarray:
    sub = "obb/labels" if oriented else "labels"
    return from_yolo_lines((root / sub / f"{name}.txt").read_text().splitlines(), w, h).xyxy


def _hull_mask(h: int = 64, w: int = 64) -> np.ndarray:
    from matplotlib.path import Path as Polygon

    ys, xs = np.mgrid[0:h, 0:w]
    inside = Polygon(HULL).contains_points(np.column_stack([xs.ravel() + 0.5, ys.ravel() + 0.5]))
    return inside.reshape(h, w)


def test_airbus_box_is_the_masks_own(tmp_path: Path) -> None:
    mask = _hull_mask()
    rows, cols = np.nonzero(mask)
    by_hand = [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]  # whole pixels
    (tmp_path / "train_v2").mkdir()
    _image(tmp_path / "train_v2" / "a.jpg")
    csv = tmp_path / "seg.csv"
    csv.write_text(f"ImageId,EncodedPixels\na.jpg,{rle_encode(mask)}\n")
    convert_airbus(csv, tmp_path / "train_v2", tmp_path / "out", empty_fraction=1.0)
    np.testing.assert_allclose(_boxes(tmp_path / "out", "a")[0], by_hand, atol=1e-3 * 64)
    envelope = _boxes(tmp_path / "out", "a", oriented=True)[0]  # the old label: the rectangle's envelope
    assert (envelope[2] - envelope[0]) * (envelope[3] - envelope[1]) > 1.05 * (by_hand[2] - by_hand[0]) ** 2


def test_coco_polygon_and_mask_boxes_are_their_own(tmp_path: Path) -> None:
    mask = _hull_mask()
    flat = mask.T.reshape(-1).astype(int)  # COCO's uncompressed RLE: column-major runs, starting with zeros
    edges = np.flatnonzero(np.diff(np.r_[0, flat, 0]))
    counts = np.diff(np.r_[0, edges, flat.size]).tolist()
    rows, cols = np.nonzero(mask)
    coco = {"images": [{"id": 1, "file_name": "p.jpg", "width": 64, "height": 64},
                       {"id": 2, "file_name": "m.jpg", "width": 64, "height": 64}],
            "categories": [{"id": 1, "name": "ship"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 64, 64],
                             "segmentation": [[v for point in HULL for v in point]]},
                            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [0, 0, 64, 64],
                             "segmentation": {"counts": [c for c in counts if c >= 0], "size": [64, 64]}}]}
    (tmp_path / "c.json").write_text(json.dumps(coco))
    _image(tmp_path / "p.jpg")
    _image(tmp_path / "m.jpg")
    convert_coco(tmp_path / "c.json", [tmp_path], tmp_path / "out", ClassMap.parse(None))
    np.testing.assert_allclose(_boxes(tmp_path / "out", "p")[0], HULL_BOX, atol=1e-3 * 64)
    mask_box = [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
    np.testing.assert_allclose(_boxes(tmp_path / "out", "m")[0], mask_box, atol=1e-3 * 64)


def test_coco_tiles_keep_the_tight_box_clipped(tmp_path: Path) -> None:
    coco = {"images": [{"id": 1, "file_name": "big.jpg", "width": 96, "height": 64}],
            "categories": [{"id": 1, "name": "ship"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1],
                             "segmentation": [[v + (40 if i % 2 == 0 else 0) for i, v in
                                               enumerate(c for p in HULL for c in p)]]}]}
    (tmp_path / "c.json").write_text(json.dumps(coco))
    _image(tmp_path / "big.jpg", 96, 64)
    convert_coco(tmp_path / "c.json", [tmp_path], tmp_path / "out", ClassMap.parse(None), tile=64, overlap=32,
                 min_visible=0.0)
    np.testing.assert_allclose(_boxes(tmp_path / "out", "big_32_0")[0], [18, 10, 50, 42], atol=1e-3 * 64)
    # Cut by the tile's edge: the box of what is left of the hull (to within a pixel, as the oriented box of that
    # part bounds it), not the whole hull's box clipped ([50, 10, 64, 42]).
    left = shapely.Polygon([(x + 40, y) for x, y in HULL]).intersection(shapely.box(0, 0, 64, 64)).bounds
    np.testing.assert_allclose(_boxes(tmp_path / "out", "big_0_0")[0], left, atol=1.0)


def test_dota_and_yolo_obb_quadrilaterals_give_their_own_box(tmp_path: Path) -> None:
    # A labelled quadrilateral that is not quite a rectangle: its box is the corners' extent.
    quad = [(10, 20), (50, 10), (54, 26), (14, 34)]
    _image(tmp_path / "d" / "images" / "q.png")
    (tmp_path / "d" / "labelTxt").mkdir()
    (tmp_path / "d" / "labelTxt" / "q.txt").write_text(" ".join(f"{x} {y}" for x, y in quad) + " ship 0\n")
    convert_dota(tmp_path / "d" / "images", tmp_path / "d" / "labelTxt", tmp_path / "do",
                 ClassMap.parse("ship=ship,*=drop", default=None))
    np.testing.assert_allclose(_boxes(tmp_path / "do", "q")[0], [10, 10, 54, 34], atol=1e-3 * 64)
    _image(tmp_path / "y" / "images" / "q.jpg")
    (tmp_path / "y" / "labels").mkdir()
    (tmp_path / "y" / "labels" / "q.txt").write_text("0 " + " ".join(f"{x / 64} {y / 64}" for x, y in quad) + "\n")
    convert_yolo(tmp_path / "y" / "images", tmp_path / "y" / "labels", tmp_path / "yo", ClassMap.parse(None))
    np.testing.assert_allclose(_boxes(tmp_path / "yo", "q")[0], [10, 10, 54, 34], atol=1e-3 * 64)


def test_coco_scale_resamples_images_and_labels(tmp_path: Path) -> None:
    coco = {"images": [{"id": 1, "file_name": "s.jpg", "width": 64, "height": 48}],
            "categories": [{"id": 1, "name": "ship"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 8, 20, 6]}]}
    (tmp_path / "c.json").write_text(json.dumps(coco))
    _image(tmp_path / "s.jpg", 64, 48)
    convert_coco(tmp_path / "c.json", [tmp_path], tmp_path / "out", ClassMap.parse(None), gsd_m=10.0, scale=3.0)
    with Image.open(tmp_path / "out" / "images" / "s.jpg") as img:
        assert img.size == (192, 144)
    np.testing.assert_allclose(_boxes(tmp_path / "out", "s", 192, 144)[0], [30, 24, 90, 42], atol=1e-3 * 192)
    row = read_manifest(tmp_path / "out" / "manifest.csv")[0]
    assert float(row["gsd_m"]) == pytest.approx(10 / 3, rel=1e-5) and row["scale"] == "3"


def test_yolo_group_pattern_keeps_a_place_on_one_side(tmp_path: Path) -> None:
    for name in ("PE_1", "PE_2", "PE_3", "SA_1", "SA_2", "odd"):
        _image(tmp_path / "images" / f"{name}.jpg")
    (tmp_path / "labels").mkdir()
    convert_yolo(tmp_path / "images", tmp_path / "labels", tmp_path / "out", ClassMap.parse(None),
                 group_pattern="^[A-Z]+(?=_)")
    groups = {r["name"]: r["group"] for r in read_manifest(tmp_path / "out" / "manifest.csv")}
    assert groups == {"PE_1": "PE", "PE_2": "PE", "PE_3": "PE", "SA_1": "SA", "SA_2": "SA", "odd": "odd"}
    split = [line.split(",") for line in (tmp_path / "out" / "split.csv").read_text().splitlines()[1:]]
    sides: dict[str, set[str]] = {}
    for _, group, _, side in split:
        sides.setdefault(group, set()).add(side)
    assert all(len(s) == 1 for s in sides.values())
