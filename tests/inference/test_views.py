"""Views (flips, quarter turns) map boxes back exactly, and fusion averages a ship's score over all views."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import ndimage

from shipdet.detections import Detections
from shipdet.inference.views import VIEWS, ViewedDetector, _to_original, fuse_views, unview, view_pixels, views_for
from shipdet.scale import ScaleRange


def _bright_boxes(pixels: NDArray[np.uint8]) -> NDArray[np.float64]:
    """Boxes (pixel edges) around the bright blobs of an image, in reading order of their top-left corners."""
    labels, _ = ndimage.label(pixels[..., 0] > 127)
    boxes = [[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in ndimage.find_objects(labels)]
    return np.asarray(sorted(boxes, key=lambda b: (b[1], b[0])), dtype=np.float64).reshape(-1, 4)


def _scene() -> tuple[NDArray[np.uint8], NDArray[np.float64]]:
    """A 50 x 30 tile (not square, so a quarter turn changes its shape) with two ships of different shapes."""
    pixels = np.zeros((30, 50, 3), dtype=np.uint8)
    pixels[4:9, 20:41] = 255
    pixels[15:27, 3:8] = 255
    return pixels, np.array([[20, 4, 41, 9], [3, 15, 8, 27]], dtype=np.float64)


@pytest.mark.parametrize("view", VIEWS)
def test_a_box_found_in_a_view_maps_back_to_the_same_pixels(view: tuple[bool, int]) -> None:
    pixels, truth = _scene()
    seen = view_pixels(pixels, view)
    assert seen.shape == (pixels.shape if view[1] % 2 == 0 else (50, 30, 3))
    found = Detections(_bright_boxes(seen), np.ones(2), np.zeros(2, dtype=np.int64))
    back = unview(found, view, width=50, height=30)
    np.testing.assert_array_equal(back.xyxy[np.lexsort((back.xyxy[:, 0], back.xyxy[:, 1]))], truth)


@pytest.mark.parametrize("view", VIEWS)
def test_an_oriented_box_keeps_its_corners_length_and_width(view: tuple[bool, int]) -> None:
    found = Detections.from_obb([[30.0, 10.0, 20.0, 6.0, 0.4], [12.0, 20.0, 9.0, 3.0, -1.2]], [0.9, 0.8], [0, 0])
    back = unview(found, view, width=50, height=30)
    assert back.obb is not None and found.obb is not None
    np.testing.assert_allclose(back.obb[:, 2:4], found.obb[:, 2:4])
    assert ((back.obb[:, 4] >= -np.pi / 2) & (back.obb[:, 4] < np.pi / 2)).all()
    for mine, theirs in zip(back.corners(), found.corners(), strict=True):
        x, y = _to_original(theirs[:, 0], theirs[:, 1], view, 50, 30)
        expected = sorted(map(tuple, np.round(np.stack([x, y], 1), 6)))
        assert sorted(map(tuple, np.round(mine, 6))) == expected


class _BlobDetector:
    """Finds the bright blobs of whatever it is shown (score 0.8), and a spurious 'ship' in the top-left corner of
    every image it sees: in the original tile that corner is a different place in each view."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    @property
    def info(self) -> object:
        return type("Info", (), {"scale_range": ScaleRange(0.5, 2.0), "path": Path("blob.onnx")})()

    @property
    def input_size(self) -> tuple[int, int]:
        return (64, 64)

    def detect(self, images: Sequence[NDArray[np.uint8]], conf: float = 0.25, iou: float = 0.45
               ) -> list[Detections]:
        out = []
        for im in images:
            self.seen.append(im.shape[:2])
            boxes = np.vstack([_bright_boxes(im), [[0, 0, 2, 2]]])
            scores = np.r_[np.full(len(boxes) - 1, 0.8), 0.5]
            keep = scores >= conf
            out.append(Detections(boxes[keep], scores[keep], np.zeros(int(keep.sum()), dtype=np.int64)))
        return out

    def for_factor(self, factor: float) -> _BlobDetector:
        return self  # one graph for all imagery


@pytest.mark.parametrize("count", [2, 4, 8])
def test_fused_views_keep_the_ships_every_view_sees_and_drop_what_one_view_sees(count: int) -> None:
    pixels, truth = _scene()
    blobs = _BlobDetector()
    found = ViewedDetector(blobs, count).detect([pixels], conf=0.3, iou=0.45)[0]  # type: ignore[arg-type]
    assert len(blobs.seen) == count  # one inference per view
    order = np.lexsort((found.xyxy[:, 0], found.xyxy[:, 1]))
    np.testing.assert_allclose(found.xyxy[order], truth)
    np.testing.assert_allclose(found.score, 0.8)
    # a corner 'ship' is seen only by the views whose top-left corner lands there: 0.5 each, averaged over all
    everything = ViewedDetector(blobs, count).detect([pixels], conf=0.01, iou=0.45)[0]  # type: ignore[arg-type]
    expected = [0.8, 0.8] + [round(0.5 * seen / count, 6) for seen in _views_per_corner(count)]
    assert sorted(np.round(everything.score, 6)) == sorted(expected)


def _views_per_corner(count: int) -> list[int]:
    """For each corner of the tile that a view's top-left corner lands on, how many views land there."""
    spots: dict[tuple[int, int], int] = {}
    for view in views_for(count):
        x, y = _to_original(np.array([1.0]), np.array([1.0]), view, 50, 30)
        spot = (round(float(x[0])), round(float(y[0])))
        spots[spot] = spots.get(spot, 0) + 1
    return list(spots.values())


def test_fusion_weighs_each_view_once_and_keeps_neighbours_apart() -> None:
    a = Detections(np.array([[0, 0, 10, 4], [12, 0, 22, 4]], dtype=float), [0.9, 0.5], [0, 0])
    b = Detections(np.array([[1, 0, 11, 4], [0, 0, 10, 4]], dtype=float), [0.7, 0.3], [0, 0])
    fused = fuse_views([a, b])
    # the first ship: a's 0.9 and the better of b's two matching boxes (0.7); b's other box is a leftover
    assert len(fused) == 3
    np.testing.assert_allclose(sorted(fused.score), sorted([(0.9 + 0.7) / 2, 0.5 / 2, 0.3 / 2]))
    first = fused.xyxy[np.argmax(fused.score)]
    np.testing.assert_allclose(first, (np.array([0, 0, 10, 4]) * 0.9 + np.array([1, 0, 11, 4]) * 0.7) / 1.6)


@pytest.mark.parametrize("count", [0, 3, 16])
def test_only_whole_groups_of_views(count: int) -> None:
    with pytest.raises(ValueError, match="views must be one of 1, 2, 4, 8"):
        views_for(count)
