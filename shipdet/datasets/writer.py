"""Writing a converted set: images, axis-aligned and oriented YOLO labels, a manifest, a group-aware split.

Layout of a converted set (ultralytics finds labels by replacing `/images/` with `/labels/` in image paths):

    images/<name>.jpg         labels/<name>.txt       axis-aligned labels (`c cx cy w h`)
    obb/images -> ../images   obb/labels/<name>.txt   oriented labels (`c x1 y1 .. x4 y4`)
    manifest.csv              one row per image: name, group, source, gsd_m, oriented, n_boxes, scale, labelled
                              (gsd_m of the image as written; scale: the resampling applied to the source image,
                              so native pixels = written pixels / scale; labelled 0: a source image whose labels
                              were lost, not written, kept in the manifest so the split stays as it was)
    train.txt, val.txt        image lists; data.yaml (detect) and data-obb.yaml (obb) point at them
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from numpy.typing import NDArray

from shipdet.datasets.images import write_jpeg
from shipdet.detections import Detections
from shipdet.geometry import obb_polygons, obb_to_xyxy, points_to_obb, xyxy_to_obb
from shipdet.tiling import Window, tile_windows

MANIFEST_FIELDS = ["name", "group", "source", "gsd_m", "oriented", "n_boxes", "scale", "labelled"]


def clip_to_window(dets: Detections, window: Window, min_visible: float) -> Detections:
    """Boxes of `dets` (image pixels) clipped to `window`, in window pixels; boxes with less than
    `min_visible` of their area inside are dropped as slivers. Oriented boxes are clipped as polygons and
    refitted with the minimum-area rectangle of what remains."""
    if len(dets) == 0:
        return dets.shifted(-window.col, -window.row)
    x1, y1, x2, y2 = window.bounds
    obb = dets.obb if dets.obb is not None else xyxy_to_obb(dets.xyxy)
    polys = obb_polygons(obb)
    inside = shapely.intersection(polys, shapely.box(x1, y1, x2, y2))
    area = shapely.area(polys)
    visible = np.divide(shapely.area(inside), area, out=np.zeros(len(area)), where=area > 0)
    keep = np.flatnonzero(visible >= min_visible)
    if dets.obb is None:
        b = dets.xyxy[keep].copy()
        b[:, [0, 2]] = np.clip(b[:, [0, 2]], x1, x2) - x1
        b[:, [1, 3]] = np.clip(b[:, [1, 3]], y1, y2) - y1
        return Detections(b, dets.score[keep], dets.class_id[keep], class_names=dets.class_names)
    refit = np.array([points_to_obb(np.asarray(inside[i].exterior.coords)) for i in keep]).reshape(-1, 5)
    refit[:, 0] -= x1
    refit[:, 1] -= y1
    # The tight box, clipped, and never outside what is left of the oriented box.
    tight = dets.xyxy[keep] - (x1, y1, x1, y1)
    envelope = obb_to_xyxy(refit)
    tight = np.concatenate([np.maximum(tight[:, :2], envelope[:, :2]), np.minimum(tight[:, 2:], envelope[:, 2:])], 1)
    return Detections.from_obb(refit, dets.score[keep], dets.class_id[keep], dets.class_names, xyxy=tight)


@dataclass
class ConversionReport:
    """What a conversion did: counts, and every skipped item with its reason (for the summary and tests)."""

    images: int = 0
    boxes: int = 0
    empty_images: int = 0
    unlabelled: int = 0
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"{self.images} images ({self.empty_images} without ships), {self.boxes} boxes"]
        if self.unlabelled:
            lines.append(f"{self.unlabelled} images left out as unlabelled (an empty label file, not a ship-free "
                         "image)")
        if self.skipped:
            lines.append(f"{len(self.skipped)} skipped:")
            lines += [f"  - {s}" for s in self.skipped[:20]]
            if len(self.skipped) > 20:
                lines.append(f"  ... and {len(self.skipped) - 20} more (see skipped.txt)")
        return "\n".join(lines)


class YoloSetWriter:
    """Accumulates images and labels into a converted set; `close()` writes manifest, split and YAMLs."""

    def __init__(self, out: Path, class_names: dict[int, str], source: str, gsd_m: float | None = None,
                 scale: float = 1.0) -> None:
        self.out = Path(out)
        self.scale = scale
        self.class_names = class_names
        self.source = source
        self.gsd_m = gsd_m
        self.rows: list[dict[str, str]] = []
        self.report = ConversionReport()
        for sub in ("images", "labels", "obb/labels"):
            (self.out / sub).mkdir(parents=True, exist_ok=True)
        link = self.out / "obb" / "images"
        if not link.exists():
            os.symlink("../images", link)

    def add(self, name: str, image: NDArray[np.uint8], dets: Detections, group: str, oriented: bool,
            scale: float | None = None) -> None:
        """One training image (RGB uint8) with its labels (pixels of that image); `scale`: the resampling applied
        to this image where it is not the set's."""
        height, width = image.shape[:2]
        write_jpeg(self.out / "images" / f"{name}.jpg", image)
        (self.out / "labels" / f"{name}.txt").write_text(_lines(dets, width, height, False))
        (self.out / "obb" / "labels" / f"{name}.txt").write_text(_lines(dets, width, height, True))
        self.rows.append({"name": name, "group": group, "source": self.source,
                          "gsd_m": "" if self.gsd_m is None else f"{self.gsd_m:g}",
                          "oriented": str(int(oriented)), "n_boxes": str(len(dets)),
                          "scale": f"{self.scale if scale is None else scale:g}", "labelled": "1"})
        self.report.images += 1
        self.report.boxes += len(dets)
        self.report.empty_images += int(len(dets) == 0)

    def add_tiled(self, name: str, image: NDArray[np.uint8], dets: Detections, group: str, oriented: bool,
                  tile: int, overlap: int, min_visible: float, scale: float | None = None) -> None:
        """A large image cut into tiles (windows shifted inward at edges), labels clipped, slivers dropped."""
        height, width = image.shape[:2]
        for w in tile_windows(width, height, tile, overlap):
            crop = image[w.row:w.row + w.height, w.col:w.col + w.width]
            self.add(f"{name}_{w.col}_{w.row}", crop, clip_to_window(dets, w, min_visible), group, oriented, scale)

    def add_unlabelled(self, name: str, group: str) -> None:
        """An image whose labels were lost: neither a positive nor a ship-free example, so it is not written. Its
        manifest row keeps its group's size, so the split of every other image stays what it was."""
        self.rows.append({"name": name, "group": group, "source": self.source, "gsd_m": "", "oriented": "0",
                          "n_boxes": "", "scale": f"{self.scale:g}", "labelled": "0"})
        self.report.unlabelled += 1

    def skip(self, reason: str) -> None:
        self.report.skipped.append(reason)

    def close(self, val_fraction: float = 0.2, seed: int = 0, val_groups: Sequence[str] = ()) -> ConversionReport:
        write_manifest(self.out / "manifest.csv", self.rows)
        if self.report.skipped:
            (self.out / "skipped.txt").write_text("\n".join(self.report.skipped) + "\n")
        from shipdet.datasets.split import write_split

        write_split(self.out, [(self.out, r) for r in self.rows], self.class_names, val_fraction, seed, val_groups)
        return self.report


def _lines(dets: Detections, width: int, height: int, oriented: bool) -> str:
    from shipdet.formats import to_yolo_lines

    lines = to_yolo_lines(dets, width, height, oriented=oriented)
    return "\n".join(lines) + ("\n" if lines else "")


def write_manifest(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def read_manifest(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return [{"labelled": "1", **r} for r in csv.DictReader(fh)]  # sets converted before the column: all labelled


def is_labelled(row: dict[str, str]) -> bool:
    return row.get("labelled", "1") != "0"
