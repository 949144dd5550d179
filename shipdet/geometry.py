"""Box geometry shared by every part: oriented-box conversions, pairwise IoU and NMS, all vectorised.

Conventions (pixels, x right, y down): an axis-aligned box is `x1, y1, x2, y2`; an oriented box is
`cx, cy, length, width, angle` with `length >= width` and the length axis at `angle` radians from +x towards +y,
normalised into [-pi/2, pi/2).
"""

from __future__ import annotations

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def as_boxes(a: ArrayLike, width: int) -> FloatArray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, width))
    if arr.ndim != 2 or arr.shape[1] != width:
        raise ValueError(f"expected an (N, {width}) array of boxes, got shape {arr.shape}")
    return arr


def normalize_obb(obb: ArrayLike) -> FloatArray:
    """Swap length and width where needed so length >= width, and wrap the angle into [-pi/2, pi/2)."""
    o = as_boxes(obb, 5).copy()
    swap = o[:, 3] > o[:, 2]
    o[swap, 2], o[swap, 3] = o[swap, 3], o[swap, 2].copy()
    o[swap, 4] += np.pi / 2
    o[:, 4] = (o[:, 4] + np.pi / 2) % np.pi - np.pi / 2
    return o


def obb_to_corners(obb: ArrayLike) -> FloatArray:
    """(N, 5) oriented boxes -> (N, 4, 2) corners, in order around the rectangle."""
    o = as_boxes(obb, 5)
    cos, sin = np.cos(o[:, 4]), np.sin(o[:, 4])
    half_l = o[:, 2] / 2
    half_w = o[:, 3] / 2
    along = np.stack([cos * half_l, sin * half_l], axis=1)
    across = np.stack([-sin * half_w, cos * half_w], axis=1)
    centre = o[:, :2]
    return np.stack(
        [centre + along + across, centre - along + across, centre - along - across, centre + along - across], axis=1
    )


def corners_to_obb(corners: ArrayLike) -> FloatArray:
    """(N, 4, 2) rectangle corners (any order around) -> normalised (N, 5) oriented boxes."""
    c = np.asarray(corners, dtype=np.float64).reshape(-1, 4, 2)
    centre = c.mean(axis=1)
    edge_a = c[:, 1] - c[:, 0]
    edge_b = c[:, 2] - c[:, 1]
    len_a = np.hypot(edge_a[:, 0], edge_a[:, 1])
    len_b = np.hypot(edge_b[:, 0], edge_b[:, 1])
    angle = np.arctan2(edge_a[:, 1], edge_a[:, 0])
    return normalize_obb(np.column_stack([centre, len_a, len_b, angle]))


def points_to_obb(points: ArrayLike) -> FloatArray:
    """The minimum-area oriented rectangle around a set of (x, y) points, as one (5,) oriented box."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        raise ValueError("no points to fit an oriented box to")
    rect = shapely.oriented_envelope(shapely.MultiPoint(pts))
    if rect.geom_type != "Polygon":  # one point, or points on a line: give it a unit width
        xs, ys = pts[:, 0], pts[:, 1]
        dx, dy = xs.max() - xs.min(), ys.max() - ys.min()
        length = max(float(np.hypot(dx, dy)), 1.0)
        angle = float(np.arctan2(dy, dx)) if length > 1.0 else 0.0
        return normalize_obb([[xs.mean(), ys.mean(), length, 1.0, angle]])[0]
    ring = np.asarray(shapely.get_coordinates(rect))[:4]
    return corners_to_obb(ring[None])[0]


def obb_to_xyxy(obb: ArrayLike) -> FloatArray:
    corners = obb_to_corners(obb)
    if len(corners) == 0:
        return np.zeros((0, 4))
    return np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)


def xyxy_to_obb(xyxy: ArrayLike) -> FloatArray:
    b = as_boxes(xyxy, 4)
    return normalize_obb(
        np.column_stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1],
                         np.zeros(len(b))])
    )


def box_area(xyxy: ArrayLike) -> FloatArray:
    b = as_boxes(xyxy, 4)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def box_intersection(a: ArrayLike, b: ArrayLike) -> FloatArray:
    """(N, M) intersection areas of axis-aligned boxes."""
    a, b = as_boxes(a, 4), as_boxes(b, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    return wh[..., 0] * wh[..., 1]


def _ratio(inter: FloatArray, denom: FloatArray) -> FloatArray:
    out = np.zeros_like(inter)
    np.divide(inter, denom, out=out, where=denom > 0)
    return out


def box_iou(a: ArrayLike, b: ArrayLike, mode: str = "iou") -> FloatArray:
    """(N, M) overlap of axis-aligned boxes: `iou`, or `ios` (intersection over the smaller box)."""
    inter = box_intersection(a, b)
    area_a, area_b = box_area(a)[:, None], box_area(b)[None, :]
    denom = area_a + area_b - inter if mode == "iou" else np.minimum(area_a, area_b)
    return _ratio(inter, denom)


def obb_polygons(obb: ArrayLike) -> NDArray[np.object_]:
    return np.asarray(shapely.polygons(obb_to_corners(obb)), dtype=object)


def obb_iou(a: ArrayLike, b: ArrayLike, mode: str = "iou") -> FloatArray:
    """(N, M) exact overlap of oriented boxes (polygon intersection), computed only where the hulls meet."""
    a, b = as_boxes(a, 5), as_boxes(b, 5)
    out = np.zeros((len(a), len(b)))
    if len(a) == 0 or len(b) == 0:
        return out
    candidates = np.argwhere(box_intersection(obb_to_xyxy(a), obb_to_xyxy(b)) > 0)
    if len(candidates) == 0:
        return out
    poly_a, poly_b = obb_polygons(a), obb_polygons(b)
    ia, ib = candidates[:, 0], candidates[:, 1]
    inter = shapely.area(shapely.intersection(poly_a[ia], poly_b[ib]))
    area_a, area_b = a[ia, 2] * a[ia, 3], b[ib, 2] * b[ib, 3]
    denom = area_a + area_b - inter if mode == "iou" else np.minimum(area_a, area_b)
    out[ia, ib] = _ratio(inter, denom)
    return out


def nms(
    boxes: ArrayLike,
    scores: ArrayLike,
    iou_threshold: float,
    class_ids: ArrayLike | None = None,
    priority: ArrayLike | None = None,
) -> IntArray:
    """Greedy non-maximum suppression; returns kept indices, best first.

    `boxes` are (N, 4) axis-aligned or (N, 5) oriented. With `class_ids`, boxes of different classes never
    suppress each other. `priority` (higher first) orders candidates before the score does. Each kept box is
    compared only with the candidates still standing, so the cost is O(N x kept), not O(N^2).
    """
    b = np.array(boxes, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(s) == 0:
        return np.zeros(0, dtype=np.int64)
    keys = (-s,) if priority is None else (-s, -np.asarray(priority, dtype=np.float64))
    order = np.lexsort(keys)
    oriented = b.shape[1] == 5
    if class_ids is not None:
        # Move each class far apart so boxes of different classes never overlap.
        span = float(np.abs(b[:, :4]).max() * 4 + 1.0)
        offset = np.asarray(class_ids, dtype=np.float64).reshape(-1) * span
        if oriented:
            b[:, 0] += offset
        else:
            b += offset[:, None]
    overlap = obb_iou if oriented else box_iou
    keep: list[int] = []
    remaining = order
    while remaining.size:
        best = remaining[0]
        keep.append(int(best))
        rest = remaining[1:]
        if rest.size == 0:
            break
        remaining = rest[overlap(b[best:best + 1], b[rest])[0] <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)
