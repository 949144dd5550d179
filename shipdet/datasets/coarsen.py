"""Coarse-imagery training chips simulated from fine ones: Sentinel-2 as the model sees it, from aerial chips.

Nine Sentinel-2 port scenes hold about 200 ships, too few to teach what a ship looks like at 10 m: a blob a few
pixels long, blurred by the sensor, then upsampled to the model's working scale by the scale path. Aerial chips
hold thousands of ships. Each chip is blurred and area-averaged until its median ship is as long as a Sentinel-2
ship (drawn log-uniformly from `lengths`, in coarse pixels), then resampled by `working_scale` exactly as
`shipdet rescore` resamples a 10 m scene: the model meets those ships at the sizes, and with the blur, that the
scale path gives it.

Only training images of a merged split are used, and the result is a train-only source (`merge --train-only`),
so validation is unchanged and no validation scene leaks into training through its coarse twin.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFilter

from shipdet.datasets.images import read_rgb8
from shipdet.datasets.merge import read_split, set_class_names
from shipdet.datasets.writer import ConversionReport, YoloSetWriter, read_manifest
from shipdet.detections import Detections
from shipdet.errors import ConfigError, DatasetNotFoundError
from shipdet.formats import from_yolo_lines
from shipdet.progress import progress
from shipdet.scale import resample

SOURCE = "coarse"
PSF_SIGMA = 0.5  # the sensor's blur in coarse pixels, on top of pixel averaging: an MTF of 0.25 at Nyquist
MIN_VISIBLE_PX = 3.0  # a ship shorter than this in coarse pixels is not labelled (Sentinel-2 truth starts at 5)
MAX_FACTOR = 0.5  # a chip whose ships are already small is not coarsened: it would hardly change


def _coarse(image: NDArray[np.uint8], factor: float) -> NDArray[np.uint8]:
    """Blurred by the sensor's PSF, then area-averaged by `factor` (< 1)."""
    blurred = Image.fromarray(image).filter(ImageFilter.GaussianBlur(PSF_SIGMA / factor))
    return resample(np.asarray(blurred), factor)


def coarsen_chip(image: NDArray[np.uint8], dets: Detections, target_px: float, working_scale: float
                 ) -> tuple[NDArray[np.uint8], Detections, float] | None:
    """`image` with its median ship `target_px` coarse pixels long, then resampled by `working_scale`; boxes
    follow exactly; and the factor used. None without ships, or when they are too small to be coarsened that
    far (factor above MAX_FACTOR)."""
    if not len(dets):
        return None
    lengths = np.maximum(dets.xyxy[:, 2] - dets.xyxy[:, 0], dets.xyxy[:, 3] - dets.xyxy[:, 1])
    factor = target_px / float(np.median(lengths))
    if factor > MAX_FACTOR:
        return None
    height, width = image.shape[:2]
    coarse = _coarse(image, factor)
    sx, sy = coarse.shape[1] / width, coarse.shape[0] / height
    visible = np.flatnonzero(lengths * min(sx, sy) >= MIN_VISIBLE_PX)
    fine = resample(coarse, working_scale)
    kept = dets[visible]
    return fine, kept.scaled(sx * fine.shape[1] / coarse.shape[1], sy * fine.shape[0] / coarse.shape[0]), factor


def coarsen_empty_chip(image: NDArray[np.uint8], factor: float, working_scale: float) -> NDArray[np.uint8]:
    """A ship-free chip through the same blur and scales: coarse imagery without ships, so that the model does
    not learn that blurred, upsampled imagery always holds a ship."""
    return resample(_coarse(image, factor), working_scale)


def _roots(merged: Path) -> dict[str, Path]:
    """The converted set folder of each source, from the image paths the merge listed."""
    roots: dict[str, Path] = {}
    for listing in ("train.txt", "val.txt"):
        for folder in {Path(line).parent.parent for line in (merged / listing).read_text().split()}:
            for row in read_manifest(folder / "manifest.csv")[:1]:
                roots[row["source"]] = folder
    return roots


def _train_images(merged: Path, sources: Sequence[str]) -> list[tuple[str, str, str]]:
    """(source, group, name) of the merged split's training images from `sources`."""
    return [(source, group, name) for source, group, name, side in read_split(merged)
            if side == "train" and source in sources]


def coarsen_set(merged: Path, out: Path, sources: Sequence[str], lengths: tuple[float, float] = (6.0, 40.0),
                working_scale: float = 4.0, limit: int = 1000, seed: int = 0, negatives: int = 0,
                negative_sources: Sequence[str] = ()) -> ConversionReport:
    """Write up to `limit` coarse twins of the training chips with ships of `sources`, then up to `negatives`
    of the ship-free training chips of `negative_sources` (each at a factor drawn from those the chips with ships
    got), as a set (source `coarse`, group `source/group` of the original chip)."""
    for name in ("split.csv", "train.txt", "val.txt"):
        if not (merged / name).is_file():
            raise DatasetNotFoundError(f"{merged} is not a merged set: {name} is missing",
                                       "give the folder `shipdet datasets merge` wrote")
    lo, hi = lengths
    if not 0 < lo <= hi:
        raise ConfigError(f"ship lengths must be 0 < low <= high, got {lo}-{hi}")
    if working_scale < 1:
        raise ConfigError(f"the working scale upsamples coarse imagery: it must be >= 1, got {working_scale}")
    roots = _roots(merged)
    missing = sorted((set(sources) | set(negative_sources)) - set(roots))
    if missing:
        raise DatasetNotFoundError(f"no source {missing} in {merged}", f"sources there: {sorted(roots)}")
    names = set_class_names(roots[sources[0]])
    chosen = _train_images(merged, sources)
    random.Random(seed).shuffle(chosen)
    rng = random.Random(seed + 1)
    writer = YoloSetWriter(out, names, source=SOURCE, gsd_m=10.0 / working_scale, scale=working_scale)
    bar = progress(chosen, desc="coarsen", total=len(chosen), unit="image")
    factors: list[float] = []
    for source, group, name in bar:
        if writer.report.images >= limit:
            break
        root = roots[source]
        target = math.exp(rng.uniform(math.log(lo), math.log(hi)))  # drawn for every chip: the same seed, the same set
        label = root / "labels" / f"{name}.txt"
        lines = label.read_text().splitlines()
        if not any(line.strip() for line in lines):
            continue  # ship-free: nothing to coarsen, and no image to decode
        image = read_rgb8(root / "images" / f"{name}.jpg")
        dets = from_yolo_lines(lines, image.shape[1], image.shape[0], names, str(label))
        result = coarsen_chip(image, dets, target, working_scale)
        if result is None:
            writer.skip(f"{source}/{name}: ships too small for {target:.0f} coarse px")
            continue
        writer.add(f"{source}_{name}", result[0], result[1], f"{source}/{group}", oriented=False)
        factors.append(result[2])
    if negatives:
        _add_negatives(writer, roots, _train_images(merged, negative_sources), factors, working_scale, negatives,
                       random.Random(seed + 2))
    writer.close(val_fraction=0.0)
    return writer.report


def _add_negatives(writer: YoloSetWriter, roots: dict[str, Path], candidates: list[tuple[str, str, str]],
                   factors: list[float], working_scale: float, count: int, rng: random.Random) -> None:
    if not factors:
        raise ConfigError("no chip with ships was coarsened, so there are no factors to coarsen ship-free chips by",
                          "give --source sets with ships")
    rng.shuffle(candidates)
    written = 0
    for source, group, name in candidates:
        if written >= count:
            break
        label = roots[source] / "labels" / f"{name}.txt"
        if any(line.strip() for line in label.read_text().splitlines()):
            continue
        image = coarsen_empty_chip(read_rgb8(roots[source] / "images" / f"{name}.jpg"), rng.choice(factors),
                                   working_scale)
        writer.add(f"{source}_{name}", image, Detections.empty(), f"{source}/{group}", oriented=False)
        written += 1
