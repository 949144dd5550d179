"""Corrections become training data: each reviewed detection gives a chip of the scene around it, at the scale
the model works at. A confirmed or relabelled ship is a positive; a rejected one a hard negative. Every other
detection of the run inside the chip that no one rejected is labelled too (the model called it a ship and no
reviewer said otherwise). A YOLO set with its manifest, split by scene, that `datasets merge` and `train` take."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from shipdet.datasets.writer import ConversionReport, YoloSetWriter
from shipdet.detections import Detections
from shipdet.review.evidence import RunFolder
from shipdet.review.store import CorrectionLog
from shipdet.scale import resample
from shipdet.tiling import Window

CHIP = 512  # the default model's input size


def review_set(run_dir: Path, out: Path, chip: int = CHIP, val_fraction: float = 0.2, seed: int = 0
               ) -> ConversionReport:
    run = RunFolder(run_dir)
    latest = CorrectionLog(run_dir).latest_by_detection()
    rejected = {k for k, c in latest.items() if c.action == "reject"}
    reviewed = {k: c for k, c in latest.items() if c.action in ("confirm", "relabel", "reject")}
    gsd = run.scenes.gsd_m.dropna() if "gsd_m" in run.scenes else []
    writer = YoloSetWriter(out, {0: "ship"}, "review", float(np.median(gsd)) if len(gsd) else None)
    labels: list[dict[str, str]] = []
    for (scene_id, det_id), correction in sorted(reviewed.items()):
        try:
            row = run.detection(scene_id, det_id)
            scene = run.open_scene(scene_id)
        except (KeyError, OSError) as exc:
            writer.skip(f"{scene_id} #{det_id}: {exc}")
            continue
        factor = float(run.scenes.loc[scene_id, "scale_factor"]) if "scale_factor" in run.scenes else 1.0
        factor = factor if np.isfinite(factor) and factor > 0 else 1.0
        try:
            side = max(1, round(chip / factor))  # native pixels that become `chip` at the working scale
            cx, cy = (row.x1 + row.x2) / 2, (row.y1 + row.y2) / 2
            col = int(np.clip(cx - side / 2, 0, max(scene.width - side, 0)))
            top = int(np.clip(cy - side / 2, 0, max(scene.height - side, 0)))
            window = Window(col, top, min(side, scene.width), min(side, scene.height))
            pixels = resample(scene.read_window(window), factor)
        finally:
            scene.close()
        inside = run.detections[(run.detections.scene_id == scene_id) & (run.detections.x2 > window.col) &
                                (run.detections.x1 < window.col + window.width) &
                                (run.detections.y2 > window.row) & (run.detections.y1 < window.row + window.height)]
        keep = [(str(s), int(d)) not in rejected for s, d in zip(inside.scene_id, inside.det_id, strict=True)]
        origin = np.array([window.col, window.row] * 2, dtype=float)
        extent = np.array([window.width, window.height] * 2, dtype=float)
        to_chip = np.array([pixels.shape[1] / window.width, pixels.shape[0] / window.height] * 2)
        boxes = np.clip(inside[keep][["x1", "y1", "x2", "y2"]].to_numpy(dtype=float) - origin, 0, extent) * to_chip
        dets = Detections(xyxy=boxes.reshape(-1, 4), score=np.ones(len(boxes)),
                          class_id=np.zeros(len(boxes), dtype=np.int64))
        name = f"{scene_id}_{det_id}_{correction.action}"
        writer.add(name, pixels, dets, group=scene_id, oriented=False)
        labels.append({"name": name, "action": correction.action, "label": correction.label or "",
                       "who": correction.who, "at": correction.at.isoformat()})
    report = writer.close(val_fraction, seed)
    with open(out / "review_labels.csv", "w", newline="") as fh:  # the reviewers' classes, beside the labels
        table = csv.DictWriter(fh, fieldnames=["name", "action", "label", "who", "at"])
        table.writeheader()
        table.writerows(labels)
    return report
