"""What to re-score: files, folders (recursive), globs, manifests (CSV / JSON lines) and local STAC collections."""

from __future__ import annotations

import csv
import glob
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from shipdet.errors import DatasetFormatError, DatasetNotFoundError

log = logging.getLogger(__name__)
RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".jpg", ".jpeg", ".png", ".vrt")
_DATE = re.compile(r"((?:19|20)\d{2})-?(\d{2})-?(\d{2})(?:T(\d{2}):?(\d{2}):?(\d{2}))?")


@dataclass
class SceneSource:
    """One scene: one multi-band file, or single-band files in R, G, B order (Sentinel-2 style)."""

    scene_id: str
    paths: list[Path]
    acquired: datetime | None = None
    bands: list[int] = field(default_factory=list)  # 1-based band indexes of a multi-band file; [] = first three
    georef_from: Path | None = None  # a georeferenced file on the same pixel grid (a rendering's band files)


def date_from_name(name: str) -> datetime | None:
    match = _DATE.search(name)
    if not match:
        return None
    y, m, d, hh, mm, ss = match.groups()
    try:
        return datetime(int(y), int(m), int(d), int(hh or 0), int(mm or 0), int(ss or 0), tzinfo=UTC)
    except ValueError:
        return None


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return date_from_name(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _from_manifest(path: Path) -> list[SceneSource]:
    rows: list[dict[str, str]]
    if path.suffix == ".csv":
        rows = list(csv.DictReader(path.open()))
    else:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    scenes = []
    for number, row in enumerate(rows, 1):
        if "path" not in row:
            raise DatasetFormatError(f"{path}: row {number} has no `path`", "columns: path, scene_id, acquired")
        paths = [Path(p) if Path(p).is_absolute() else path.parent / p for p in str(row["path"]).split("|")]
        scenes.append(SceneSource(str(row.get("scene_id") or paths[0].stem), paths, parse_time(row.get("acquired"))))
    return scenes


def _from_stac(path: Path) -> list[SceneSource]:
    import pystac

    collection = pystac.ItemCollection.from_file(str(path))
    scenes = []
    for item in collection:
        assets = item.assets
        rgb = [assets.get(k) for k in ("red", "green", "blue")]
        if all(rgb):
            hrefs = [a.get_absolute_href() or a.href for a in rgb if a is not None]
        else:
            visual = assets.get("visual") or next(iter(assets.values()))
            hrefs = [visual.get_absolute_href() or visual.href]
        paths = [Path(h) if Path(h).is_absolute() else path.parent / h for h in hrefs]
        scenes.append(SceneSource(item.id, paths, item.datetime))
    return scenes


_ANY_BAND = re.compile(r"(?:^|[_\-.])B(0[1-9]|1[0-2]|8A)(?:[_\-.(]|$)", re.IGNORECASE)
_BAND = re.compile(r"(?:^|[_\-.])(B0[2-4])(?:[_\-.(]|$)", re.IGNORECASE)


def _rendering_first(path: Path) -> tuple[bool, str]:
    return path.suffix.lower() not in (".tif", ".tiff"), path.name  # a GeoTIFF keeps georeference and 16 bits


def _from_folder(root: Path) -> list[SceneSource]:
    """Rasters under `root`. A folder holding Sentinel-2 style band files is one scene, named after the folder and
    dated by its band files: from its B04, B03 and B02 files, or where one of those is missing from its RGB
    rendering (GeoTIFF first). Its other rasters are renderings of the same acquisition: scoring them too would
    count every ship of the scene twice."""
    scenes = []
    for folder in sorted({p.parent for p in root.rglob("*") if p.is_file()} | {root}):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in RASTER_SUFFIXES and p.is_file())
        band_files = [p for p in files if _ANY_BAND.search(p.name)]
        others = [p for p in files if p not in band_files]
        if not band_files:
            scenes += [SceneSource(p.stem, [p], date_from_name(p.name)) for p in others]
            continue
        bands = {m.group(1).upper(): p for p in band_files if (m := _BAND.search(p.name))}
        acquired = date_from_name(band_files[0].name)
        missing = sorted({"B04", "B03", "B02"} - set(bands))
        if not missing:
            scenes.append(SceneSource(folder.name, [bands["B04"], bands["B03"], bands["B02"]], acquired))
        elif others:
            rendering = min(others, key=_rendering_first)
            others = [p for p in others if p != rendering]
            log.info("%s: no %s band file: scored from its rendering %s", folder, ", ".join(missing), rendering.name)
            scenes.append(SceneSource(folder.name, [rendering], acquired, georef_from=band_files[0]))
        else:
            log.warning("%s: Sentinel-2 band files without %s and no RGB rendering: not scored", folder,
                        ", ".join(missing))
        if others:
            log.info("%s: %s taken as renderings of scene %s, not scored again", folder,
                     ", ".join(p.name for p in others), folder.name)
    return scenes


def resolve_sources(sources: list[str]) -> list[SceneSource]:
    """Every scene named by `sources`, in a stable order, each scene id once."""
    scenes: list[SceneSource] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            scenes += _from_folder(path)
        elif path.suffix.lower() in (".csv", ".jsonl") and path.is_file():
            scenes += _from_manifest(path)
        elif path.suffix.lower() == ".json" and path.is_file():
            scenes += _from_stac(path)
        elif path.is_file():
            scenes.append(SceneSource(path.stem, [path], date_from_name(path.name)))
        else:
            matches = sorted(glob.glob(source, recursive=True))
            if not matches:
                raise DatasetNotFoundError(f"no scene found at {source}", "give files, folders, globs, a manifest "
                                           "(.csv/.jsonl) or a STAC item collection (.json)")
            scenes += [SceneSource(Path(m).stem, [Path(m)], date_from_name(Path(m).name)) for m in matches
                       if Path(m).suffix.lower() in RASTER_SUFFIXES]
    seen: dict[str, int] = {}
    for scene in scenes:  # two files called scene.tif in different folders stay two scenes
        count = seen.get(scene.scene_id, 0)
        seen[scene.scene_id] = count + 1
        if count:
            scene.scene_id = f"{scene.scene_id}~{count}"
    return scenes
