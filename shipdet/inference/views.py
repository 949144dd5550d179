"""Scoring a tile in several views (flips and quarter turns) and fusing them: test-time augmentation.

Overhead imagery has no up: a ship seen mirrored or turned is the same ship, but a small detector does not score it
the same. Scoring each tile in `n` views of the dihedral group and averaging each ship's score over the views (a
view that missed it adds 0) ranks ships above clutter that only one view believes in (docs/default-model/
measured.md has the figures and the throughput it costs: n inferences a tile).

A view is (mirror, quarter turns): the tile mirrored left-right if `mirror`, then turned `turns` x 90 degrees
counter-clockwise (`numpy.rot90`). The first 2 and 4 views keep the tile's shape (the flips); 8 is the whole group.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from shipdet.detections import Detections
from shipdet.geometry import box_iou, obb_iou
from shipdet.inference.detector import Detector, ModelDescription
from shipdet.inference.postprocess import DEFAULT_MAX_DET

View = tuple[bool, int]
VIEWS: tuple[View, ...] = ((False, 0), (True, 0), (True, 2), (False, 2), (False, 1), (False, 3), (True, 1), (True, 3))
VIEW_COUNTS = (1, 2, 4, 8)
FUSION_IOU = 0.55  # two views' boxes of one ship overlap far more; neighbours moored side by side far less


def check_view_option(count: int | None, option: str = "--views") -> None:
    """A view count given on a command line that is not offered: one usage line, before any work."""
    from shipdet.errors import ConfigError

    if count is not None and count not in VIEW_COUNTS:
        raise ConfigError(f"{option} {count} is not one of {', '.join(map(str, VIEW_COUNTS))}", f"e.g. {option} 2")


def views_for(count: int) -> tuple[View, ...]:
    if count not in VIEW_COUNTS:
        raise ValueError(f"views must be one of {', '.join(map(str, VIEW_COUNTS))}, not {count}")
    return VIEWS[:count]


def view_pixels(pixels: NDArray[np.uint8], view: View) -> NDArray[np.uint8]:
    mirror, turns = view
    out = pixels[:, ::-1] if mirror else pixels
    return np.ascontiguousarray(np.rot90(out, turns)) if turns or mirror else pixels


def _to_original(x: NDArray[np.float64], y: NDArray[np.float64], view: View, width: int, height: int
                 ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Points of a view back in the original tile (`width` x `height`): the inverse of `view_pixels`."""
    mirror, turns = view
    if turns == 1:
        x, y = width - y, x
    elif turns == 2:
        x, y = width - x, height - y
    elif turns == 3:
        x, y = y, height - x
    return (width - x if mirror else x), y


def unview(dets: Detections, view: View, width: int, height: int) -> Detections:
    """Detections found in a view, in the pixels of the original `width` x `height` tile."""
    if view == (False, 0) or len(dets) == 0:
        return dets
    x, y = _to_original(dets.xyxy[:, [0, 2]], dets.xyxy[:, [1, 3]], view, width, height)
    xyxy = np.stack([x.min(1), y.min(1), x.max(1), y.max(1)], axis=1)
    obb = None
    if dets.obb is not None:
        cx, cy = _to_original(dets.obb[:, 0], dets.obb[:, 1], view, width, height)
        ux, uy = _to_original(dets.obb[:, 0] + np.cos(dets.obb[:, 4]), dets.obb[:, 1] + np.sin(dets.obb[:, 4]),
                              view, width, height)
        angle = (np.arctan2(uy - cy, ux - cx) + np.pi / 2) % np.pi - np.pi / 2  # a box's axis has no direction
        obb = np.stack([cx, cy, dets.obb[:, 2], dets.obb[:, 3], angle], axis=1)
    return Detections(xyxy, dets.score, dets.class_id, obb, dets.class_names, dict(dets.data))


def fuse_views(found: Sequence[Detections], iou: float = FUSION_IOU) -> Detections:
    """One ship per cluster of boxes across views (at most one box from each view, of its class): the mean of its
    scores over all views (a view that missed it adds 0), the score-weighted mean box. Oriented boxes keep the
    best view's box: angles near the wrap do not average."""
    count = len(found)
    parts = Detections.concatenate(found)
    if count == 1 or len(parts) == 0:
        return parts
    view_of = np.concatenate([np.full(len(d), k) for k, d in enumerate(found)])
    overlap = obb_iou(parts.obb, parts.obb) if parts.obb is not None else box_iou(parts.xyxy, parts.xyxy)
    same = (overlap >= iou) & (parts.class_id[:, None] == parts.class_id[None, :])
    free = np.ones(len(parts), dtype=bool)
    keep, scores, boxes = [], [], []
    for i in np.argsort(-parts.score, kind="stable"):
        if not free[i]:
            continue
        members = [i]
        for k in range(count):
            if k == view_of[i]:
                continue
            candidates = np.flatnonzero(same[i] & free & (view_of == k))
            if len(candidates):
                members.append(candidates[np.argmax(parts.score[candidates])])
        free[members] = False
        weights = parts.score[members]
        keep.append(i)
        scores.append(weights.sum() / count)
        boxes.append((parts.xyxy[members] * weights[:, None]).sum(0) / max(weights.sum(), 1e-12))
    fused = parts[np.asarray(keep)]
    xyxy = fused.xyxy if fused.obb is not None else np.asarray(boxes)
    return Detections(xyxy, np.asarray(scores), fused.class_id, fused.obb, fused.class_names, dict(fused.data))


def view_conf(conf: float, count: int) -> float:
    """The threshold each view is decoded at: a ship no view scores `conf / count` cannot reach `conf` fused."""
    return conf / count


def detect_in_views(detector: Detector, images: Sequence[NDArray[np.uint8]], count: int, conf: float, iou: float,
                    max_det: int = DEFAULT_MAX_DET) -> list[Detections]:
    """Each image scored in `count` views (one batch), fused, kept at `conf`: the best `max_det` of each."""
    chosen = views_for(count)
    if count == 1:
        return detector.detect(images, conf=conf, iou=iou)
    viewed = [view_pixels(im, v) for im in images for v in chosen]
    found = detector.detect(viewed, conf=view_conf(conf, count), iou=iou)
    out = []
    for n, im in enumerate(images):
        height, width = im.shape[:2]
        per_view = [unview(found[n * count + k], v, width, height) for k, v in enumerate(chosen)]
        out.append(keep_best(fuse_views(per_view), conf, max_det)[0])
    return out


def keep_best(found: Detections, conf: float, max_det: int) -> tuple[Detections, bool]:
    """The best `max_det` of fused detections at `conf`, and whether more than that reached it."""
    kept = found[np.argsort(-found.score, kind="stable")]
    kept = kept[kept.score >= conf]
    return kept[:max_det], len(kept) > max_det


class ViewedDetector:
    """A detector that scores every image in `count` views and fuses them (a `Detector` itself)."""

    def __init__(self, detector: Detector, count: int) -> None:
        views_for(count)  # refuses a count that is not one of VIEW_COUNTS
        self.detector = detector
        self.count = count

    @property
    def info(self) -> ModelDescription:
        return self.detector.info

    @property
    def input_size(self) -> tuple[int, int]:
        return self.detector.input_size

    def detect(self, images: Sequence[NDArray[np.uint8]], conf: float = 0.25, iou: float = 0.45
               ) -> list[Detections]:
        return detect_in_views(self.detector, images, self.count, conf, iou)

    def for_factor(self, factor: float) -> ViewedDetector:
        graph = self.detector.for_factor(factor)
        return self if graph is self.detector else ViewedDetector(graph, self.count)
