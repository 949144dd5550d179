"""Simulated coarse imagery: boxes follow the ship exactly, and only training chips are used."""

import numpy as np
import pytest
from PIL import Image

from shipdet.datasets.coarsen import coarsen_chip, coarsen_set
from shipdet.datasets.merge import merge_sets
from shipdet.datasets.writer import YoloSetWriter, read_manifest
from shipdet.detections import Detections
from shipdet.errors import ConfigError, DatasetNotFoundError


def _chip(ships: list[tuple[int, int, int, int]], size: int = 400) -> tuple[np.ndarray, Detections]:
    image = np.full((size, size, 3), 20, np.uint8)
    for x1, y1, x2, y2 in ships:
        image[y1:y2, x1:x2] = 230
    return image, Detections(np.array(ships, dtype=np.float64), np.ones(len(ships)), np.zeros(len(ships), np.int64))


def test_a_coarsened_ship_is_blurred_and_its_box_follows_it_exactly():
    image, dets = _chip([(100, 150, 180, 170), (300, 300, 306, 303)])  # 80 px and 6 px long
    out = coarsen_chip(image, dets, target_px=10.0, working_scale=4.0)  # median 43 px -> factor 10/43
    assert out is not None
    fine, boxes, factor = out
    assert factor == pytest.approx(10.0 / 43.0)
    coarse = round(400 * factor)
    assert fine.shape == (4 * coarse, 4 * coarse, 3)
    scale = 4 * coarse / 400
    assert len(boxes) == 1  # the 6 px boat is 1.4 coarse pixels: too small to label, as Sentinel-2 truth is
    np.testing.assert_allclose(boxes.xyxy[0], np.array([100, 150, 180, 170]) * scale, atol=1e-6)
    bright = np.argwhere(fine[..., 0] > (20 + 230) / 2)  # the ship's half-maximum outline
    (y1, x1), (y2, x2) = bright.min(axis=0), bright.max(axis=0) + 1
    np.testing.assert_allclose([x1, y1, x2, y2], boxes.xyxy[0], atol=3)
    row = fine[round(160 * scale), :, 0].astype(float)  # across the ship's bow, through its middle
    edge = row[round(100 * scale) - 8:round(100 * scale) + 8]
    # 10-90 % rise: 7 px with the sensor blur; area averaging and bicubic upsampling alone give 5
    assert np.sum((edge > 20 + 0.1 * 210) & (edge < 20 + 0.9 * 210)) >= 6


def test_a_chip_whose_ships_are_already_small_is_left_alone():
    image, dets = _chip([(100, 150, 180, 170)])
    assert coarsen_chip(image, dets, target_px=50.0, working_scale=4.0) is None  # factor 0.62: hardly coarser
    assert coarsen_chip(image, Detections.empty(), target_px=10.0, working_scale=4.0) is None


def _aerial_set(root, n: int) -> None:
    writer = YoloSetWriter(root, {0: "ship"}, source="aerial")
    for i in range(n):
        image, dets = _chip([(40 + i, 60, 140 + i, 90)], size=256)
        writer.add(f"a{i}", image, dets if i % 4 else Detections.empty(), group=f"g{i // 2}", oriented=False)
    writer.close(0.0, 0)


def test_only_training_chips_are_coarsened_and_validation_stays_as_it_was(tmp_path):
    _aerial_set(tmp_path / "aerial", 16)
    merge_sets([tmp_path / "aerial"], tmp_path / "m", val_fraction=0.4)
    split = [line.split(",") for line in (tmp_path / "m" / "split.csv").read_text().splitlines()[1:]]
    train = {name for _, _, name, side in split if side == "train"}
    report = coarsen_set(tmp_path / "m", tmp_path / "coarse", ["aerial"], lengths=(6, 12), limit=100)
    rows = read_manifest(tmp_path / "coarse" / "manifest.csv")
    made = {r["name"].removeprefix("aerial_") for r in rows}
    assert made and made <= {n for n in train if int(n[1:]) % 4}  # training chips with ships, nothing else
    assert report.images == len(rows) and {r["group"] for r in rows} <= {f"aerial/g{i}" for i in range(8)}
    assert {r["source"] for r in rows} == {"coarse"} and {r["gsd_m"] for r in rows} == {"2.5"}
    val_before = (tmp_path / "m" / "val.txt").read_text()
    merge_sets([tmp_path / "aerial", tmp_path / "coarse"], tmp_path / "m2", val_fraction=0.4, train_only=["coarse"])
    assert (tmp_path / "m2" / "val.txt").read_text() == val_before
    assert sum("/coarse/" in p for p in (tmp_path / "m2" / "train.txt").read_text().split()) == len(rows)
    assert coarsen_set(tmp_path / "m", tmp_path / "few", ["aerial"], lengths=(6, 12), limit=2).images == 2


def test_ship_free_chips_are_coarsened_too_at_the_factors_the_ships_got(tmp_path):
    """Without them every blurred, upsampled training chip would hold a ship: a bias the model would learn."""
    _aerial_set(tmp_path / "aerial", 16)
    merge_sets([tmp_path / "aerial"], tmp_path / "m", val_fraction=0.4)
    split = [line.split(",") for line in (tmp_path / "m" / "split.csv").read_text().splitlines()[1:]]
    empty_train = {name for _, _, name, side in split if side == "train" and int(name[1:]) % 4 == 0}
    alone = coarsen_set(tmp_path / "m", tmp_path / "c0", ["aerial"], lengths=(6, 12), limit=100)
    both = coarsen_set(tmp_path / "m", tmp_path / "c1", ["aerial"], lengths=(6, 12), limit=100, negatives=50,
                       negative_sources=["aerial"])
    rows = read_manifest(tmp_path / "c1" / "manifest.csv")
    empties = [r for r in rows if r["name"].removeprefix("aerial_") in empty_train]
    assert empty_train and len(empties) == len(empty_train) == both.images - alone.images
    ships = read_manifest(tmp_path / "c0" / "manifest.csv")
    assert [r["name"] for r in rows[:len(ships)]] == [r["name"] for r in ships]  # the chips with ships unchanged
    def side(folder: str, name: str) -> int:
        return Image.open(tmp_path / folder / "images" / f"{name}.jpg").width

    sides = {side("c0", r["name"]) for r in ships}
    for row in empties:
        assert not (tmp_path / "c1" / "labels" / f"{row['name']}.txt").read_text().strip()
        assert side("c1", row["name"]) in sides  # 256 px shrunk by one of the ships' factors, then x4
    with pytest.raises(DatasetNotFoundError, match=r"no source \['ucm'\]"):
        coarsen_set(tmp_path / "m", tmp_path / "c2", ["aerial"], negatives=5, negative_sources=["ucm"])


def test_bad_requests_name_what_is_wrong(tmp_path):
    _aerial_set(tmp_path / "aerial", 4)
    merge_sets([tmp_path / "aerial"], tmp_path / "m", val_fraction=0.4)
    with pytest.raises(DatasetNotFoundError, match=r"no source \['boats'\]"):
        coarsen_set(tmp_path / "m", tmp_path / "c", ["boats"])
    with pytest.raises(DatasetNotFoundError, match="not a merged set"):
        coarsen_set(tmp_path / "aerial" / "images", tmp_path / "c", ["aerial"])
    with pytest.raises(ConfigError, match="lengths"):
        coarsen_set(tmp_path / "m", tmp_path / "c", ["aerial"], lengths=(20, 10))


def test_the_command_writes_a_set_and_refuses_a_malformed_length_span(tmp_path):
    from typer.testing import CliRunner

    from shipdet.cli import app

    _aerial_set(tmp_path / "aerial", 8)
    merge_sets([tmp_path / "aerial"], tmp_path / "m", val_fraction=0.4)
    base = ["datasets", "coarsen", str(tmp_path / "m"), "--source", "aerial", "--out", str(tmp_path / "c")]
    done = CliRunner().invoke(app, [*base, "--lengths", "6,12"])
    assert done.exit_code == 0 and (tmp_path / "c" / "data.yaml").is_file(), done.output
    bad = CliRunner().invoke(app, [*base, "--lengths", "6"])
    assert bad.exit_code == 2 and "not LOW,HIGH" in bad.output
