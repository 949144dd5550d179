"""COCO JSON (boxes, polygons, RLE masks) -> converted set; large images are tiled.

Masks and polygons give oriented boxes (minimum-area rectangle) and, as axis-aligned labels, their own tight boxes;
bare `bbox` entries give axis-aligned ones. `scale` resamples each image (and its labels) before tiling, so that
training tiles are cut at a model's working scale (shipdet.scale); `working_gsd_m` instead resamples each image by
its own factor, from the GSD its georeference gives (read as `shipdet rescore` reads it, so a training tile and a
scene scored through the scale path meet at one scale), or `gsd_m` where it has none.
"""

from __future__ import annotations

import ast
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shipdet.datasets.classmap import ClassMap
from shipdet.datasets.images import IMAGE_SUFFIXES, read_rgb8
from shipdet.datasets.writer import ConversionReport, YoloSetWriter
from shipdet.detections import Detections
from shipdet.errors import ConfigError, DatasetFormatError, DatasetNotFoundError, ShipdetError
from shipdet.geometry import points_to_obb, xyxy_to_obb
from shipdet.progress import progress
from shipdet.scale import MAX_FACTOR, MIN_FACTOR, check_gsd, resample


def decode_uncompressed_rle(counts: Sequence[int], height: int, width: int) -> NDArray[np.bool_]:
    """COCO's uncompressed RLE: alternating runs of 0 and 1, column-major."""
    values = np.repeat(np.arange(len(counts)) % 2 == 1, np.asarray(counts, dtype=np.int64))
    if values.size != height * width:
        raise ValueError(f"RLE covers {values.size} pixels, image has {height * width}")
    return values.reshape(width, height).T


def segmentation_points(seg: Any, height: int, width: int) -> NDArray[np.float64] | None:
    """Outline points of a COCO segmentation (polygons, RLE dict, or a dict written as a string)."""
    if isinstance(seg, str):  # some exporters write the RLE dict as its Python repr
        seg = ast.literal_eval(seg)
    if isinstance(seg, list):
        pts = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in seg if len(p) >= 6]
        return np.concatenate(pts) if pts else None
    if isinstance(seg, dict) and "counts" in seg:
        h, w = seg.get("size", [height, width])
        if isinstance(seg["counts"], list):
            mask = decode_uncompressed_rle(seg["counts"], h, w)
        else:
            from pycocotools import mask as mask_utils  # compressed RLE needs the train extra

            mask = mask_utils.decode(seg).astype(bool)
        rows, cols = np.nonzero(mask)
        if len(rows) == 0:
            return None
        return np.concatenate([np.column_stack([cols + dx, rows + dy]) for dx in (0, 1) for dy in (0, 1)])
    return None


class ImageIndex:
    """Finds an image by the name an annotation file gives, under one or more roots (recursively).

    Exact file name first; else an image whose stem equals or starts with that name's stem (published sets
    often re-encode, e.g. `klang_rgb.tiff` -> `klang_rgb8.jpg`), preferring the exact stem.
    """

    def __init__(self, roots: Sequence[Path]) -> None:
        self.files = sorted(p for r in roots for p in Path(r).rglob("*")
                            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())

    def find(self, name: str) -> Path | None:
        stem = Path(name).stem
        for test in (lambda p: p.name == name, lambda p: p.stem == stem, lambda p: p.stem.startswith(stem)):
            hits = [p for p in self.files if test(p)]
            if hits:
                return hits[0]
        return None


def coco_detections(anns: list[dict[str, Any]], height: int, width: int, class_map: ClassMap,
                    categories: dict[int, str]) -> tuple[Detections, bool]:
    """Boxes of one image; oriented when every annotation has a usable segmentation."""
    obbs, tight, classes = [], [], []
    oriented = True
    for ann in anns:
        target = class_map.target_id(categories.get(ann["category_id"], str(ann["category_id"])))
        if target is None:
            continue
        pts = segmentation_points(ann.get("segmentation"), height, width)
        if pts is None:
            x, y, w, h = (float(v) for v in ann["bbox"])
            obbs.append(xyxy_to_obb([[x, y, x + w, y + h]])[0])
            tight.append([x, y, x + w, y + h])
            oriented = False
        else:
            obbs.append(points_to_obb(pts))
            tight.append([*pts.min(axis=0), *pts.max(axis=0)])  # the mask's own box, not the oriented box's
        classes.append(target)
    obb = np.array(obbs).reshape(-1, 5)
    return Detections.from_obb(obb, np.ones(len(obb)), classes, class_map.class_names,
                               xyxy=np.array(tight).reshape(-1, 4)), oriented


def convert_coco(annotations: Path, image_roots: Sequence[Path], out: Path, class_map: ClassMap,
                 source: str = "coco", gsd_m: float | None = None, tile: int | None = None, overlap: int = 64,
                 min_visible: float = 0.4, strict: bool = False, val_fraction: float = 0.2, seed: int = 0,
                 val_groups: Sequence[str] = (), scale: float = 1.0,
                 working_gsd_m: float | None = None) -> ConversionReport:
    if not annotations.is_file():
        raise DatasetNotFoundError(f"COCO annotations not found at {annotations}")
    try:
        coco = json.loads(annotations.read_text())
        images = {int(im["id"]): im for im in coco["images"]}
        categories = {int(c["id"]): str(c["name"]) for c in coco.get("categories", [])}
    except (ValueError, KeyError, TypeError) as exc:
        raise DatasetFormatError(f"{annotations}: not a COCO file ({exc})") from exc
    by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for ann in coco.get("annotations", []):
        by_image[int(ann["image_id"])].append(ann)
    index = ImageIndex(image_roots)
    if not 0.125 <= scale <= 8:
        raise ConfigError(f"--scale {scale} is outside 1/8-8", "Sentinel-2 at a 3.3 m working scale is --scale 3")
    if working_gsd_m is not None:
        if scale != 1.0:
            raise ConfigError("--scale and --working-gsd both set", "give one: a factor for all, or a target GSD")
        check_gsd(working_gsd_m)
    working_gsd = working_gsd_m or (None if gsd_m is None else gsd_m / scale)
    writer = YoloSetWriter(out, class_map.class_names, source=source, gsd_m=working_gsd, scale=scale)
    folder_sources = FolderSources()
    for image_id, meta in progress(sorted(images.items()), desc=source, total=len(images), unit="image"):
        name = str(meta["file_name"])
        try:
            path = index.find(name)
            if path is None:
                raise DatasetNotFoundError(f"{annotations}: image {name!r} not found under "
                                           f"{', '.join(map(str, image_roots))}")
            image = read_rgb8(path)
            height, width = image.shape[:2]
            if (meta.get("width"), meta.get("height")) not in ((width, height), (None, None)):
                raise DatasetFormatError(f"{path}: is {width}x{height}, {annotations} says "
                                         f"{meta.get('width')}x{meta.get('height')}")
            dets, oriented = coco_detections(by_image[image_id], height, width, class_map, categories)
            factor = scale if working_gsd_m is None else _own_factor(path, gsd_m, working_gsd_m, folder_sources)
            if factor != 1.0:
                image = resample(image, factor)
                dets = dets.scaled(factor, factor)  # uniform, so oriented boxes stay rectangles (< 0.5 px off)
                height, width = image.shape[:2]
        except (ShipdetError, ValueError, KeyError, SyntaxError) as exc:
            if strict:
                raise
            writer.skip(str(exc))
            continue
        stem = Path(name).stem
        if tile and max(height, width) > tile:
            writer.add_tiled(stem, image, dets, stem, oriented, tile, overlap, min_visible, factor)
        else:
            writer.add(stem, image, dets, stem, oriented, factor)
    return writer.close(val_fraction, seed, val_groups)


class FolderSources(dict[Path, list[Any]]):
    """The scenes `shipdet rescore` finds in each image folder, resolved once per folder (not once per image)."""

    def __missing__(self, folder: Path) -> list[Any]:
        from shipdet.rescore.sources import resolve_sources

        self[folder] = resolve_sources([str(folder)])
        return self[folder]


def _own_factor(path: Path, fallback_gsd_m: float | None, working_gsd_m: float, folders: FolderSources) -> float:
    """The factor that brings `path` from its own GSD (else `fallback_gsd_m`) to `working_gsd_m`."""
    from shipdet.rescore.scene import image_gsd_m

    try:
        gsd = image_gsd_m(path, folders[path.parent]) or fallback_gsd_m
    except OSError as exc:  # rasterio's read errors: a band file beside the image that cannot be opened
        raise DatasetFormatError(f"{path}: its georeference could not be read ({exc})") from exc
    if gsd is None:
        raise DatasetFormatError(f"{path}: no georeference, so no GSD to resample from", "give --gsd for such images")
    factor = check_gsd(gsd) / working_gsd_m
    if not MIN_FACTOR <= factor <= MAX_FACTOR:
        raise DatasetFormatError(f"{path}: {gsd:g} m to {working_gsd_m:g} m is a factor of {factor:.3g}, outside "
                                 f"{MIN_FACTOR:g}-{MAX_FACTOR:g}")
    return factor
