import json

import numpy as np
import pytest
import yaml
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from shipdet.datasets.merge import merge_sets
from shipdet.datasets.split import assign_groups
from shipdet.datasets.synth import SynthConfig, make_scene
from shipdet.datasets.synth_set import write_synth_set
from shipdet.datasets.writer import YoloSetWriter, read_manifest
from shipdet.datasets.xview import convert_xview
from shipdet.detections import Detections
from shipdet.errors import DatasetFormatError
from shipdet.formats import from_yolo_lines
from tests.conftest import write_geotiff

pytest.importorskip("rasterio")


def test_xview_fixture_tiles_clip_and_skip(tmp_path):
    img = np.random.default_rng(0).integers(0, 255, (700, 900, 3), dtype=np.uint8)
    write_geotiff(tmp_path / "10.tif", img, Affine(0.3, 0, 500000, 0, -0.3, 4000000), "EPSG:32653")
    feats = [
        {"properties": {"image_id": "10.tif", "type_id": 52, "bounds_imcoords": "300,100,360,130"}},  # tanker
        {"properties": {"image_id": "10.tif", "type_id": 41, "bounds_imcoords": "630,400,700,420"}},  # at a seam
        {"properties": {"image_id": "10.tif", "type_id": 18, "bounds_imcoords": "10,10,50,50"}},  # a car: drop
        {"properties": {"image_id": "10.tif", "type_id": 75, "bounds_imcoords": "1,1,5,5"}},  # unknown id
        {"properties": {"image_id": "10.tif", "type_id": 40, "bounds_imcoords": "bad"}},
        {"properties": {"image_id": "99.tif", "type_id": 40, "bounds_imcoords": "1,1,9,9"}},  # image missing
    ]
    (tmp_path / "xview.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    out = tmp_path / "out"
    report = convert_xview(tmp_path / "xview.geojson", tmp_path, out, taxonomy="fine", tile=320, overlap=32)
    assert any("unknown type_id 75" in s for s in report.skipped)
    assert any("bounds_imcoords" in s for s in report.skipped)
    assert any("99.tif" in s for s in report.skipped)
    assert yaml.safe_load((out / "data.yaml").read_text())["names"] == {0: "ship", 1: "oil_tanker"}
    classes = set()
    for label in (out / "labels").glob("*.txt"):
        dets = from_yolo_lines(label.read_text().splitlines(), 320, 320)
        assert np.all(dets.xyxy >= -1e-3) and np.all(dets.xyxy <= 320 + 1e-3)  # never outside its tile
        classes |= set(dets.class_id.tolist())
    assert classes == {0, 1} and report.boxes >= 2


def test_synth_is_deterministic_and_labels_lie_inside():
    cfg = SynthConfig(width=160, height=128, gsd_m=4.0, empty_fraction=0.0)
    a_img, a = make_scene(7, cfg)
    b_img, b = make_scene(7, cfg)
    c_img, _ = make_scene(8, cfg)
    assert np.array_equal(a_img, b_img) and np.array_equal(a.obb, b.obb)
    assert not np.array_equal(a_img, c_img)
    for seed in range(20):
        img, dets = make_scene(seed, cfg)
        h, w = img.shape[:2]
        corners = dets.corners()
        assert np.all(corners >= -1e-6) and np.all(corners[..., 0] <= w + 1e-6) and np.all(corners[..., 1] <= h + 1e-6)
        ratio = dets.obb[:, 2] / dets.obb[:, 3]
        assert np.all((ratio > 2.5) & (ratio < 8.5))


def test_synth_geotiff_scenes(tmp_path):
    import rasterio

    report = write_synth_set(tmp_path / "s", 3, seed=1, cfg=SynthConfig(width=96, height=96, empty_fraction=0),
                             geotiff=True)
    assert report.images == 3
    with rasterio.open(tmp_path / "s" / "scenes" / "synth_1_00000.tif") as src:
        assert src.crs.to_epsg() == 32653 and src.count == 3
    labels = json.loads((tmp_path / "s" / "scenes" / "synth_1_00000.labels.json").read_text())["ships"]
    assert all(132.9 < s["lon"] < 133.3 and 42.6 < s["lat"] < 42.8 for s in labels)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 30), st.integers(1, 20)),
                min_size=1, max_size=60, unique_by=lambda t: (t[0], t[1])), st.floats(0.0, 0.6), st.integers(0, 5))
def test_split_assigns_each_group_to_one_side(groups, fraction, seed):
    items = [(s, f"g{g}", n) for s, g, n in groups]
    sides = assign_groups(items, fraction, seed)
    assert set(sides) == {f"{s}:g{g}" for s, g, _ in groups}
    assert set(sides.values()) <= {"train", "val"}
    assert sides == assign_groups(items, fraction, seed)


def test_merge_never_splits_a_group(tmp_path):
    a = tmp_path / "a"
    write_synth_set(a, 12, seed=2, cfg=SynthConfig(width=64, height=64))
    b = tmp_path / "b"
    write_synth_set(b, 6, seed=3, cfg=SynthConfig(width=64, height=64))
    report = merge_sets([a, b], tmp_path / "m", val_fraction=0.3, train_only=["none"])
    rows = [line.split(",") for line in (tmp_path / "m" / "split.csv").read_text().splitlines()[1:]]
    sides: dict[tuple[str, str], set[str]] = {}
    for source, group, _, side in rows:
        sides.setdefault((source, group), set()).add(side)
    assert all(len(v) == 1 for v in sides.values())
    assert len(rows) == 18 and "Merged training set" in report
    train = (tmp_path / "m" / "train.txt").read_text().split()
    val = (tmp_path / "m" / "val.txt").read_text().split()
    assert not set(train) & set(val) and len(train) + len(val) == 18


def _few_ships_set(root, positives: int, empties: int):
    """A source with ships in some images and none in others, one group per image."""
    writer = YoloSetWriter(root, {0: "ship"}, source="few", gsd_m=3.0)
    cfg = SynthConfig(width=64, height=64, empty_fraction=0.0)
    for i in range(positives + empties):
        image, dets = make_scene(i, cfg)
        assert len(dets) > 0
        writer.add(f"few_{i}", image, dets if i < positives else Detections.empty(oriented=True), group=f"g{i}",
                   oriented=True)
    writer.close(0.0, 0)


def test_merge_oversamples_a_source_with_few_ships_in_training_only(tmp_path):
    many, few = tmp_path / "many", tmp_path / "few"
    write_synth_set(many, 10, seed=4, cfg=SynthConfig(width=64, height=64))
    _few_ships_set(few, positives=6, empties=4)
    report = merge_sets([many, few], tmp_path / "m", val_fraction=0.3, oversample={"few": 3})
    train = (tmp_path / "m" / "train.txt").read_text().split()
    val = (tmp_path / "m" / "val.txt").read_text().split()
    rows = [line.split(",") for line in (tmp_path / "m" / "split.csv").read_text().splitlines()[1:]]
    few_train = [name for source, _, name, side in rows if source == "few" and side == "train"]
    with_ships = [n for n in few_train if int(n.split("_")[1]) < 6]
    assert with_ships and len(with_ships) < len(few_train)  # both kinds reached training
    listed = {n: sum(p.endswith(f"/{n}.jpg") for p in train) for n in few_train}
    assert listed == {n: 3 if n in with_ships else 1 for n in few_train}
    assert len(val) == len(set(val)) == sum(side == "val" for *_, side in rows)
    assert all(train.count(p) == 1 for p in train if "/many/" in p)
    assert len((tmp_path / "m" / "train-obb.txt").read_text().split()) == len(train)
    assert f"the {len(with_ships)} few training images with ships are each listed 3 times" in report


def test_merge_lists_crowded_training_images_n_times_in_all(tmp_path):
    few = tmp_path / "few"
    _few_ships_set(few, positives=6, empties=4)
    boxes = {r["name"]: int(r["n_boxes"]) for r in read_manifest(few / "manifest.csv")}
    least = sorted(boxes.values())[-3]  # the three most crowded images, or more on a tie
    report = merge_sets([few], tmp_path / "m", val_fraction=0.3, oversample={"few": 2}, crowded=(least, 5))
    train = (tmp_path / "m" / "train.txt").read_text().split()
    rows = [line.split(",") for line in (tmp_path / "m" / "split.csv").read_text().splitlines()[1:]]
    few_train = [name for _, _, name, side in rows if side == "train"]
    listed = {n: sum(p.endswith(f"/{n}.jpg") for p in train) for n in few_train}
    crowded = [n for n in few_train if boxes[n] >= least]
    assert crowded and len(crowded) < len(few_train)
    # five in all, not five on top of the source's two; the rest keep the source's factor
    assert listed == {n: 5 if n in crowded else 2 if boxes[n] else 1 for n in few_train}
    assert f"the {len(crowded)} training images with {least} ships or more are each listed 5 times" in report
    assert f"({3 * len(crowded)} extra entries)" in report
    with pytest.raises(DatasetFormatError, match="at least 1 ship"):
        merge_sets([few], tmp_path / "m2", crowded=(0, 4))


def test_merge_lists_ship_free_training_images_n_times_beside_oversampled_ones(tmp_path):
    few = tmp_path / "few"
    _few_ships_set(few, positives=6, empties=4)
    report = merge_sets([few], tmp_path / "m", val_fraction=0.3, oversample={"few": 2}, ship_free={"few": 3})
    train = (tmp_path / "m" / "train.txt").read_text().split()
    val = (tmp_path / "m" / "val.txt").read_text().split()
    rows = [line.split(",") for line in (tmp_path / "m" / "split.csv").read_text().splitlines()[1:]]
    few_train = [name for _, _, name, side in rows if side == "train"]
    empty = [n for n in few_train if int(n.split("_")[1]) >= 6]
    assert empty and len(empty) < len(few_train)
    listed = {n: sum(p.endswith(f"/{n}.jpg") for p in train) for n in few_train}
    assert listed == {n: 3 if n in empty else 2 for n in few_train}
    assert len(val) == len(set(val))  # validation is never repeated
    assert f"the {len(empty)} few training images without ships are each listed 3 times" in report
    assert f"({2 * len(empty)} extra entries)" in report


@pytest.mark.parametrize("option", ["oversample", "ship_free"])
@pytest.mark.parametrize("factors, words", [({"few": 0}, "whole numbers >= 1"), ({"nosuch": 2}, "no such source")])
def test_merge_refuses_bad_oversampling(tmp_path, factors, words, option):
    _few_ships_set(tmp_path / "few", positives=2, empties=1)
    with pytest.raises(DatasetFormatError, match=words):
        merge_sets([tmp_path / "few"], tmp_path / "m", **{option: factors})


def test_real_merge_of_all_four(real_data, tmp_path):
    from shipdet.datasets.airbus import convert_airbus
    from shipdet.datasets.classmap import ClassMap
    from shipdet.datasets.labelfiles import convert_yolo
    from shipdet.datasets.stats import dataset_stats
    from shipdet.datasets.voc import convert_voc

    convert_airbus(real_data / "airbus" / "train_ship_segmentations_v2.csv", real_data / "airbus" / "train_v2",
                   tmp_path / "airbus")
    convert_voc(real_data / "boats" / "annotations", real_data / "boats" / "images", tmp_path / "boats",
                ClassMap.parse("*=ship"), source="boats")
    convert_yolo(real_data / "vhr" / "images", real_data / "vhr" / "labels", tmp_path / "vhr",
                 ClassMap.parse("naval=ship,Merchant=ship,dock=drop,other_vessel=ship"),
                 real_data / "vhr" / "classes.txt", source="vhr", gsd_m=0.3)
    from shipdet.datasets.coco import convert_coco

    convert_coco(real_data / "sentinel2-ports" / "coco_annotations.json", [real_data / "sentinel2-ports"],
                 tmp_path / "s2", ClassMap.parse(None), source="s2ports", gsd_m=10, tile=640)
    report = merge_sets([tmp_path / n for n in ("airbus", "boats", "vhr", "s2")], tmp_path / "merged")
    for source in ("airbus", "boats", "vhr", "s2ports"):
        assert f"| {source} |" in report
    stats = dataset_stats(tmp_path / "merged")
    assert stats["train"]["images"] > 0 and stats["val"]["images"] > 0 and stats["val"]["size_m"]


def test_xview_reads_only_windows(tmp_path, monkeypatch):
    """A 3,000 x 3,000 image is read one tile window at a time, never whole."""
    import rasterio.io

    img = np.zeros((3000, 3000, 3), np.uint8)
    write_geotiff(tmp_path / "big.tif", img, Affine(0.3, 0, 500000, 0, -0.3, 4000000), "EPSG:32653")
    feats = [{"properties": {"image_id": "big.tif", "type_id": 51, "bounds_imcoords": f"{x},{x},{x + 40},{x + 12}"}}
             for x in range(100, 2900, 400)]
    (tmp_path / "x.geojson").write_text(json.dumps({"features": feats}))
    reads = []
    original = rasterio.io.DatasetReader.read

    def spy(self, *args, **kwargs):
        reads.append(kwargs.get("window"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", spy)
    report = convert_xview(tmp_path / "x.geojson", tmp_path, tmp_path / "out", tile=512, overlap=32)
    assert report.boxes >= len(feats) and reads  # overlapping tiles can each hold a ship
    assert all(w is not None and w.width <= 512 and w.height <= 512 for w in reads)
