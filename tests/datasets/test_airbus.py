import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from shipdet.datasets.airbus import convert_airbus, mask_to_obb, read_airbus_csv, rle_decode, rle_encode
from shipdet.errors import DatasetFormatError
from shipdet.geometry import obb_polygons


def test_rle_decode_is_one_based_and_column_major():
    mask = rle_decode("2 3 9 1", (4, 3))
    expected = np.zeros((4, 3), dtype=bool)
    expected[1:4, 0] = True  # pixels 2, 3, 4 run down the first column
    expected[0, 2] = True  # pixel 9 is the top of the third column
    np.testing.assert_array_equal(mask, expected)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.data())
def test_rle_round_trip(h, w, data):
    bits = data.draw(st.lists(st.booleans(), min_size=h * w, max_size=h * w))
    mask = np.array(bits, dtype=bool).reshape(h, w)
    rle = rle_encode(mask)
    np.testing.assert_array_equal(rle_decode(rle, (h, w)), mask)
    assert rle_encode(rle_decode(rle, (h, w))) == rle


@pytest.mark.parametrize("bad", ["1 2 3", "0 5", "5 -1", "x 2", "60 10"])
def test_rle_decode_rejects_malformed(bad):
    with pytest.raises(ValueError):
        rle_decode(bad, (8, 8))


def _ship_mask(shape, cx, cy, length, width, angle):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]] + 0.5
    c, s = np.cos(angle), np.sin(angle)
    along = (xx - cx) * c + (yy - cy) * s
    across = -(xx - cx) * s + (yy - cy) * c
    return (np.abs(along) <= length / 2) & (np.abs(across) <= width / 2)


@pytest.mark.parametrize("angle", [0.0, 0.3, 0.9, -1.2, np.pi / 2])
def test_oriented_box_covers_the_mask(angle):
    import shapely

    mask = _ship_mask((96, 96), 48, 40, 50, 9, angle)
    box = mask_to_obb(mask)
    rows, cols = np.nonzero(mask)
    inside = shapely.contains_xy(obb_polygons(box[None])[0], cols + 0.5, rows + 0.5)
    assert inside.mean() >= 0.9
    assert box[2] == pytest.approx(50, abs=3) and box[3] == pytest.approx(9, abs=3)


def _write_airbus(root, rows, images):
    (root / "train_v2").mkdir(parents=True)
    for name in images:
        Image.fromarray(np.full((64, 64, 3), 40, np.uint8)).save(root / "train_v2" / name)
    csv = root / "segmentations.csv"
    csv.write_text("ImageId,EncodedPixels\n" + "\n".join(rows) + "\n")
    return csv


def test_convert_airbus_fixture(tmp_path):
    ship = rle_encode(_ship_mask((64, 64), 30, 30, 30, 6, 0.4))
    rows = [f"a.jpg,{ship}", "a.jpg,100 4 164 4 228 4", "b.jpg,", "c.jpg,5 x", "missing.jpg,1 3", "d.jpg,1 2,extra"]
    csv = _write_airbus(tmp_path, rows, ["a.jpg", "b.jpg", "c.jpg"])
    report = convert_airbus(csv, tmp_path / "train_v2", tmp_path / "out", empty_fraction=1.0)
    assert report.images == 2 and report.boxes == 2 and report.empty_images == 1
    assert any(":5: image c.jpg: bad RLE" in s for s in report.skipped)
    assert any("missing.jpg" in s for s in report.skipped)
    assert any(":7:" in s for s in report.skipped)  # the row with an extra field
    labels = (tmp_path / "out" / "obb" / "labels" / "a.txt").read_text().splitlines()
    assert len(labels) == 2 and all(len(line.split()) == 9 for line in labels)
    assert (tmp_path / "out" / "labels" / "b.txt").read_text() == ""


def test_convert_airbus_strict_names_file_line_and_image(tmp_path):
    csv = _write_airbus(tmp_path, ["a.jpg,1 3", "c.jpg,5 x"], ["a.jpg", "c.jpg"])
    with pytest.raises(DatasetFormatError, match=r"segmentations\.csv:3: image c\.jpg"):
        convert_airbus(csv, tmp_path / "train_v2", tmp_path / "out", strict=True)


def test_truncated_csv_is_reported_not_raised(tmp_path):
    csv = tmp_path / "seg.csv"
    csv.write_text("ImageId,EncodedPixels\na.jpg,1 3 10")  # cut mid-row: odd number of values
    _, problems = read_airbus_csv(csv)
    assert problems and "a.jpg" in problems[0]
    csv.write_text("Image,Pixels\n")
    with pytest.raises(DatasetFormatError, match="header"):
        read_airbus_csv(csv)


def test_real_airbus(real_data, tmp_path):
    root = real_data / "airbus"
    csv = root / "train_ship_segmentations_v2.csv"
    ships, problems = read_airbus_csv(csv)
    n_rows = sum(len(v) for v in ships.values())
    report = convert_airbus(csv, root / "train_v2", tmp_path / "airbus", empty_fraction=1.0)
    assert not problems and report.boxes == n_rows and report.images == len(ships)
