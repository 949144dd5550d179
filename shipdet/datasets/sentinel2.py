"""Sentinel-2 single-band GeoTIFFs (B04, B03, B02) -> one georeferenced RGB GeoTIFF and an 8-bit rendering.

Scaling of the 8-bit rendering: `shipdet.imaging.to_rgb8`, a per-band 2-98 percentile stretch over valid
pixels (0 is Sentinel-2's nodata), the stretch of the published `_rgb8` renderings. The percentiles used are
stored in the GeoTIFF's tags (`STRETCH_LOW`, `STRETCH_HIGH`) so the rendering can be reproduced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shipdet.datasets.images import write_jpeg
from shipdet.errors import DatasetFormatError, DatasetNotFoundError
from shipdet.imaging import band_percentiles, to_rgb8

RGB_BANDS = ("B04", "B03", "B02")
_BAND = re.compile(r"(?:^|[_\-.])(B0[1-9]|B1[0-2]|B8A)(?:[_\-.(]|$)", re.IGNORECASE)
_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})")


@dataclass
class StackResult:
    scene: str
    rgb_tif: Path | None
    rgb8: Path | None
    missing: list[str]
    acquired: str | None


def find_bands(folder: Path) -> dict[str, Path]:
    bands: dict[str, Path] = {}
    for path in sorted(folder.glob("*.tif*")):
        match = _BAND.search(path.name)
        if match:
            bands.setdefault(match.group(1).upper(), path)
    return bands


def stack_scene(folder: Path, out: Path, name: str | None = None, bands: tuple[str, ...] = RGB_BANDS
                ) -> StackResult:
    """Stack one scene folder's bands; missing bands are reported in the result, never guessed."""
    import rasterio

    if not folder.is_dir():
        raise DatasetNotFoundError(f"Sentinel-2 scene folder not found at {folder}")
    name = name or folder.name
    found = find_bands(folder)
    missing = [b for b in bands if b not in found]
    date = next((m.group(1) for p in found.values() if (m := _DATE.search(p.name))), None)
    if missing:
        return StackResult(name, None, None, missing, date)
    arrays, profile = [], None
    for band in bands:
        with rasterio.open(found[band]) as src:
            if profile is None:
                profile = src.profile.copy()
            elif (src.width, src.height, src.transform) != (profile["width"], profile["height"],
                                                            profile["transform"]):
                raise DatasetFormatError(f"{found[band]}: grid differs from {found[bands[0]]}",
                                         "resample the bands to one grid first")
            arrays.append(src.read(1))
    assert profile is not None
    stack = np.stack(arrays, axis=-1)
    limits = band_percentiles(stack)
    out.mkdir(parents=True, exist_ok=True)
    rgb_tif = out / f"{name}_rgb.tif"
    profile.update(count=3, driver="GTiff", compress="deflate", photometric="RGB")
    with rasterio.open(rgb_tif, "w", **profile) as dst:
        dst.write(np.moveaxis(stack, -1, 0))
        dst.update_tags(BANDS=",".join(bands), ACQUIRED=date or "",
                        STRETCH_LOW=",".join(f"{v:g}" for v in limits[:, 0]),
                        STRETCH_HIGH=",".join(f"{v:g}" for v in limits[:, 1]))
    rgb8 = out / f"{name}_rgb8.jpg"
    write_jpeg(rgb8, to_rgb8(stack, limits))
    return StackResult(name, rgb_tif, rgb8, [], date)


def stack_scenes(root: Path, out: Path) -> list[StackResult]:
    """Every scene folder under `root` (a folder holding band files, or a folder of such folders)."""
    folders = [root] if find_bands(root) else sorted(p for p in root.iterdir() if p.is_dir() and find_bands(p))
    if not folders:
        raise DatasetNotFoundError(f"no Sentinel-2 band files (*_B04*.tif ...) under {root}")
    return [stack_scene(f, out) for f in folders]
