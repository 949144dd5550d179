"""Reading a scene window by window (never whole), with one 8-bit scaling for the whole scene, its footprint and
the part of it with data (nodata and an optional cloud mask band removed)."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry
from shapely.ops import transform as shapely_transform

from shipdet.errors import DatasetFormatError
from shipdet.georef import GeoReference
from shipdet.imaging import Stretch, band_percentiles
from shipdet.rescore.sources import SceneSource, date_from_name, parse_time, resolve_sources
from shipdet.tiling import Window

log = logging.getLogger(__name__)
# GDAL caches raster blocks up to 5 % of RAM by default; windows are read once, so a small cache loses nothing
# and keeps a re-scoring worker's memory flat whatever the scene size (MiB; the user's own setting wins).
os.environ.setdefault("GDAL_CACHEMAX", "128")
OVERVIEW_SIZE = 1024  # longest side of the decimated read used for the stretch and the valid-data mask


@dataclass
class Scene:
    source: SceneSource
    datasets: list[Any]
    bands: list[tuple[int, int]]  # (dataset index, 1-based band)
    cloud_band: int | None = None
    limits: NDArray[np.float64] | None = None
    nodata: float = 0.0
    georef: GeoReference | None = None  # None: rows get pixel boxes but no lon/lat
    _overview: NDArray[Any] | None = field(default=None, repr=False)
    _stretch: Stretch | None = field(default=None, repr=False)

    @property
    def width(self) -> int:
        return int(self.datasets[0].width)

    @property
    def height(self) -> int:
        return int(self.datasets[0].height)

    @property
    def acquired(self) -> datetime | None:
        if self.source.acquired:
            return self.source.acquired
        tags = self.datasets[0].tags()
        for key in ("ACQUIRED", "ACQUISITION_DATE", "DATETIME", "TIFFTAG_DATETIME", "PRODUCT_START_TIME"):
            if tags.get(key):
                parsed = parse_time(str(tags[key]).replace(":", "-", 2) if key == "TIFFTAG_DATETIME" else tags[key])
                if parsed:
                    return parsed
        return date_from_name(self.source.paths[0].name)

    def gsd_m(self) -> float | None:
        """Metres per pixel at the scene's centre, from its georeference (None where it has none)."""
        if self.georef is None:
            return None
        return self.georef.gsd_m(self.width / 2, self.height / 2)

    def close(self) -> None:
        for ds in self.datasets:
            ds.close()

    def overview(self) -> NDArray[Any]:
        """A decimated (H', W', bands) read of the scene, for statistics only."""
        if self._overview is None:
            from rasterio.enums import Resampling

            scale = max(self.width, self.height) / OVERVIEW_SIZE
            shape = (max(1, round(self.height / max(scale, 1))), max(1, round(self.width / max(scale, 1))))
            self._overview = np.stack([self.datasets[d].read(b, out_shape=shape, resampling=Resampling.nearest)
                                       for d, b in self.bands], axis=-1)
        return self._overview

    def quicklook(self) -> NDArray[np.uint8]:
        """The decimated overview as 8-bit RGB, with the stretch the scene is scored with (never a whole read)."""
        return self._to_rgb8(self.overview())

    def _read_bands(self, w: Window) -> NDArray[Any]:
        from rasterio.windows import Window as RioWindow

        win = RioWindow(w.col, w.row, w.width, w.height)
        return np.stack([self.datasets[d].read(b, window=win) for d, b in self.bands], axis=-1)

    def _to_rgb8(self, arr: NDArray[Any]) -> NDArray[np.uint8]:
        if self._stretch is None:
            self._stretch = Stretch(self.limits)
        return self._stretch(arr)

    def read_window(self, w: Window) -> NDArray[np.uint8]:
        """The window scaled to 8-bit RGB."""
        return self._to_rgb8(self._read_bands(w))

    def read_window_with_data(self, w: Window) -> NDArray[np.uint8] | None:
        """As `read_window`, or None when every pixel is nodata in every band (the blank margins of granules and
        strips hold no ships: scoring them would cost time and invite false detections)."""
        arr = self._read_bands(w)
        return self._to_rgb8(arr) if np.any(arr != self.nodata) else None

    def footprint(self) -> BaseGeometry:
        """The scene's outline in WGS84 (edges densified, so a projected rectangle keeps its true shape)."""
        ref = self.georef
        if ref is None:
            return shapely.Polygon()
        t = np.linspace(0, 1, 17)[:-1]  # each edge stops short of the next one's first vertex (no repeats)
        w, h = self.width, self.height
        xs = np.concatenate([t * w, np.full_like(t, w), (1 - t) * w, np.zeros_like(t)])
        ys = np.concatenate([np.zeros_like(t), t * h, np.full_like(t, h), (1 - t) * h])
        lon, lat = ref.pixel_to_lonlat(xs, ys)
        return shapely.Polygon(np.column_stack([lon, lat]))

    def valid(self) -> tuple[BaseGeometry, float]:
        """The part with data and without cloud (WGS84), and its share of the scene."""
        ov = self.overview()
        mask = np.any(ov != self.nodata, axis=-1)
        if self.cloud_band is not None:
            from rasterio.enums import Resampling

            cloud = self.datasets[0].read(self.cloud_band, out_shape=ov.shape[:2], resampling=Resampling.nearest)
            mask &= cloud == 0
        fraction = float(mask.mean())
        ref = self.georef
        if ref is None or fraction == 0.0:
            return shapely.Polygon(), fraction
        from affine import Affine
        from rasterio import features

        sx, sy = self.width / mask.shape[1], self.height / mask.shape[0]
        transform = ref.transform @ Affine.scale(sx, sy)
        polys = [shapely.geometry.shape(g) for g, v in features.shapes(mask.astype(np.uint8), mask=mask,
                                                                     transform=transform) if v == 1]
        area = shapely.union_all(polys).simplify(max(abs(transform.a), abs(transform.e)))
        to_wgs = Transformer.from_crs(ref.crs, "EPSG:4326", always_xy=True)
        return shapely_transform(to_wgs.transform, area), fraction


def _georeference(source: SceneSource, ds: Any, crs: str | None) -> GeoReference | None:
    """Where the scene lies: its own transform and CRS; for a tile placed by a world file (GDAL reads .jgw, .pgw,
    .wld but no CRS), the CRS of a .prj beside it or the run's `crs`; for an ungeoreferenced rendering, the
    georeference of its band files when they share its pixel grid."""
    if not ds.transform.is_identity:
        if ds.crs is not None:
            return GeoReference.from_parts(ds.transform, ds.crs.to_wkt())
        prj = Path(ds.name).with_suffix(".prj")
        given = prj.read_text() if prj.is_file() else crs
        if given:
            return GeoReference.from_parts(ds.transform, given)
        log.warning("%s: placed by a world file with no CRS: rows get no lon/lat (give --crs or a .prj file)",
                    ds.name)
        return None
    if source.georef_from is not None:
        import rasterio

        with rasterio.open(source.georef_from) as ref:
            same_grid = (ref.width, ref.height) == (ds.width, ds.height)
            if same_grid and ref.crs is not None and not ref.transform.is_identity:
                return GeoReference.from_parts(ref.transform, ref.crs.to_wkt())
        log.warning("%s: not on the pixel grid of %s: rows get no lon/lat", ds.name, source.georef_from.name)
    return None


def open_scene(source: SceneSource, cloud_band: int | None = None, crs: str | None = None,
               limits: NDArray[np.float64] | None = None) -> Scene:
    """Open a scene's file(s); a 16-bit scene gets one scene-wide 2-98 % stretch (see shipdet.imaging), or
    `limits` where a caller already has them (a Ray worker gets the driver's). `crs` is the CRS of scenes placed by
    a world file without a .prj."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():  # a plain tile is fine; `_georeference` says when rows will lack lon/lat
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        datasets = [rasterio.open(p) for p in source.paths]
    try:
        if len(datasets) > 1:
            first = datasets[0]
            for ds in datasets[1:]:
                if (ds.width, ds.height, ds.transform) != (first.width, first.height, first.transform):
                    raise DatasetFormatError(f"{ds.name}: grid differs from {first.name}",
                                             "bands of one scene must share one grid")
            bands = [(i, 1) for i in range(len(datasets))]
        else:
            count = datasets[0].count
            wanted = source.bands or ([1, 2, 3] if count >= 3 else [1])
            if max(wanted) > count:
                raise DatasetFormatError(f"{source.paths[0]} has {count} bands, asked for {wanted}")
            bands = [(0, b) for b in wanted]
        nodata = datasets[0].nodata
        scene = Scene(source, datasets, bands, cloud_band, nodata=0.0 if nodata is None else float(nodata),
                      georef=_georeference(source, datasets[0], crs))
        if limits is not None:
            scene.limits = limits
        elif datasets[0].dtypes[0] != "uint8":
            scene.limits = band_percentiles(scene.overview())
        return scene
    except Exception:
        for ds in datasets:
            ds.close()
        raise


def image_gsd_m(path: Path, folder_sources: Sequence[SceneSource] | None = None) -> float | None:
    """Metres per pixel of one image as `shipdet rescore` would read it (its own georeference, a world file with a
    .prj, or the band files of its folder on the same pixel grid); None where it has none. `folder_sources`: what
    `resolve_sources` finds in the image's folder, where a caller asking for many of its images already has it."""
    sources = resolve_sources([str(path.parent)]) if folder_sources is None else folder_sources
    folder_scenes = [s for s in sources if s.paths[0] == path]
    scene = open_scene(folder_scenes[0] if folder_scenes else SceneSource(path.stem, [path]))
    try:
        return scene.gsd_m()
    finally:
        scene.close()
