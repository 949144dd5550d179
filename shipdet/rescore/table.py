"""The detections table (docs/contracts.md, section 3) and atomic writes."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from shipdet.detections import Detections
from shipdet.georef import GeoReference

COLUMNS = ["scene_id", "acquired", "det_id", "lon", "lat", "x1", "y1", "x2", "y2", "cx", "cy", "length_px",
           "width_px", "angle_deg", "length_m", "width_m", "heading_deg", "score", "class_id", "class_name",
           "model_sha256", "params_hash"]


def detections_frame(dets: Detections, scene_id: str, acquired: datetime | None, ref: GeoReference | None,
                     model_sha256: str, params_hash: str) -> Any:
    """One row per ship: pixel and oriented box, WGS84 position and oriented-box polygon, size and heading."""
    import geopandas as gpd
    import pandas as pd

    n = len(dets)
    obb = dets.obb if dets.obb is not None else np.column_stack([
        (dets.xyxy[:, 0] + dets.xyxy[:, 2]) / 2, (dets.xyxy[:, 1] + dets.xyxy[:, 3]) / 2,
        dets.xyxy[:, 2] - dets.xyxy[:, 0], dets.xyxy[:, 3] - dets.xyxy[:, 1], np.zeros(n)])
    # length/width are the long/short sides, in pixels as in metres; the angle is the long side's.
    long_is_w = obb[:, 2] >= obb[:, 3]
    length_px, width_px = np.where(long_is_w, obb[:, 2], obb[:, 3]), np.where(long_is_w, obb[:, 3], obb[:, 2])
    angle_deg = np.mod(np.degrees(obb[:, 4]) + np.where(long_is_w, 0.0, 90.0) + 90.0, 180.0) - 90.0
    nan = np.full(n, np.nan)
    geometry: list[Any] = [None] * n
    if ref is not None and n:
        corners = dets.corners()
        lon, lat = ref.pixel_to_lonlat(corners[..., 0].ravel(), corners[..., 1].ravel())
        geometry = list(np.asarray(shapely.polygons(np.stack([lon, lat], axis=1).reshape(n, 4, 2)), dtype=object))
    # Explicit types: every scene's file has the same schema, with detections or without (one dataset).
    frame = pd.DataFrame({
        "scene_id": pd.Series([scene_id] * n, dtype="string"),
        "acquired": pd.Series(pd.to_datetime([acquired] * n, utc=True) if acquired else [pd.NaT] * n,
                              dtype="datetime64[us, UTC]"),
        "det_id": np.arange(n, dtype=np.int64),
        "lon": dets.data.get("lon", nan), "lat": dets.data.get("lat", nan),
        "x1": dets.xyxy[:, 0], "y1": dets.xyxy[:, 1], "x2": dets.xyxy[:, 2], "y2": dets.xyxy[:, 3],
        "cx": obb[:, 0], "cy": obb[:, 1], "length_px": length_px, "width_px": width_px, "angle_deg": angle_deg,
        "length_m": dets.data.get("length_m", nan), "width_m": dets.data.get("width_m", nan),
        "heading_deg": dets.data.get("heading_deg", nan),
        "score": dets.score, "class_id": dets.class_id.astype(np.int64),
        "class_name": pd.Series(dets.class_name.astype(str), dtype="string"),
        "model_sha256": pd.Series([model_sha256] * n, dtype="string"),
        "params_hash": pd.Series([params_hash] * n, dtype="string"),
    })
    floats = [c for c in COLUMNS if c not in ("scene_id", "acquired", "det_id", "class_id", "class_name",
                                              "model_sha256", "params_hash")]
    frame = frame.astype({c: "float64" for c in floats})
    return gpd.GeoDataFrame(frame, geometry=geometry, crs="EPSG:4326")


def atomic_write(path: Path, write: Any) -> None:
    """`write(tmp_path)`, then fsync and rename over `path`: readers see the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_geoparquet(frame: Any, path: Path) -> None:
    """GeoParquet 1.1 with a bbox covering column (readers filter by area without decoding geometries), no
    pandas index, zstd-compressed (the GeoParquet best practice: smaller than snappy, as fast to read)."""
    atomic_write(path, lambda tmp: frame.to_parquet(tmp, schema_version="1.1.0", write_covering_bbox=True,
                                                    index=False, compression="zstd"))
