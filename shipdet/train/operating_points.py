"""Operating points: what a model served at a threshold (one for all imagery, or one for the imagery the scale path
upsamples and one for the rest) gives on a split, and the lowest thresholds a false-alarm budget allows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from shipdet.detections import Detections
from shipdet.inference.operating_point import for_imagery, is_upsampled
from shipdet.metrics import CountsAtThreshold, false_alarms, lowest_conf_within_false_alarms, match_at


def served_thresholds(scales: Sequence[float], conf: float, conf_upsampled: float | None) -> list[float]:
    """Each image's threshold as the service would serve it: `conf_upsampled` where the image was upsampled."""
    return [for_imagery(s, conf, conf_upsampled) for s in scales]


def above(preds: Sequence[Detections], thresholds: Sequence[float]) -> list[Detections]:
    return [p[np.flatnonzero(p.score >= t)] for p, t in zip(preds, thresholds, strict=True)]


def thresholds_for_false_alarms(preds: list[Detections], truths: list[Detections], scales: Sequence[float],
                                budget: float, iou: float, areas: Sequence[float]) -> dict[str, Any]:
    """The lowest threshold within `budget` false alarms per ship-free image over all images, and, where some
    images were upsampled, one for the upsampled images and one for the others, each within the budget on its own
    (a single threshold lets one domain spend the budget the other did not)."""
    out: dict[str, Any] = {"threshold_for_false_alarms": None, "thresholds_for_false_alarms_by_scale": None}
    one = lowest_conf_within_false_alarms(preds, truths, budget)
    if one is not None:
        out["threshold_for_false_alarms"] = {"max_per_image": budget,
                                             **operating_point(preds, truths, one, iou, areas)}
    upsampled = [is_upsampled(s) for s in scales]
    if any(upsampled) and not all(upsampled):
        native, coarse = ([i for i, u in enumerate(upsampled) if u == want] for want in (False, True))
        native_conf, coarse_conf = (lowest_conf_within_false_alarms([preds[i] for i in idx],
                                                                    [truths[i] for i in idx], budget)
                                    for idx in (native, coarse))
        if native_conf is not None and coarse_conf is not None:
            thresholds = served_thresholds(scales, native_conf, coarse_conf)
            out["thresholds_for_false_alarms_by_scale"] = {
                "max_per_image": budget, **operating_point(preds, truths, thresholds, iou, areas),
                "conf": native_conf, "conf_upsampled": coarse_conf,
                "upsampled": operating_point([preds[i] for i in coarse], [truths[i] for i in coarse], coarse_conf,
                                             iou, [areas[i] for i in coarse]),
                "native": operating_point([preds[i] for i in native], [truths[i] for i in native], native_conf,
                                          iou, [areas[i] for i in native])}
    return out


def operating_point(preds: list[Detections], truths: list[Detections], conf: float | Sequence[float], iou: float,
                    areas: Sequence[float]) -> dict[str, Any]:
    """Precision, recall, F1 and false alarms at one threshold (or one per image): what a model served at `conf`
    would give. F1 on the images with ships is what F1 would be without a single false alarm on a ship-free image:
    where it too falls short of a target, the false alarms are not what holds F1 down."""
    thresholds = [conf] * len(preds) if isinstance(conf, float | int) else list(conf)
    kept = above(preds, thresholds)
    counts, _ = match_at(kept, truths, 0.0, iou)
    fa = false_alarms(kept, truths, areas)
    with_ships = CountsAtThreshold(counts.tp, counts.fp - int(fa["false_positives"] or 0), counts.fn)
    return {"conf": conf if isinstance(conf, float | int) else None,  # one per image: the caller says which
            "precision": counts.precision, "recall": counts.recall, "f1": counts.f1,
            "false_alarms_per_image": fa["per_image"], "false_alarms": fa["false_positives"],
            "f1_images_with_ships": with_ships.f1}
