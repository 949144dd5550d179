import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipdet.geometry import (
    box_iou,
    corners_to_obb,
    nms,
    normalize_obb,
    obb_iou,
    obb_to_corners,
    obb_to_xyxy,
    points_to_obb,
)


@pytest.mark.parametrize(
    ("obb", "expected"),
    [
        ([10, 10, 20, 4, 0.0], [10, 10, 20, 4, 0.0]),
        ([10, 10, 4, 20, 0.0], [10, 10, 20, 4, math.pi / 2 - math.pi]),  # swap -> pi/2 wraps to -pi/2
        ([0, 0, 20, 4, math.pi], [0, 0, 20, 4, 0.0]),
        ([0, 0, 20, 4, 3 * math.pi / 4], [0, 0, 20, 4, -math.pi / 4]),
    ],
)
def test_normalize_obb(obb, expected):
    np.testing.assert_allclose(normalize_obb([obb])[0], expected, atol=1e-12)


def test_axis_aligned_corners_and_hull():
    corners = obb_to_corners([[10, 20, 8, 4, 0.0]])[0]
    assert sorted(map(tuple, corners.round(9).tolist())) == [(6, 18), (6, 22), (14, 18), (14, 22)]
    np.testing.assert_allclose(obb_to_xyxy([[10, 20, 8, 4, math.pi / 2]]), [[8, 16, 12, 24]], atol=1e-9)


obbs = st.tuples(st.floats(-500, 500), st.floats(-500, 500), st.floats(1, 300), st.floats(1, 300),
                 st.floats(-10, 10))


@given(st.lists(obbs, min_size=1, max_size=20))
def test_corners_round_trip(boxes):
    o = normalize_obb(np.array(boxes))
    back = corners_to_obb(obb_to_corners(o))
    np.testing.assert_allclose(back[:, :4], o[:, :4], rtol=1e-9, atol=1e-6)
    # Angles agree modulo pi (a square's angle is ambiguous modulo pi/2 too)
    d = np.abs((back[:, 4] - o[:, 4] + math.pi / 2) % math.pi - math.pi / 2)
    square = np.isclose(o[:, 2], o[:, 3])
    assert np.all((d < 1e-6) | square)


def test_box_iou_table():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [10, 10, 20, 20], [2, 2, 4, 4]])
    np.testing.assert_allclose(box_iou(a, b)[0], [1.0, 50 / 150, 0.0, 4 / 100])
    np.testing.assert_allclose(box_iou(a, b, mode="ios")[0], [1.0, 0.5, 0.0, 1.0])


def test_obb_iou_known_values():
    square = [0, 0, 2, 2, 0.0]
    diamond = [0, 0, 2, 2, math.pi / 4]
    inter = 8 * (math.sqrt(2) - 1)  # regular octagon where a square and its 45-degree turn overlap
    iou = obb_iou([square], [diamond, square, [10, 10, 2, 2, 0.3]])[0]
    np.testing.assert_allclose(iou, [inter / (8 - inter), 1.0, 0.0], atol=1e-9)


@given(st.lists(st.tuples(st.floats(0, 200), st.floats(0, 200), st.floats(1, 50), st.floats(1, 50)),
                min_size=1, max_size=15))
def test_obb_iou_matches_box_iou_at_angle_zero(raw):
    arr = np.array(raw)
    xyxy = np.column_stack([arr[:, 0], arr[:, 1], arr[:, 0] + arr[:, 2], arr[:, 1] + arr[:, 3]])
    obb = np.column_stack([arr[:, 0] + arr[:, 2] / 2, arr[:, 1] + arr[:, 3] / 2, arr[:, 2], arr[:, 3],
                           np.zeros(len(arr))])
    np.testing.assert_allclose(obb_iou(obb, obb), box_iou(xyxy, xyxy), atol=1e-9)


def test_points_to_obb_fits_a_rotated_rectangle():
    truth = np.array([[50, 40, 60, 10, 0.5]])
    box = points_to_obb(obb_to_corners(truth)[0])
    np.testing.assert_allclose(box, truth[0], atol=1e-6)


def test_nms_table():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]])
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    classes = np.array([0, 0, 0, 1])
    assert nms(boxes, scores, 0.5).tolist() == [3, 2]
    assert nms(boxes, scores, 0.5, classes).tolist() == [3, 0, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 100), st.floats(0, 100), st.floats(2, 40), st.floats(2, 40),
                          st.floats(-3, 3), st.floats(0, 1), st.integers(0, 2)), min_size=1, max_size=25),
       st.floats(0.1, 0.9), st.booleans())
def test_nms_idempotent(raw, threshold, oriented):
    arr = np.array(raw)
    boxes = arr[:, :5] if oriented else np.column_stack([arr[:, 0], arr[:, 1], arr[:, 0] + arr[:, 2],
                                                         arr[:, 1] + arr[:, 3]])
    keep = nms(boxes, arr[:, 5], threshold, arr[:, 6])
    again = nms(boxes[keep], arr[keep, 5], threshold, arr[keep, 6])
    assert sorted(keep[again].tolist()) == sorted(keep.tolist())
    overlap = (obb_iou if oriented else box_iou)(boxes[keep], boxes[keep])
    same = arr[keep, 6][:, None] == arr[keep, 6][None, :]
    np.fill_diagonal(overlap, 0)
    assert not np.any((overlap > threshold) & same)
