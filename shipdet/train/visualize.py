"""Pictures of a model's detections against the ground truth, for reports and the docs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from shipdet.detections import Detections


def draw(image: np.ndarray, truth: Detections, pred: Detections, conf: float) -> Image.Image:
    """Ground truth in green, predictions at or above `conf` in orange with their scores."""
    canvas = Image.fromarray(image).convert("RGB")
    pen = ImageDraw.Draw(canvas)
    width = max(1, round(max(canvas.size) / 400))
    for corners in truth.corners():
        pen.polygon([tuple(p) for p in corners], outline=(60, 220, 60), width=width)
    keep = pred[np.flatnonzero(pred.score >= conf)]
    for corners, score in zip(keep.corners(), keep.score, strict=True):
        pen.polygon([tuple(p) for p in corners], outline=(255, 140, 0), width=width)
        x, y = corners.min(axis=0)
        pen.text((x, max(0.0, y - 11)), f"{score:.2f}", fill=(255, 140, 0))
    return canvas


def contact_sheet(images: Sequence[np.ndarray], truths: Sequence[Detections], preds: Sequence[Detections],
                  conf: float, path: Path, cell: int = 400, columns: int = 3) -> Path:
    """Several drawn images on one PNG, each scaled into a `cell` x `cell` square."""
    rows = (len(images) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * cell, rows * cell), (24, 24, 24))
    for i, (img, t, p) in enumerate(zip(images, truths, preds, strict=True)):
        drawn = draw(img, t, p, conf)
        drawn.thumbnail((cell, cell))
        sheet.paste(drawn, ((i % columns) * cell + (cell - drawn.width) // 2,
                            (i // columns) * cell + (cell - drawn.height) // 2))
    sheet.save(path)
    return path
