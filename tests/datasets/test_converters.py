"""Each converter on a fixture written in the published format, and on the real sample where present."""

import json

import numpy as np
import pytest
from PIL import Image

from shipdet.datasets.classmap import ClassMap
from shipdet.datasets.coco import convert_coco
from shipdet.datasets.labelfiles import convert_dota, convert_yolo
from shipdet.datasets.voc import convert_voc
from shipdet.errors import ConfigError, DatasetFormatError
from shipdet.formats import from_yolo_lines


def _image(path, w=120, h=80):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(path)
    return path


def _labels(root, name, w, h, oriented=False):
    sub = "obb/labels" if oriented else "labels"
    return from_yolo_lines((root / sub / f"{name}.txt").read_text().splitlines(), w, h)


VOC = """<annotation><filename>{name}</filename><size><width>120</width><height>80</height></size>
<object><name>boat</name><bndbox><xmin>11</xmin><ymin>21</ymin><xmax>40</xmax><ymax>30</ymax></bndbox></object>
<object><name>buoy</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object>
</annotation>"""


def test_voc_fixture(tmp_path):
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "s1.xml").write_text(VOC.format(name="s1.png"))  # published name, re-encoded as .jpg
    (tmp_path / "ann" / "bad.xml").write_text("<annotation><object>")
    (tmp_path / "ann" / "lost.xml").write_text(VOC.format(name="lost.jpg"))
    _image(tmp_path / "img" / "s1.jpg")
    report = convert_voc(tmp_path / "ann", tmp_path / "img", tmp_path / "out",
                         ClassMap.parse("boat=ship,buoy=drop", default=None))
    assert report.images == 1 and report.boxes == 1 and len(report.skipped) == 2
    assert any("bad.xml" in s and "XML" in s for s in report.skipped)
    np.testing.assert_allclose(_labels(tmp_path / "out", "s1", 120, 80).xyxy, [[10, 20, 40, 30]], atol=1e-3)
    with pytest.raises(DatasetFormatError, match=r"bad\.xml: not valid XML"):
        convert_voc(tmp_path / "ann", tmp_path / "img", tmp_path / "o1", ClassMap.parse("boat=ship"), strict=True)
    (tmp_path / "ann" / "bad.xml").unlink()
    with pytest.raises(DatasetFormatError, match="'buoy' is not in the class map"):
        convert_voc(tmp_path / "ann", tmp_path / "img", tmp_path / "o2", ClassMap.parse("boat=ship", default=None),
                    strict=True)


def test_class_map_parsing():
    cmap = ClassMap.parse("naval=ship,dock=drop,52=oil_tanker")
    assert cmap.names == ["ship", "oil_tanker"]
    assert cmap.target_id("naval") == 0 and cmap.target_id("dock") is None and cmap.target_id("52") == 1
    assert cmap.target_id("anything") == 0  # default ship
    with pytest.raises(ConfigError, match="source=target"):
        ClassMap.parse("naval")


def test_coco_fixture_polygons_rle_and_bbox(tmp_path):
    h, w = 80, 120
    mask = np.zeros((h, w), dtype=bool)
    mask[30:36, 50:90] = True
    flat = mask.T.reshape(-1).astype(int)
    changes = np.flatnonzero(np.diff(np.r_[0, flat, 0]))
    counts = np.diff(np.r_[0, changes, h * w]).tolist()
    counts = [c for c in counts if c > 0] if flat[0] == 0 else [0, *counts]
    coco = {
        "images": [{"id": 1, "file_name": "scene_rgb.tiff", "width": w, "height": h},
                   {"id": 2, "file_name": "nowhere.tif", "width": w, "height": h}],
        "categories": [{"id": 1, "name": "ship"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [50, 30, 40, 6],
             "segmentation": str({"counts": counts, "size": [h, w]})},  # the RLE dict written as a string
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [5, 5, 10, 4],
             "segmentation": [[5, 5, 15, 5, 15, 9, 5, 9]]},
        ],
    }
    ann = tmp_path / "coco.json"
    ann.write_text(json.dumps(coco))
    _image(tmp_path / "imgs" / "scene_rgb8.jpg", w, h)  # re-encoded rendering found by stem prefix
    report = convert_coco(ann, [tmp_path / "imgs"], tmp_path / "out", ClassMap.parse(None))
    assert report.images == 1 and report.boxes == 2
    assert any("nowhere.tif" in s for s in report.skipped)
    obb = _labels(tmp_path / "out", "scene_rgb", w, h, oriented=True)
    lengths = sorted(obb.obb[:, 2].round(1).tolist())
    assert lengths == pytest.approx([10, 40], abs=0.1)


def test_coco_tiling_clips_boxes(tmp_path):
    coco = {"images": [{"id": 1, "file_name": "big.jpg", "width": 300, "height": 100}],
            "categories": [{"id": 1, "name": "ship"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [90, 40, 30, 10]}]}
    (tmp_path / "c.json").write_text(json.dumps(coco))
    _image(tmp_path / "big.jpg", 300, 100)
    report = convert_coco(tmp_path / "c.json", [tmp_path], tmp_path / "out", ClassMap.parse(None), tile=128,
                          overlap=16)
    assert report.images == 3
    for name in ("big_0_0", "big_86_0", "big_172_0"):
        labels = _labels(tmp_path / "out", name, 128, 100)
        assert np.all(labels.xyxy >= -1e-3) and np.all(labels.xyxy[:, [0, 2]] <= 128 + 1e-3)


def test_yolo_tiles_a_large_chip_at_its_own_scale(tmp_path):
    # A 200 x 100 chip cut into 128 px tiles with a 32 px overlap: windows at x 0 and 72, one row (100 < 128).
    _image(tmp_path / "images" / "big.jpg", 200, 100)
    _image(tmp_path / "images" / "small.jpg", 100, 80)
    (tmp_path / "labels").mkdir()
    boxes = [(10, 20, 40, 30), (80, 50, 110, 60), (120, 70, 150, 80)]  # x1 y1 x2 y2 in chip pixels
    (tmp_path / "labels" / "big.txt").write_text("".join(
        f"0 {(x1 + x2) / 400} {(y1 + y2) / 200} {(x2 - x1) / 200} {(y2 - y1) / 100}\n" for x1, y1, x2, y2 in boxes))
    (tmp_path / "labels" / "small.txt").write_text("0 0.5 0.5 0.2 0.25\n")
    out = tmp_path / "out"
    report = convert_yolo(tmp_path / "images", tmp_path / "labels", out, ClassMap.parse(None), tile=128, overlap=32,
                          val_fraction=0.5)
    assert report.images == 3  # two tiles and the small chip, whole
    # The third ship shows 8 of its 30 px in the first tile, under the 0.4 sliver threshold: left out there.
    np.testing.assert_allclose(_labels(out, "big_0_0", 128, 100).xyxy, [[10, 20, 40, 30], [80, 50, 110, 60]],
                               atol=0.01)
    np.testing.assert_allclose(_labels(out, "big_72_0", 128, 100).xyxy, [[8, 50, 38, 60], [48, 70, 78, 80]],
                               atol=0.01)
    np.testing.assert_allclose(_labels(out, "small", 100, 80).xyxy, [[40, 30, 60, 50]], atol=0.01)
    assert Image.open(out / "images" / "big_72_0.jpg").size == (128, 100)
    sides = {line.split(",")[2]: line.split(",")[3] for line in (out / "split.csv").read_text().split()[1:]}
    assert sides["big_0_0"] == sides["big_72_0"] != sides["small"]  # the tiles keep their chip's group
    with pytest.raises(ConfigError, match="--overlap 128"):
        convert_yolo(tmp_path / "images", tmp_path / "labels", out, ClassMap.parse(None), tile=128, overlap=128)


def test_yolo_class_map_and_dota(tmp_path):
    _image(tmp_path / "y" / "images" / "t1.jpg")
    (tmp_path / "y" / "labels").mkdir()
    (tmp_path / "y" / "labels" / "t1.txt").write_text("0 0.5 0.5 0.2 0.2\n2 0.1 0.1 0.05 0.05\n1 0.3 0.3 0.1 0.1\n")
    (tmp_path / "y" / "classes.txt").write_text("naval\nMerchant\ndock\n")
    report = convert_yolo(tmp_path / "y" / "images", tmp_path / "y" / "labels", tmp_path / "yo",
                          ClassMap.parse("naval=ship,Merchant=ship,dock=drop"), tmp_path / "y" / "classes.txt")
    assert report.boxes == 2
    _image(tmp_path / "d" / "images" / "p1.png")
    (tmp_path / "d" / "labelTxt").mkdir()
    (tmp_path / "d" / "labelTxt" / "p1.txt").write_text(
        "imagesource:GoogleEarth\ngsd:0.5\n10 10 50 10 50 20 10 20 ship 0\n60 60 70 60 70 70 60 70 harbor 1\n")
    report = convert_dota(tmp_path / "d" / "images", tmp_path / "d" / "labelTxt", tmp_path / "do",
                          ClassMap.parse("ship=ship,*=drop", default=None))
    assert report.boxes == 1
    box = _labels(tmp_path / "do", "p1", 120, 80, oriented=True).obb[0]
    np.testing.assert_allclose(box[:4], [30, 15, 40, 10], atol=0.01)


def test_lost_labels_are_left_out_without_moving_the_split(tmp_path):
    # Twenty images, one group each: seven have an empty label file and one none at all (MASATI's lost labels).
    (tmp_path / "y" / "labels").mkdir(parents=True)
    for i in range(20):
        _image(tmp_path / "y" / "images" / f"m{i:02d}.jpg", 32, 32)
        if i != 19:
            (tmp_path / "y" / "labels" / f"m{i:02d}.txt").write_text("" if i % 3 == 0 else "0 0.5 0.5 0.2 0.2\n")
    lost = {f"m{i:02d}" for i in range(20) if i % 3 == 0 or i == 19}
    sides = {}
    for flag in (False, True):
        out = tmp_path / f"out{flag}"
        report = convert_yolo(tmp_path / "y" / "images", tmp_path / "y" / "labels", out, ClassMap.parse(None),
                              source="masati", val_fraction=0.3, empty_unlabelled=flag)
        assert (report.images, report.empty_images, report.unlabelled) == ((12, 0, 8) if flag else (20, 8, 0))
        sides[flag] = {line.split(",")[2]: line.split(",")[3] for line in (out / "split.csv").read_text().split()[1:]}
    assert set(sides[True]) == set(sides[False]) - lost  # left out, neither positives nor ship-free images
    assert all(sides[True][n] == sides[False][n] for n in sides[True])  # every other image keeps its side
    assert not (tmp_path / "outTrue" / "images" / "m00.jpg").exists()
    listed = (tmp_path / "outTrue" / "train.txt").read_text() + (tmp_path / "outTrue" / "val.txt").read_text()
    assert not any(f"/{n}.jpg" in listed for n in lost)
    assert "8 images left out as unlabelled" in report.summary()


def test_real_boats_vhr_and_sentinel2(real_data, tmp_path):
    from shipdet.datasets.sentinel2 import stack_scenes

    boats = convert_voc(real_data / "boats" / "annotations", real_data / "boats" / "images", tmp_path / "boats",
                        ClassMap.parse("*=ship"), source="boats")
    assert boats.images == 621 and boats.boxes == 1951 and not boats.skipped
    vhr = convert_yolo(real_data / "vhr" / "images", real_data / "vhr" / "labels", tmp_path / "vhr",
                       ClassMap.parse("naval=ship,Merchant=ship,dock=drop,other_vessel=ship"),
                       real_data / "vhr" / "classes.txt", source="vhr")
    assert vhr.images == 63 and 700 < vhr.boxes <= 791
    results = {r.scene: r for r in stack_scenes(real_data / "sentinel2-ports", tmp_path / "s2rgb")}
    assert results["qingdao"].missing == ["B04", "B03"] and results["santos"].missing == ["B02"]
    assert results["genoa"].rgb_tif is not None and results["genoa"].acquired == "2023-07-10"
    s2 = convert_coco(real_data / "sentinel2-ports" / "coco_annotations.json",
                      [tmp_path / "s2rgb", real_data / "sentinel2-ports"], tmp_path / "s2", ClassMap.parse(None),
                      source="s2ports", gsd_m=10, tile=640, overlap=64)
    assert not s2.skipped and s2.boxes >= 203  # tiles overlap, so a ship can appear in two tiles
