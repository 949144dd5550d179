"""Conversions between `Detections` and the formats at the edges: YOLO txt, DOTA, COCO JSON, GeoJSON, records."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shipdet.detections import Detections
from shipdet.errors import DatasetFormatError
from shipdet.geometry import corners_to_obb, obb_to_corners
from shipdet.georef import GeoReference

GEO_FIELDS = ("lon", "lat", "length_m", "width_m", "heading_deg")


def to_yolo_lines(dets: Detections, width: int, height: int, oriented: bool | None = None) -> list[str]:
    """YOLO label lines, normalised to the image: `c cx cy w h`, or `c x1 y1 .. x4 y4` for oriented labels."""
    oriented = dets.obb is not None if oriented is None else oriented
    lines = []
    if oriented:
        corners = dets.corners() / (width, height)
        for c, pts in zip(dets.class_id, np.clip(corners, 0, 1), strict=True):
            lines.append(f"{int(c)} " + " ".join(f"{v:.6f}" for v in pts.reshape(-1)))
    else:
        b = np.clip(dets.xyxy, 0, [width, height, width, height])
        for c, (x1, y1, x2, y2) in zip(dets.class_id, b, strict=True):
            lines.append(f"{int(c)} {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} "
                         f"{(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}")
    return lines


def from_yolo_lines(
    lines: list[str], width: int, height: int, class_names: Mapping[int, str] | None = None, source: str = "labels"
) -> Detections:
    """Parse YOLO label lines (5 fields axis-aligned, 9 oriented; a 6th/10th field is read as a score)."""
    rows = [ln.split() for ln in lines if ln.strip()]
    if not rows:
        return Detections.empty(class_names=class_names)
    n_fields = {len(r) for r in rows}
    if not n_fields <= {5, 6} and not n_fields <= {9, 10}:
        raise DatasetFormatError(f"{source}: mixed or unknown YOLO label widths {sorted(n_fields)}",
                                 "each line is `class cx cy w h` or `class x1 y1 x2 y2 x3 y3 x4 y4`")
    try:
        arr = np.array([[float(v) for v in r] for r in rows])
    except ValueError as exc:
        raise DatasetFormatError(f"{source}: non-numeric YOLO label value ({exc})") from exc
    cls = arr[:, 0].astype(np.int64)
    scale = np.array([width, height], dtype=np.float64)
    if arr.shape[1] in (5, 6):
        score = arr[:, 5] if arr.shape[1] == 6 else np.ones(len(arr))
        cxcy, wh = arr[:, 1:3] * scale, arr[:, 3:5] * scale
        return Detections(np.concatenate([cxcy - wh / 2, cxcy + wh / 2], axis=1), score, cls,
                          class_names=dict(class_names or {0: "ship"}))
    score = arr[:, 9] if arr.shape[1] == 10 else np.ones(len(arr))
    corners = arr[:, 1:9].reshape(-1, 4, 2) * scale
    return Detections.from_obb(corners_to_obb(corners), score, cls, class_names, xyxy=corners_bounds(corners))


def corners_bounds(corners: NDArray[np.float64]) -> NDArray[np.float64]:
    """(N, 4, 2) polygon corners -> (N, 4) tight axis-aligned boxes (a labelled quadrilateral that is not quite a
    rectangle has a tighter box than the envelope of its fitted oriented box)."""
    return np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)


def to_dota_lines(dets: Detections) -> list[str]:
    names = dets.class_name
    return [" ".join(f"{v:.1f}" for v in pts.reshape(-1)) + f" {name} 0"
            for pts, name in zip(dets.corners(), names, strict=True)]


def from_dota_lines(lines: list[str], class_ids: Mapping[str, int], source: str = "labels") -> Detections:
    """DOTA `x1 y1 .. x4 y4 class difficult` lines (header lines such as `imagesource:` are skipped)."""
    corners, cls = [], []
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if len(parts) < 9 or line.startswith(("imagesource", "gsd")):
            continue
        if parts[8] not in class_ids:
            raise DatasetFormatError(f"{source}:{number}: unknown DOTA class {parts[8]!r}",
                                     f"map it with a class map; known: {sorted(class_ids)}")
        corners.append([float(v) for v in parts[:8]])
        cls.append(class_ids[parts[8]])
    names = {v: k for k, v in class_ids.items()}
    if not corners:
        return Detections.empty(oriented=True, class_names=names)
    quads = np.array(corners).reshape(-1, 4, 2)
    return Detections.from_obb(corners_to_obb(quads), np.ones(len(cls)), cls, names, xyxy=corners_bounds(quads))


def to_coco_annotations(dets: Detections, image_id: int, first_id: int = 1) -> list[dict[str, Any]]:
    """COCO annotations (`bbox` as x, y, w, h; oriented boxes also as a 4-point `segmentation`)."""
    out = []
    for i in range(len(dets)):
        x1, y1, x2, y2 = (float(v) for v in dets.xyxy[i])
        ann: dict[str, Any] = {"id": first_id + i, "image_id": image_id, "category_id": int(dets.class_id[i]),
                               "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                               "score": float(dets.score[i]), "iscrowd": 0}
        if dets.obb is not None:
            ann["segmentation"] = [dets.corners()[i].reshape(-1).tolist()]
            ann["area"] = float(dets.obb[i, 2] * dets.obb[i, 3])
        out.append(ann)
    return out


def detection_records(dets: Detections) -> list[dict[str, Any]]:
    """One JSON-ready dict per detection, as in the HTTP response (docs/contracts.md, section 2)."""
    names = dets.class_name
    records = []
    for i in range(len(dets)):
        rec: dict[str, Any] = {"xyxy": [round(float(v), 2) for v in dets.xyxy[i]],
                               "score": round(float(dets.score[i]), 5), "class_id": int(dets.class_id[i]),
                               "class_name": str(names[i])}
        if dets.obb is not None:
            cx, cy, length, width, angle = (float(v) for v in dets.obb[i])
            rec["obb"] = {"cx": round(cx, 2), "cy": round(cy, 2), "length": round(length, 2),
                          "width": round(width, 2), "angle_deg": round(math.degrees(angle), 3)}
        for key in GEO_FIELDS:
            if key in dets.data:
                rec[key] = float(dets.data[key][i])
        records.append(rec)
    return records


GEOJSON_DECIMALS = 7  # about 1 cm: RFC 7946 advises no more precision than the data has


def to_geojson(dets: Detections, ref: GeoReference | None = None, geometry: str = "point") -> dict[str, Any]:
    """An RFC 7946 FeatureCollection (WGS84): a Point at each centre, or the box as a Polygon (`geometry='box'`)."""
    if len(dets) and ("lon" not in dets.data or "lat" not in dets.data):
        raise DatasetFormatError("GeoJSON needs georeferenced detections (lon/lat)",
                                 "send the tile's transform and CRS, or a GeoTIFF")
    if geometry not in ("point", "box"):
        raise ValueError(f"geometry must be 'point' or 'box', got {geometry!r}")
    if geometry == "box" and ref is None and len(dets):
        raise DatasetFormatError("box geometry needs the image's georeference")
    polygons = None
    if geometry == "box" and ref is not None and len(dets):
        corners = dets.corners() if dets.obb is None else obb_to_corners(dets.obb)
        lon, lat = ref.pixel_to_lonlat(corners[..., 0].ravel(), corners[..., 1].ravel())
        polygons = np.stack([lon, lat], axis=1).reshape(-1, 4, 2)
    features = []
    for i, props in enumerate(detection_records(dets)):
        if polygons is not None:
            corners = np.round(polygons[i], GEOJSON_DECIMALS)
            x, y = corners[:, 0], corners[:, 1]
            if np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y) < 0:  # clockwise: RFC 7946 wants the other way
                corners = corners[::-1]
            geom: dict[str, Any] = {"type": "Polygon", "coordinates": [[*corners.tolist(), corners[0].tolist()]]}
        else:
            geom = {"type": "Point", "coordinates": [round(props["lon"], GEOJSON_DECIMALS),
                                                     round(props["lat"], GEOJSON_DECIMALS)]}
        features.append({"type": "Feature", "geometry": geom, "properties": props})
    return {"type": "FeatureCollection", "features": features}
