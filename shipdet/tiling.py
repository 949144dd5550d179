"""Windows over a large image and the merge of their detections back into one seamless set."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from shipdet.detections import Detections
from shipdet.geometry import box_iou, nms, obb_iou, points_to_obb


@dataclass(frozen=True)
class Window:
    """A window of an image in pixels: column and row offset, width and height."""

    col: int
    row: int
    width: int
    height: int

    @property
    def bounds(self) -> tuple[int, int, int, int]:
        return self.col, self.row, self.col + self.width, self.row + self.height


GRIDS = ("even", "stride")


def _starts(extent: int, size: int, stride: int, grid: str = "even") -> list[int]:
    """Window starts along one axis, as few as the stride allows (both grids give the same count).

    `even` spreads them evenly from 0 to `extent - size`, so every seam gets the same, larger overlap and no
    window nearly repeats another. `stride` steps by `stride` and shifts the last window inward to the edge,
    as SAHI's slicer does (its windows exactly), for results comparable with SAHI runs.
    """
    if extent <= size:
        return [0]
    if grid == "stride":
        return [*range(0, extent - size, stride), extent - size]
    count = math.ceil((extent - size) / stride) + 1
    return [round(i * (extent - size) / (count - 1)) for i in range(count)]


def tile_windows(width: int, height: int, tile: int, overlap: int, grid: str = "even") -> list[Window]:
    """Windows of `tile` x `tile` pixels covering a `width` x `height` image, row by row.

    Every pixel is covered, every window lies inside the image (edge windows are shifted inward, never padded;
    an image smaller than a tile gets one window of its own size), consecutive windows overlap by at least
    `overlap` pixels, and the order is deterministic. `grid`: `even` or `stride` (SAHI's), see `_starts`.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width} x {height}")
    if tile <= 0 or not 0 <= overlap < tile:
        raise ValueError(f"need tile > 0 and 0 <= overlap < tile, got tile={tile}, overlap={overlap}")
    if grid not in GRIDS:
        raise ValueError(f"unknown grid {grid!r}: use one of {', '.join(GRIDS)}")
    stride = tile - overlap
    return [
        Window(col, row, min(tile, width), min(tile, height))
        for row in _starts(height, tile, stride, grid)
        for col in _starts(width, tile, stride, grid)
    ]


def touches_inner_edge(
    xyxy: NDArray[np.float64], window: Window, image_size: tuple[int, int], margin: float
) -> NDArray[np.bool_]:
    """Which boxes (scene pixels) touch an edge of `window` that is not also the image border.

    Such a box may be a ship cut by the window; a box touching the image border is as whole as it will get.
    """
    x1, y1, x2, y2 = window.bounds
    width, height = image_size
    cut = np.zeros(len(xyxy), dtype=bool)
    if x1 > 0:
        cut |= xyxy[:, 0] <= x1 + margin
    if y1 > 0:
        cut |= xyxy[:, 1] <= y1 + margin
    if x2 < width:
        cut |= xyxy[:, 2] >= x2 - margin
    if y2 < height:
        cut |= xyxy[:, 3] >= y2 - margin
    return cut


def _join_cut_pieces(merged: Detections, cut_idx: NDArray[np.int64], window_of: NDArray[np.int64],
                     windows: Sequence[Window], seam_overlap: float) -> Detections:
    """Join pieces of one ship that every window cut: two cut boxes of the same class from different windows
    are one ship when, inside the region their windows share, they cover the same pixels."""
    parent = {int(i): int(i) for i in cut_idx}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    boxes = merged.xyxy
    for a_pos, a in enumerate(cut_idx):
        for b in cut_idx[a_pos + 1:]:
            wa, wb = windows[window_of[a]], windows[window_of[b]]
            if window_of[a] == window_of[b] or merged.class_id[a] != merged.class_id[b]:
                continue
            shared = np.array([max(wa.col, wb.col), max(wa.row, wb.row), min(wa.col + wa.width, wb.col + wb.width),
                               min(wa.row + wa.height, wb.row + wb.height)], dtype=np.float64)
            if shared[2] <= shared[0] or shared[3] <= shared[1]:
                continue
            clip = np.clip(np.stack([boxes[a], boxes[b]]), shared[[0, 1, 0, 1]], shared[[2, 3, 2, 3]])
            areas = np.clip(clip[:, 2] - clip[:, 0], 0, None) * np.clip(clip[:, 3] - clip[:, 1], 0, None)
            inter = box_iou(clip[:1], clip[1:], mode="ios")[0, 0] if areas.min() > 0 else 0.0
            if inter >= seam_overlap:
                parent[root(int(a))] = root(int(b))
    groups: dict[int, list[int]] = {}
    for i in cut_idx:
        groups.setdefault(root(int(i)), []).append(int(i))
    joined = []
    for members in groups.values():
        best = members[int(np.argmax(merged.score[members]))]
        piece = merged[[best]]
        if len(members) > 1:
            if piece.obb is not None:
                piece = Detections.from_obb([points_to_obb(merged[members].corners().reshape(-1, 2))],
                                            piece.score, piece.class_id, piece.class_names)
            else:
                sub = merged.xyxy[members]
                piece.xyxy = np.concatenate([sub[:, :2].min(axis=0), sub[:, 2:].max(axis=0)])[None]
        joined.append(piece)
    return Detections.concatenate(joined) if joined else merged[np.zeros(0, dtype=np.int64)]


def merge_windows(
    per_window: Sequence[tuple[Window, Detections]],
    image_size: tuple[int, int],
    iou_threshold: float = 0.5,
    seam_overlap: float = 0.6,
    edge_margin: float = 2.0,
) -> Detections:
    """Merge detections of overlapping windows (already in scene pixels) into one set.

    A ship seen whole in one window and cut in another is kept from the window that holds it whole: a cut box
    is dropped when most of it (intersection over the smaller box >= `seam_overlap`) lies inside a whole box
    of the same class. A ship cut in every window that sees it is joined from its pieces. Remaining duplicates
    (a ship whole in two windows) go through class-aware NMS at `iou_threshold`, preferring whole boxes.
    """
    windows = [w for w, _ in per_window]
    names = next((d.class_names for _, d in per_window), None)
    oriented = any(d.obb is not None for _, d in per_window)
    parts = [(k, d) for k, (_, d) in enumerate(per_window) if len(d)]
    if not parts:
        return Detections.empty(oriented=oriented, class_names=names)
    cut = np.concatenate([touches_inner_edge(d.xyxy, windows[k], image_size, edge_margin) for k, d in parts])
    window_of = np.concatenate([np.full(len(d), k) for k, d in parts])
    merged = Detections.concatenate([d for _, d in parts])
    overlap_fn = obb_iou if merged.obb is not None else box_iou
    boxes = merged.obb if merged.obb is not None else merged.xyxy

    whole_idx, cut_idx = np.flatnonzero(~cut), np.flatnonzero(cut)
    if len(whole_idx) and len(cut_idx):
        ios = overlap_fn(boxes[cut_idx], boxes[whole_idx], mode="ios")
        same_class = merged.class_id[cut_idx][:, None] == merged.class_id[whole_idx][None, :]
        cut_idx = cut_idx[~((ios >= seam_overlap) & same_class).any(axis=1)]
    pieces = _join_cut_pieces(merged, cut_idx, window_of, windows, seam_overlap)
    candidates = Detections.concatenate([merged[whole_idx], pieces])
    is_whole = np.r_[np.ones(len(whole_idx)), np.zeros(len(pieces))]
    cand_boxes = candidates.obb if candidates.obb is not None else candidates.xyxy
    keep = nms(cand_boxes, candidates.score, iou_threshold, candidates.class_id, priority=is_whole)
    return candidates[np.sort(keep)]
