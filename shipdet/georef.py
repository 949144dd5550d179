"""Pixels -> the raster's CRS (affine) -> WGS84, and ship size and heading on the ellipsoid."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from affine import Affine
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS, Geod, Transformer
from pyproj.exceptions import CRSError

from shipdet.detections import Detections
from shipdet.errors import GeoreferenceError
from shipdet.geometry import obb_to_corners, xyxy_to_obb

_GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class GeoReference:
    """Where an image lies: the affine pixel -> CRS transform (GDAL/rasterio order) and the CRS.

    Pixel coordinates are continuous: (0, 0) is the top-left corner of the top-left pixel.
    """

    transform: Affine
    crs: CRS

    @classmethod
    def from_parts(cls, transform: ArrayLike | Affine, crs: str | int | CRS) -> GeoReference:
        try:
            crs_obj = CRS.from_user_input(crs)
        except CRSError as exc:
            raise GeoreferenceError(f"unknown CRS {crs!r}: {exc}", "give an EPSG code such as EPSG:32653") from exc
        if isinstance(transform, Affine):
            affine = transform
        else:
            coeffs = [float(v) for v in np.asarray(transform, dtype=np.float64).reshape(-1)]
            if len(coeffs) not in (6, 9):
                raise GeoreferenceError(
                    f"an affine transform has 6 coefficients (a, b, c, d, e, f), got {len(coeffs)}",
                    "pass the raster's transform as rasterio prints it",
                )
            affine = Affine(*coeffs[:6])
        if abs(affine.determinant) < 1e-18:
            raise GeoreferenceError("the affine transform is singular (zero pixel size)", "check the transform")
        return cls(affine, crs_obj)

    @cached_property
    def _to_wgs84(self) -> Transformer:
        return Transformer.from_crs(self.crs, CRS.from_epsg(4326), always_xy=True)

    def gsd_m(self, x: float, y: float) -> float:
        """Metres per pixel at pixel (x, y): geodesic lengths of one pixel step along each axis (WGS84), their
        geometric mean. Holds for any CRS, degrees included."""
        lon, lat = self.pixel_to_lonlat([x, x + 1, x], [y, y, y + 1])
        _, _, dx = _GEOD.inv(lon[0], lat[0], lon[1], lat[1])
        _, _, dy = _GEOD.inv(lon[0], lat[0], lon[2], lat[2])
        return float(np.sqrt(abs(dx) * abs(dy)))

    def pixel_to_crs(self, x: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        t = self.transform
        xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):  # a client's absurd transform: callers check finiteness
            return t.a * xs + t.b * ys + t.c, t.d * xs + t.e * ys + t.f

    def pixel_to_lonlat(self, x: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        cx, cy = self.pixel_to_crs(x, y)
        lon, lat = self._to_wgs84.transform(cx, cy)
        return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)

    def footprint_lonlat(self, width: int, height: int) -> NDArray[np.float64]:
        """(4, 2) lon/lat of the image corners, clockwise from top-left."""
        lon, lat = self.pixel_to_lonlat([0, width, width, 0], [0, 0, height, height])
        return np.column_stack([lon, lat])


def georeference(detections: Detections, ref: GeoReference) -> Detections:
    """Add lon, lat (centre), length_m, width_m and heading_deg to each detection.

    Lengths are geodesic distances on the WGS84 ellipsoid between the midpoints of opposite box sides, so they
    are true ground sizes whatever the CRS (UTM scale factor included). Heading is the azimuth of the length axis
    in degrees clockwise from true north, in [0, 180): a box does not tell bow from stern. Axis-aligned boxes
    are treated as oriented boxes at angle 0 (their heading is only a bound).
    """
    n = len(detections)
    if n == 0:
        empty = np.zeros(0)
        return detections.with_data(lon=empty, lat=empty, length_m=empty, width_m=empty, heading_deg=empty)
    obb = detections.obb if detections.obb is not None else xyxy_to_obb(detections.xyxy)
    corners = obb_to_corners(obb)  # c0-c1 and c2-c3 run along the length; c1-c2 and c3-c0 across it
    mid = {
        "bow": (corners[:, 0] + corners[:, 3]) / 2,
        "stern": (corners[:, 1] + corners[:, 2]) / 2,
        "port": (corners[:, 0] + corners[:, 1]) / 2,
        "starboard": (corners[:, 2] + corners[:, 3]) / 2,
    }
    pts = np.concatenate([obb[:, :2], *mid.values()])
    lon, lat = ref.pixel_to_lonlat(pts[:, 0], pts[:, 1])
    lon_c, lon_b, lon_s, lon_p, lon_sb = np.split(lon, 5)
    lat_c, lat_b, lat_s, lat_p, lat_sb = np.split(lat, 5)
    azimuth, _, length = _GEOD.inv(lon_s, lat_s, lon_b, lat_b)
    _, _, width = _GEOD.inv(lon_p, lat_p, lon_sb, lat_sb)
    heading = np.mod(np.asarray(azimuth, dtype=np.float64), 180.0)
    return detections.with_data(
        lon=lon_c, lat=lat_c, length_m=np.asarray(length, dtype=np.float64),
        width_m=np.asarray(width, dtype=np.float64), heading_deg=heading,
    )
