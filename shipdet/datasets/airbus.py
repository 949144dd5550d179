"""Airbus Ship Detection Challenge: `train_ship_segmentations_v2.csv` (run-length masks) + 768x768 JPEGs.

Each mask gives two labels: the oriented box is its minimum-area rectangle, the axis-aligned box its own tight
box (not the envelope of the oriented box, which for a diagonal ship is far looser than the mask).

RLE as published: `start length` pairs, 1-based starts, pixels numbered top to bottom, then left to right
(column-major); one row per ship; an image without ships has one row with an empty `EncodedPixels`.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from shipdet.datasets.images import read_rgb8
from shipdet.datasets.writer import ConversionReport, YoloSetWriter
from shipdet.detections import Detections
from shipdet.errors import DatasetFormatError, DatasetNotFoundError, ShipdetError
from shipdet.geometry import points_to_obb
from shipdet.progress import progress

AIRBUS_SHAPE = (768, 768)
AIRBUS_GSD_M = 1.5


def rle_decode(rle: str, shape: tuple[int, int] = AIRBUS_SHAPE) -> NDArray[np.bool_]:
    """Decode one Airbus RLE string into a (height, width) boolean mask."""
    height, width = shape
    values = rle.split()
    if len(values) % 2:
        raise ValueError("odd number of values (RLE is `start length` pairs)")
    try:
        pairs = np.asarray(values, dtype=np.int64).reshape(-1, 2)
    except ValueError as exc:
        raise ValueError(f"non-integer RLE value ({exc})") from None
    starts, lengths = pairs[:, 0] - 1, pairs[:, 1]
    if (starts < 0).any() or (lengths <= 0).any() or (starts + lengths > height * width).any():
        raise ValueError(f"run outside the {height}x{width} image or of non-positive length")
    flat = np.zeros(height * width, dtype=bool)
    for s, n in zip(starts, lengths, strict=True):
        flat[s:s + n] = True
    return flat.reshape(width, height).T  # column-major numbering


def rle_encode(mask: NDArray[np.bool_]) -> str:
    """Encode a boolean mask as Airbus RLE (the inverse of `rle_decode`)."""
    flat = np.concatenate([[0], mask.T.reshape(-1).astype(np.int8), [0]])
    edges = np.flatnonzero(flat[1:] != flat[:-1])
    starts, ends = edges[::2], edges[1::2]
    return " ".join(f"{s + 1} {e - s}" for s, e in zip(starts, ends, strict=True))


def mask_to_xyxy(mask: NDArray[np.bool_]) -> NDArray[np.float64]:
    """The mask's tight axis-aligned box over whole pixels: x1, y1, x2, y2 (x2, y2 one past the last pixel)."""
    rows, cols = np.nonzero(mask)
    if len(rows) == 0:
        raise ValueError("empty mask")
    return np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=np.float64)


def mask_to_obb(mask: NDArray[np.bool_]) -> NDArray[np.float64]:
    """The minimum-area oriented box around the mask's pixels (their full extent, not just their centres)."""
    rows, cols = np.nonzero(mask)
    if len(rows) == 0:
        raise ValueError("empty mask")
    # Corners of every boundary pixel: the rectangle then covers whole pixels, not only their centres.
    pts = np.concatenate([np.column_stack([cols + dx, rows + dy]) for dx in (0, 1) for dy in (0, 1)])
    return points_to_obb(pts)


def read_airbus_csv(csv_path: Path, strict: bool = False) -> tuple[dict[str, list[str]], list[str]]:
    """Image id -> its RLE strings (empty list: no ships), and the malformed rows as error messages."""
    if not csv_path.is_file():
        raise DatasetNotFoundError(f"Airbus CSV not found at {csv_path}",
                                   "pass the path of train_ship_segmentations_v2.csv")
    ships: dict[str, list[str]] = defaultdict(list)
    problems: list[str] = []
    with open(csv_path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["ImageId", "EncodedPixels"]:
            raise DatasetFormatError(f"{csv_path}: header {header!r} is not `ImageId,EncodedPixels`")
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            image_id = row[0].strip()
            rle = row[1].strip() if len(row) > 1 else ""
            message = None
            if len(row) != 2 or not image_id:
                message = f"{csv_path}:{line}: expected `ImageId,EncodedPixels`, got {len(row)} fields"
            elif rle:
                try:
                    rle_decode(rle)
                except ValueError as exc:
                    message = f"{csv_path}:{line}: image {image_id}: bad RLE: {exc}"
            if message:
                if strict:
                    raise DatasetFormatError(message, "fix the row, or drop --strict to skip it")
                problems.append(message)
                continue
            ships[image_id]  # registers images without ships
            if rle:
                ships[image_id].append(rle)
    return dict(ships), problems


def convert_airbus(csv_path: Path, images_dir: Path, out: Path, empty_fraction: float = 0.25,
                   seed: int = 0, strict: bool = False, val_fraction: float = 0.2) -> ConversionReport:
    """Convert an Airbus set; keep `empty_fraction` of the ship-free images (deterministic for `seed`)."""
    if not images_dir.is_dir():
        raise DatasetNotFoundError(f"Airbus images folder not found at {images_dir}", "pass the train_v2 folder")
    ships, problems = read_airbus_csv(csv_path, strict)
    writer = YoloSetWriter(out, {0: "ship"}, source="airbus", gsd_m=AIRBUS_GSD_M)
    for message in problems:
        writer.skip(message)
    rng = random.Random(seed)
    for image_id in progress(sorted(ships), desc="airbus", total=len(ships), unit="image"):
        rles = ships[image_id]
        if not rles and rng.random() >= empty_fraction:
            continue
        path = images_dir / image_id
        if not path.is_file():
            writer.skip(f"{csv_path}: image {image_id} listed but missing from {images_dir}")
            continue
        try:
            image = read_rgb8(path)
        except ShipdetError as exc:
            writer.skip(str(exc))
            continue
        shape = image.shape[:2]
        masks = [rle_decode(r, shape) for r in rles]
        obb = np.array([mask_to_obb(m) for m in masks]).reshape(-1, 5)
        tight = np.array([mask_to_xyxy(m) for m in masks]).reshape(-1, 4)
        dets = Detections.from_obb(obb, np.ones(len(obb)), np.zeros(len(obb), dtype=np.int64), xyxy=tight)
        writer.add(Path(image_id).stem, image, dets, group=Path(image_id).stem, oriented=True)
    return writer.close(val_fraction, seed)
