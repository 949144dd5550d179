import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipdet.detections import Detections
from shipdet.tiling import Window, merge_windows, tile_windows


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 3000), st.integers(1, 3000), st.integers(32, 1024), st.sampled_from(["even", "stride"]),
       st.data())
def test_windows_cover_every_pixel_and_stay_inside(width, height, tile, grid, data):
    overlap = data.draw(st.integers(0, tile - 1))
    windows = tile_windows(width, height, tile, overlap, grid)
    assert windows == tile_windows(width, height, tile, overlap, grid)  # deterministic
    other = "stride" if grid == "even" else "even"
    assert len(windows) == len(tile_windows(width, height, tile, overlap, other))  # same cost either way
    cover_x = np.zeros(width, dtype=bool)
    cover_y = np.zeros(height, dtype=bool)
    for w in windows:
        assert w.col >= 0 and w.row >= 0 and w.col + w.width <= width and w.row + w.height <= height
        assert w.width == min(tile, width) and w.height == min(tile, height)
        cover_x[w.col:w.col + w.width] = True
        cover_y[w.row:w.row + w.height] = True
    assert cover_x.all() and cover_y.all()  # the grid is a product, so every pixel is covered
    cols = sorted({w.col for w in windows})
    rows = sorted({w.row for w in windows})
    for starts, size in ((cols, min(tile, width)), (rows, min(tile, height))):
        gaps = np.diff(starts)
        assert np.all(size - gaps >= overlap)  # consecutive windows overlap by at least `overlap`


def test_windows_table():
    assert tile_windows(100, 50, 64, 0) == [Window(0, 0, 64, 50), Window(36, 0, 64, 50)]
    assert tile_windows(30, 20, 64, 8) == [Window(0, 0, 30, 20)]
    with pytest.raises(ValueError):
        tile_windows(100, 100, 64, 64)
    # 1000 px, tile 512, overlap 64: even spreads the surplus (0, 244, 488); stride steps by 448 and shifts the
    # last window to the edge (0, 448, 488), as SAHI slices.
    assert [w.col for w in tile_windows(1000, 10, 512, 64)] == [0, 244, 488]
    assert [w.col for w in tile_windows(1000, 10, 512, 64, "stride")] == [0, 448, 488]
    assert [w.col for w in tile_windows(960, 10, 512, 64, "stride")] == [0, 448]  # lands exactly on the edge
    with pytest.raises(ValueError, match="unknown grid"):
        tile_windows(100, 100, 64, 8, "diagonal")


@pytest.mark.parametrize("size", [(8000, 8000), (747, 1226), (511, 339), (1980, 1038), (2201, 871)])
def test_stride_grid_is_sahis(size):
    slicing = pytest.importorskip("sahi.slicing")
    width, height = size
    expected = slicing.get_slice_bboxes(height, width, 512, 512, overlap_height_ratio=64 / 512,
                                        overlap_width_ratio=64 / 512)
    assert [list(w.bounds) for w in tile_windows(width, height, 512, 64, "stride")] == expected


def _window_dets(window, boxes, scores):
    """Boxes given in scene pixels, clipped to the window as a detector would see them."""
    b = np.array(boxes, dtype=float).reshape(-1, 4)
    x1, y1, x2, y2 = window.bounds
    clipped = np.column_stack([np.clip(b[:, 0], x1, x2), np.clip(b[:, 1], y1, y2), np.clip(b[:, 2], x1, x2),
                               np.clip(b[:, 3], y1, y2)])
    visible = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    return Detections(clipped[visible], np.array(scores)[visible], np.zeros(visible.sum(), dtype=int))


def test_seam_ship_kept_whole_from_the_window_that_holds_it():
    windows = tile_windows(200, 100, 100, 40)  # cols 0, 50, 100
    ship = [70, 40, 120, 50]  # whole only in the middle window (50..150)
    other = [10, 10, 30, 20]  # whole in the first window only
    per_window = [(w, _window_dets(w, [ship, other], [0.9, 0.8])) for w in windows]
    merged = merge_windows(per_window, (200, 100))
    assert len(merged) == 2
    np.testing.assert_allclose(sorted(merged.xyxy.tolist()), sorted([ship, other]))


def test_ship_cut_in_every_window_is_kept_once():
    windows = [Window(0, 0, 60, 60), Window(40, 0, 60, 60)]
    ship = [20, 10, 90, 20]  # longer than the overlap: cut in both windows
    per_window = [(w, _window_dets(w, [ship], [0.9])) for w in windows]
    merged = merge_windows(per_window, (100, 60))
    assert len(merged) == 1


def test_merge_of_empty_windows_is_empty():
    windows = tile_windows(100, 100, 64, 16)
    merged = merge_windows([(w, Detections.empty(oriented=True)) for w in windows], (100, 100))
    assert len(merged) == 0 and merged.oriented


def test_oriented_seam_merge():
    windows = tile_windows(200, 100, 100, 50)
    ship = Detections.from_obb([[100, 50, 40, 10, 0.3]], [0.9], [0])
    per_window = []
    for w in windows:
        x1, _, x2, _ = w.bounds
        inside = (ship.xyxy[:, 0] >= x1) & (ship.xyxy[:, 2] <= x2)
        per_window.append((w, ship[np.flatnonzero(inside)]))
    merged = merge_windows(per_window, (200, 100))
    assert len(merged) == 1
