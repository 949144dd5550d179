"""Whole-scene evaluation through the re-scoring path (windows, resampling, seam merge), at several resampling
factors: how the working scale for coarse imagery (Sentinel-2 at 10 m) is chosen from figures, not guessed.

Truth comes from the published COCO file on the scenes' own pixel grid (tight boxes of the masks); a scene is
scored exactly as `shipdet rescore` scores it, with the resampling factor fixed for the comparison.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shipdet.detections import Detections
from shipdet.errors import DatasetFormatError, DatasetNotFoundError
from shipdet.metrics import match_at, recall_by_size

SMALL_NATIVE_PX = 16.0


def scene_truth(annotations: Path, scene_id: str) -> Detections:
    """Axis-aligned truth of one scene (its COCO image's stem starts with the scene id, e.g. `klang_rgb.tiff`)."""
    from shipdet.datasets.classmap import ClassMap
    from shipdet.datasets.coco import coco_detections

    coco = json.loads(annotations.read_text())
    images = [im for im in coco["images"] if Path(str(im["file_name"])).stem.startswith(scene_id)]
    if len(images) != 1:
        raise DatasetFormatError(f"{annotations}: {len(images)} images match scene {scene_id!r}, expected one")
    image = images[0]
    anns = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
    categories = {int(c["id"]): str(c["name"]) for c in coco.get("categories", [])}
    dets, _ = coco_detections(anns, int(image["height"]), int(image["width"]), ClassMap.parse(None), categories)
    return Detections(dets.xyxy, dets.score, dets.class_id, class_names=dets.class_names)


def evaluate_scenes(model: Path, annotations: Path, scene_dirs: Sequence[Path], factors: Sequence[float | None],
                    conf: float | None = None, iou: float = 0.3, overlap: int = 128, views: int | None = None,
                    nms_iou: float | None = None) -> list[dict[str, Any]]:
    """One row per factor: precision, recall, F1 at `iou`, recall of ships under 16 native pixels, counts. A
    factor of None is each scene's own, as the scale path chooses it from the scene's GSD (what `shipdet rescore`
    serves).
    `conf`, `views`, `nms_iou`: default, the model's operating point (as `shipdet rescore` scores: a factor above 1
    at the model's threshold and views for upsampled imagery where it records them)."""
    from shipdet.inference.engine import Engine
    from shipdet.rescore.params import RescoreParams
    from shipdet.rescore.scene import open_scene
    from shipdet.rescore.scoring import detect_scene, scoring_conf, scoring_views
    from shipdet.rescore.sources import resolve_sources

    engine = Engine(model, providers=["cpu"])
    nms_iou = engine.info.default_iou if nms_iou is None else nms_iou
    sources = resolve_sources([str(d) for d in scene_dirs])
    if not sources:
        raise DatasetNotFoundError(f"no scene in {', '.join(map(str, scene_dirs))}", "give the port folders")
    truths = [scene_truth(annotations, s.scene_id) for s in sources]
    rows = []
    for factor in factors:
        params = RescoreParams(conf=conf, iou=nms_iou, overlap=overlap, scale=factor, views=views)
        preds, tiles, used = [], 0, []
        for source in sources:
            scene = open_scene(source)
            try:
                scored = detect_scene(engine, scene, params)
            finally:
                scene.close()
            preds.append(scored.detections)
            tiles += scored.tiles
            used.append((scored.factor, scored.gsd_m))
        # each scene was cut at its own factor's threshold and views (one for all where the factor is fixed)
        scored_conf = min(scoring_conf(engine, params, f) for f, _ in used)
        scored_views = max(scoring_views(engine, params, f) for f, _ in used)
        counts, found = match_at(preds, truths, scored_conf, iou)
        small = [b for b in recall_by_size(truths, found, [0, SMALL_NATIVE_PX]) if b["to"] == SMALL_NATIVE_PX]
        rows.append({"factor": factor, "scene_factors": [f for f, _ in used],
                     "scored_gsd_m": [None if g is None else g / f for f, g in used],
                     "conf": scored_conf, "views": scored_views, "nms_iou": nms_iou,
                     "scenes": len(sources), "ships": int(sum(len(t) for t in truths)), "tiles": tiles,
                     "tp": counts.tp, "fp": counts.fp, "fn": counts.fn,
                     "precision": counts.precision, "recall": counts.recall, "f1": counts.f1,
                     "recall_ci95": recall_interval(counts.tp, counts.tp + counts.fn),
                     "small_ships": int(small[0]["ships"]) if small else 0,
                     "small_recall": float(small[0]["recall"]) if small else float("nan"),
                     "per_scene_recall": {s.scene_id: float(np.mean(f)) if len(f) else None
                                          for s, f in zip(sources, found, strict=True)}})
    engine.close()
    return rows


def recall_interval(found: int, ships: int) -> tuple[float, float] | None:
    """95 % Wilson interval of a recall of `found` of `ships`: two held-out ports hold 24 ships, and 5 of 24 is
    anything from 0.09 to 0.40."""
    from scipy.stats import binomtest

    if ships == 0:
        return None
    ci = binomtest(found, ships).proportion_ci(0.95, method="wilson")
    return float(ci.low), float(ci.high)


def scenes_markdown(rows: list[dict[str, Any]], model: Path, iou: float) -> str:
    scenes = ", ".join(rows[0]["per_scene_recall"]) if rows else ""
    nms = f", NMS IoU {rows[0]['nms_iou']}" if rows and "nms_iou" in rows[0] else ""
    lines = [f"# Whole scenes through the scale path: `{model.name}`", "",
             f"Scenes: {scenes}; {rows[0]['ships'] if rows else 0} ships{nms}, match IoU {iou}; each window scored "
             "in the views given, fused.", "",
             "| factor | GSD scored (10 m scenes) | conf | views | tiles | P | R | found (R, 95 % interval) | F1 "
             "| R < 16 native px (ships) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {_factor(r)} | {_scored_gsd(r)} | {r['conf']:g} | {r.get('views', 1)} | {r['tiles']} | "
              f"{r['precision']:.3f} | "
              f"{r['recall']:.3f} | {_found(r)} | {r['f1']:.3f} | {r['small_recall']:.2f} ({r['small_ships']}) |"
              for r in rows]
    return "\n".join([*lines, ""])


def _found(row: dict[str, Any]) -> str:
    ci = row.get("recall_ci95")
    return f"{row['tp']} of {row['ships']}" + (f" ({ci[0]:.2f}-{ci[1]:.2f})" if ci else "")


def _factor(row: dict[str, Any]) -> str:
    if row["factor"] is not None:
        return f"{row['factor']:g}"
    used = row["scene_factors"]
    return f"each scene's own (x{min(used):.2f}-x{max(used):.2f})"


def _scored_gsd(row: dict[str, Any]) -> str:
    if row["factor"] is not None:
        return f"{10 / row['factor']:.2f} m"
    known = [g for g in row.get("scored_gsd_m", []) if g is not None]
    return f"{min(known):.2f}-{max(known):.2f} m" if known else "unknown"
