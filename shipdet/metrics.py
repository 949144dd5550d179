"""Detection metrics: COCO-style AP (101-point, as pycocotools), the Airbus F2 score, P/R/F1, recall by size.

Boxes are axis-aligned (N, 4) or oriented (N, 5); IoU follows the box kind. Inputs are per image:
ground truth `Detections` and predictions `Detections` (scores used for ranking).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from shipdet.detections import Detections
from shipdet.geometry import box_iou, obb_iou

IOU_THRESHOLDS = np.round(np.arange(0.5, 0.951, 0.05), 2)
COCO_MAX_DETS = 100  # pycocotools' cap of detections an image, made for photographs of a few objects
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def pairwise_iou(pred: Detections, truth: Detections) -> NDArray[np.float64]:
    if pred.obb is not None and truth.obb is not None:
        return obb_iou(pred.obb, truth.obb)
    return box_iou(pred.xyxy, truth.xyxy)


def _match(ious: NDArray[np.float64], threshold: float) -> NDArray[np.int64]:
    """pycocotools' greedy matching: predictions in score order each take the unmatched ground truth with the
    highest IoU >= threshold. Returns, per prediction, the matched ground-truth index or -1."""
    matched_gt = np.zeros(ious.shape[1], dtype=bool)
    out = np.full(ious.shape[0], -1, dtype=np.int64)
    for d in range(ious.shape[0]):
        best, best_iou = -1, min(threshold, 1 - 1e-10)
        for g in range(ious.shape[1]):
            if matched_gt[g] or ious[d, g] < best_iou:
                continue
            best, best_iou = g, ious[d, g]
        if best >= 0:
            matched_gt[best] = True
            out[d] = best
    return out


def average_precision(preds: Sequence[Detections], truths: Sequence[Detections], iou_thresholds: Sequence[float]
                      = tuple(IOU_THRESHOLDS), max_dets: int = COCO_MAX_DETS) -> dict[float, float]:
    """AP per IoU threshold, averaged over classes present in the ground truth (pycocotools' 101-point rule), from
    each image's `max_dets` highest-scoring detections."""
    classes = sorted({int(c) for t in truths for c in t.class_id})
    result = {}
    for thr in iou_thresholds:
        aps = []
        for c in classes:
            scores, hits, n_gt = [], [], 0
            for pred, truth in zip(preds, truths, strict=True):
                p = pred[np.flatnonzero(pred.class_id == c)]
                t = truth[np.flatnonzero(truth.class_id == c)]
                order = np.argsort(-p.score, kind="mergesort")[:max_dets]
                p = p[order]
                n_gt += len(t)
                matches = _match(pairwise_iou(p, t), thr) if len(p) and len(t) else np.full(len(p), -1)
                scores += p.score.tolist()
                hits += (matches >= 0).tolist()
            aps.append(_ap_from_ranked(np.array(scores), np.array(hits, dtype=bool), n_gt))
        result[float(thr)] = float(np.mean(aps)) if aps else 0.0
    return result


def _ap_from_ranked(scores: NDArray[np.float64], hits: NDArray[np.bool_], n_gt: int) -> float:
    if n_gt == 0 or len(scores) == 0:
        return 0.0
    order = np.argsort(-scores, kind="mergesort")
    tp = np.cumsum(hits[order])
    fp = np.cumsum(~hits[order])
    recall = tp / n_gt
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    idx = np.searchsorted(recall, RECALL_POINTS, side="left")
    sampled = np.where(idx < len(precision), precision[np.minimum(idx, len(precision) - 1)], 0.0)
    return float(sampled.mean())


def airbus_f2(pred: Detections, truth: Detections, beta: float = 2.0) -> float:
    """One image's Airbus challenge score: F2 averaged over IoU 0.5..0.95. An image without ships scores 1 when
    nothing is predicted and 0 otherwise, as the challenge counted empty images."""
    if len(truth) == 0 and len(pred) == 0:
        return 1.0
    if len(truth) == 0 or len(pred) == 0:
        return 0.0
    ious = pairwise_iou(pred[np.argsort(-pred.score, kind="mergesort")], truth)
    b2 = beta * beta
    scores = []
    for thr in IOU_THRESHOLDS:
        tp = int((_match(np.where(ious > thr, ious, 0.0), 1e-9) >= 0).sum())
        fp, fn = len(pred) - tp, len(truth) - tp
        scores.append((1 + b2) * tp / ((1 + b2) * tp + b2 * fn + fp))
    return float(np.mean(scores))


@dataclass
class CountsAtThreshold:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def match_at(preds: Sequence[Detections], truths: Sequence[Detections], conf: float, iou: float
             ) -> tuple[CountsAtThreshold, list[NDArray[np.bool_]]]:
    """TP/FP/FN of predictions above `conf` at IoU `iou` (same class), and per image which truths were found."""
    tp = fp = fn = 0
    found = []
    for pred, truth in zip(preds, truths, strict=True):
        p = pred[np.flatnonzero(pred.score >= conf)]
        p = p[np.argsort(-p.score, kind="mergesort")]
        ious = pairwise_iou(p, truth) if len(p) and len(truth) else np.zeros((len(p), len(truth)))
        ious = np.where(p.class_id[:, None] == truth.class_id[None, :], ious, 0.0)
        m = _match(ious, iou) if len(p) and len(truth) else np.full(len(p), -1)
        hit = np.zeros(len(truth), dtype=bool)
        hit[m[m >= 0]] = True
        tp += int(hit.sum())
        fp += int((m < 0).sum())
        fn += int((~hit).sum())
        found.append(hit)
    return CountsAtThreshold(tp, fp, fn), found


def recall_by_size(truths: Sequence[Detections], found: Sequence[NDArray[np.bool_]], edges: Sequence[float],
                   scale: Sequence[float] | None = None) -> list[dict[str, float]]:
    """Recall in bins of ship length (the box's longest side), in pixels or, with `scale` per image, metres."""
    sizes, hits = [], []
    for i, (truth, hit) in enumerate(zip(truths, found, strict=True)):
        if len(truth) == 0:
            continue
        if truth.obb is not None:
            length = truth.obb[:, 2]
        else:
            length = np.maximum(truth.xyxy[:, 2] - truth.xyxy[:, 0], truth.xyxy[:, 3] - truth.xyxy[:, 1])
        if scale is not None:
            if not np.isfinite(scale[i]):
                continue
            length = length * scale[i]
        sizes.append(length)
        hits.append(hit)
    if not sizes:
        return []
    size, hit = np.concatenate(sizes), np.concatenate(hits)
    bins = [*edges, np.inf]
    rows = []
    for lo, hi in zip([0.0, *edges], bins, strict=True):
        sel = (size >= lo) & (size < hi)
        rows.append({"from": float(lo), "to": float(hi), "ships": int(sel.sum()),
                     "recall": float(hit[sel].mean()) if sel.any() else float("nan")})
    return rows


def recall_by_crowding(truths: Sequence[Detections], found: Sequence[NDArray[np.bool_]], edges: Sequence[int]
                       ) -> list[dict[str, float]]:
    """Recall in bins of ships per image: a marina of hundreds of moored boats weighs on the overall recall as
    hundreds of single-ship chips do, and this says how much of a miss is such crowding."""
    counts = np.array([len(t) for t in truths])
    rows = []
    for lo, hi in zip([1, *edges], [*edges, np.inf], strict=True):
        sel = [i for i, n in enumerate(counts) if lo <= n < hi]
        ships = int(counts[sel].sum()) if sel else 0
        hits = int(sum(int(found[i].sum()) for i in sel))
        rows.append({"from": float(lo), "to": float(hi), "images": len(sel), "ships": ships,
                     "recall": hits / ships if ships else float("nan")})
    return rows


def lowest_conf_within_false_alarms(preds: Sequence[Detections], truths: Sequence[Detections],
                                    max_per_image: float, step: float = 0.01) -> float | None:
    """The lowest threshold on a grid of `step` at which the detections on ship-free images, every one a false
    alarm, number at most `max_per_image` per ship-free image: the operating threshold a false-alarm budget allows
    (None without ship-free images, or where not even the grid's last threshold meets it)."""
    empty = [i for i, t in enumerate(truths) if len(t) == 0]
    if not empty:
        return None
    scores = np.sort(np.concatenate([np.asarray(preds[i].score, dtype=np.float64) for i in empty]))
    for k in range(1, round(1 / step) + 1):
        conf = round(k * step, 6)
        alarms = len(scores) - int(np.searchsorted(scores, conf, side="left"))  # scores >= conf, as served
        if alarms <= max_per_image * len(empty) + 1e-9:  # 0.29 * 100 is 28.999...
            return conf
    return None


def false_alarms(kept: Sequence[Detections], truths: Sequence[Detections], areas_km2: Sequence[float]
                 ) -> dict[str, float | int | None]:
    """Detections on ship-free images (every one is a false alarm): per image, and per km2 over the images whose
    ground area is known (NaN elsewhere)."""
    empty = [i for i, t in enumerate(truths) if len(t) == 0]
    fp = int(sum(len(kept[i]) for i in empty))
    known = [i for i in empty if np.isfinite(areas_km2[i])]
    km2 = float(sum(areas_km2[i] for i in known))
    fp_known = int(sum(len(kept[i]) for i in known))
    return {"ship_free_images": len(empty), "false_positives": fp,
            "per_image": fp / len(empty) if empty else None,
            "ship_free_km2": km2, "per_km2": fp_known / km2 if km2 > 0 else None}
