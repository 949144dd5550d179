"""xView (`xView_train.geojson` + GeoTIFF images) -> tiled converted set of its vessel classes.

Images are read window by window with rasterio, so a scene of any size needs only a few tiles in memory.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from shipdet.datasets.classmap import ClassMap
from shipdet.datasets.writer import ConversionReport, YoloSetWriter, clip_to_window
from shipdet.detections import Detections
from shipdet.errors import DatasetFormatError, DatasetNotFoundError
from shipdet.imaging import to_rgb8
from shipdet.progress import progress
from shipdet.tiling import tile_windows

XVIEW_VESSELS = {40: "maritime_vessel", 41: "motorboat", 42: "sailboat", 44: "tugboat", 45: "barge",
                 47: "fishing_vessel", 49: "ferry", 50: "yacht", 51: "container_ship", 52: "oil_tanker"}
# The 60 type_ids of xView's class list; the published GeoJSON also holds a few others (e.g. 75, 82).
XVIEW_TYPE_IDS = frozenset([11, 12, 13, 15, 17, 18, 19, 20, 21, 23, 24, 25, 26, 27, 28, 29, 32, 33, 34, 35, 36, 37,
                            38, 40, 41, 42, 44, 45, 47, 49, 50, 51, 52, 53, 54, 55, 56, 57, 59, 60, 61, 62, 63, 64,
                            65, 66, 71, 72, 73, 74, 76, 77, 79, 83, 84, 86, 89, 91, 93, 94])
XVIEW_GSD_M = 0.3
TAXONOMIES = {
    "ship": ",".join(f"{k}=ship" for k in XVIEW_VESSELS) + ",*=drop",
    "fine": ",".join(f"{k}={'oil_tanker' if k == 52 else 'ship'}" for k in XVIEW_VESSELS) + ",*=drop",
    "xview": ",".join(f"{k}={v}" for k, v in XVIEW_VESSELS.items()) + ",*=drop",
}


def read_xview_labels(geojson: Path, class_map: ClassMap) -> tuple[dict[str, list[tuple[list[float], int]]],
                                                                    list[str]]:
    """image_id -> [(x1, y1, x2, y2), class], and the features skipped with reasons."""
    if not geojson.is_file():
        raise DatasetNotFoundError(f"xView labels not found at {geojson}", "pass xView_train.geojson")
    try:
        features = json.loads(geojson.read_text())["features"]
    except (ValueError, KeyError) as exc:
        raise DatasetFormatError(f"{geojson}: not a GeoJSON FeatureCollection ({exc})") from exc
    boxes: dict[str, list[tuple[list[float], int]]] = defaultdict(list)
    skipped = []
    for number, feature in enumerate(features):
        props = feature.get("properties", {})
        try:
            type_id = int(props["type_id"])
            if type_id not in XVIEW_TYPE_IDS:
                raise ValueError(f"unknown type_id {type_id}")
            target = class_map.target_id(type_id)
            if target is None:
                continue
            try:
                box = [float(v) for v in str(props["bounds_imcoords"]).split(",")]
            except ValueError:
                box = []
            if len(box) != 4 or not (box[2] > box[0] and box[3] > box[1]):
                raise ValueError(f"bad bounds_imcoords {props['bounds_imcoords']!r}")
            boxes[str(props["image_id"])].append((box, target))
        except (KeyError, ValueError, DatasetFormatError) as exc:
            skipped.append(f"{geojson}: feature {number}: {exc}")
    return dict(boxes), skipped


def convert_xview(geojson: Path, images: Path, out: Path, taxonomy: str = "ship", tile: int = 640,
                  overlap: int = 64, min_visible: float = 0.4, keep_empty: bool = False,
                  val_fraction: float = 0.2, seed: int = 0) -> ConversionReport:
    import rasterio
    from rasterio.windows import Window as RioWindow

    class_map = ClassMap.parse(TAXONOMIES.get(taxonomy, taxonomy), default=None)
    labels, skipped = read_xview_labels(geojson, class_map)
    writer = YoloSetWriter(out, class_map.class_names, source="xview", gsd_m=XVIEW_GSD_M)
    for message in skipped:
        writer.skip(message)
    for image_id in progress(sorted(labels), desc="xview", total=len(labels), unit="image"):
        path = images / image_id
        if not path.is_file():
            writer.skip(f"{geojson}: image {image_id} not found in {images}")
            continue
        arr = np.array([b for b, _ in labels[image_id]])
        dets = Detections(arr, np.ones(len(arr)), np.array([c for _, c in labels[image_id]], dtype=np.int64),
                          class_names=class_map.class_names)
        try:
            with rasterio.open(path) as src:
                for w in tile_windows(src.width, src.height, tile, overlap):
                    clipped = clip_to_window(dets, w, min_visible)
                    if not len(clipped) and not keep_empty:
                        continue
                    pixels = src.read(window=RioWindow(w.col, w.row, w.width, w.height))
                    writer.add(f"{Path(image_id).stem}_{w.col}_{w.row}", to_rgb8(np.moveaxis(pixels, 0, -1)),
                               clipped, group=Path(image_id).stem, oriented=False)
        except rasterio.errors.RasterioError as exc:
            writer.skip(f"{path}: unreadable ({exc})")
    return writer.close(val_fraction, seed)
