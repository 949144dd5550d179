"""Reading voyage-counting inputs: detections, scenes, areas of interest, AIS (docs/contracts.md, section 5)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from shipdet.errors import DatasetFormatError, DatasetNotFoundError


@dataclass
class Area:
    name: str
    polygon: BaseGeometry
    min_length_m: float | None = None
    max_length_m: float | None = None


def _table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DatasetNotFoundError(f"table not found at {path}")
    if path.suffix == ".parquet":
        import geopandas as gpd

        try:
            return pd.DataFrame(gpd.read_parquet(path))
        except ValueError:
            return pd.read_parquet(path)
    if path.suffix in (".geojson", ".json"):
        import geopandas as gpd

        return pd.DataFrame(gpd.read_file(path))
    return pd.read_csv(path)


def _utc(table: pd.DataFrame, column: str, what: str) -> None:
    """The column as UTC times; times without a time zone are read as UTC, and the table says so
    (`attrs["assumptions"]`, quoted in the report)."""
    try:
        parsed = pd.to_datetime(table[column])
    except (ValueError, TypeError):  # mixed offsets: each time keeps its own, converted to UTC
        parsed = pd.to_datetime(table[column], utc=True)
    if getattr(parsed.dt, "tz", None) is None:
        parsed = parsed.dt.tz_localize("UTC")
        if len(table):
            table.attrs.setdefault("assumptions", []).append(f"{what} times carry no time zone: read as UTC")
    table[column] = parsed.dt.tz_convert("UTC").dt.as_unit("ns")  # one unit: times meet as int64 nanoseconds


def read_detections(path: Path) -> pd.DataFrame:
    det = _table(path)
    missing = {"scene_id", "acquired", "lon", "lat", "length_m"} - set(det.columns)
    if missing:
        raise DatasetFormatError(f"{path}: detections lack {', '.join(sorted(missing))}",
                                 "use `shipdet rescore` output, or a CSV with scene_id, acquired, lon, lat, length_m")
    _utc(det, "acquired", "detection")
    if "score" not in det:
        det["score"] = 1.0
    return det.reset_index(drop=True)


def read_scenes(path: Path) -> pd.DataFrame:
    scenes = _table(path)
    if "footprint" not in scenes and "footprint_wkt" in scenes:
        scenes["footprint"] = shapely.from_wkt(scenes["footprint_wkt"].fillna("POLYGON EMPTY"))
    if "valid" not in scenes and "valid_wkt" in scenes:
        scenes["valid"] = shapely.from_wkt(scenes["valid_wkt"].fillna("POLYGON EMPTY"))
    missing = {"scene_id", "acquired", "footprint"} - set(scenes.columns)
    if missing:
        raise DatasetFormatError(f"{path}: scenes table lacks {', '.join(sorted(missing))}",
                                 "use `shipdet rescore`'s scenes.parquet / scenes.csv")
    _utc(scenes, "acquired", "scene")
    if "status" in scenes:
        scenes = scenes[scenes.status == "done"]
    if scenes.empty:
        raise DatasetFormatError(f"{path}: no scored scenes", "a scenes table lists the scenes `shipdet rescore` "
                                 "scored (status done): without them nothing was observed")
    return scenes.reset_index(drop=True)


def read_areas(path: Path) -> list[Area]:
    if not path.is_file():
        raise DatasetNotFoundError(f"areas of interest not found at {path}", "a GeoJSON of polygons with `name`")
    data = json.loads(path.read_text())
    areas = []
    for i, feature in enumerate(data.get("features", [])):
        props = feature.get("properties") or {}
        geom = shape(feature["geometry"])
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            raise DatasetFormatError(f"{path}: feature {i} is a {geom.geom_type}, areas must be polygons")
        areas.append(Area(str(props.get("name") or f"area{i}"), geom, props.get("min_length_m"),
                          props.get("max_length_m")))
    if not areas:
        raise DatasetFormatError(f"{path}: no polygon features")
    return areas


def read_ais(path: Path | None) -> pd.DataFrame | None:
    if path is None:
        return None
    ais = _table(path)
    missing = {"vessel_id", "time", "lon", "lat"} - set(ais.columns)
    if missing:
        raise DatasetFormatError(f"{path}: AIS lacks {', '.join(sorted(missing))}")
    _utc(ais, "time", "AIS")
    if len(ais) and ("length_m" not in ais or ais.length_m.isna().all()):
        ais.attrs.setdefault("assumptions", []).append("AIS gives no vessel lengths: detections are matched to AIS "
                                                       "on position alone")
    return ais
