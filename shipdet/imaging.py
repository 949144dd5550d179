"""Pixel scaling shared by training data, the engine and re-scoring, so a model sees the same values everywhere.

16-bit (and float) rasters become 8-bit by a per-band 2-98 percentile stretch over valid (non-zero, finite)
pixels: `(v - p2) / (p98 - p2) * 255`, clipped. This is the stretch of the published Sentinel-2 `_rgb8`
renderings; a caller that needs identical values across tiles of one scene passes the scene's percentiles.
Band layouts: 1 band -> grey repeated, 2 bands -> first band repeated, 3 -> RGB, 4 -> first three (RGB + NIR).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

STRETCH_PERCENTILES = (2.0, 98.0)


def band_percentiles(arr: NDArray[np.generic], percentiles: tuple[float, float] = STRETCH_PERCENTILES
                     ) -> NDArray[np.float64]:
    """(bands, 2) low/high percentile of each band over valid pixels; arr is (H, W, bands)."""
    out = np.zeros((arr.shape[2], 2))
    for b in range(arr.shape[2]):
        band = arr[..., b].astype(np.float64)
        valid = band[np.isfinite(band) & (band != 0)]
        if valid.size == 0:
            out[b] = (0.0, 1.0)
        else:
            lo, hi = np.percentile(valid, percentiles)
            out[b] = (lo, hi if hi > lo else lo + 1.0)
    return out


def to_rgb8(arr: NDArray[np.generic], limits: NDArray[np.float64] | None = None) -> NDArray[np.uint8]:
    """(H, W) or (H, W, bands) array of any dtype -> (H, W, 3) uint8, see the module doc for the scaling."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] == 0:
        raise ValueError(f"expected an image of shape (H, W) or (H, W, bands), got {arr.shape}")
    bands = arr.shape[2]
    arr = arr[:, :, :3] if bands >= 3 else np.repeat(arr[:, :, :1], 3, axis=2)
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    lims = band_percentiles(arr) if limits is None else np.asarray(limits, dtype=np.float64)[:3]
    if len(lims) < 3:
        lims = np.repeat(lims[:1], 3, axis=0)
    lo, hi = lims[:, 0], lims[:, 1]
    scaled = (arr.astype(np.float32) - lo.astype(np.float32)) / (hi - lo).astype(np.float32) * 255.0
    return np.clip(np.nan_to_num(scaled), 0, 255).astype(np.uint8)


class Stretch:
    """`to_rgb8` with fixed limits, as a per-band lookup table for 8- and 16-bit integer rasters: a scene's windows
    are all scaled with one set of limits, and a table lookup costs a fifth of the float arithmetic per window (the
    arithmetic alone is slower than a GPU scores the window). Same values as `to_rgb8`: the table is made by it."""

    def __init__(self, limits: NDArray[np.float64] | None) -> None:
        self.limits = limits
        self._tables: dict[np.dtype[np.generic], NDArray[np.uint8]] = {}

    def _table(self, dtype: np.dtype[np.generic]) -> NDArray[np.uint8]:
        if dtype not in self._tables:
            info = np.iinfo(dtype)  # type: ignore[type-var]
            values = np.arange(info.min, info.max + 1, dtype=dtype)[:, None, None]
            self._tables[dtype] = to_rgb8(np.repeat(values, 3, axis=2), self.limits)[:, 0, :].T.copy()  # (3, values)
        return self._tables[dtype]

    def __call__(self, arr: NDArray[np.generic]) -> NDArray[np.uint8]:
        if arr.dtype not in (np.uint16, np.int16) or self.limits is None or arr.ndim != 3:
            return to_rgb8(arr, self.limits)
        table = self._table(arr.dtype)
        offset = -int(np.iinfo(arr.dtype).min)  # type: ignore[type-var]
        bands = [0, 1, 2] if arr.shape[2] >= 3 else [0, 0, 0]
        out = np.empty((*arr.shape[:2], 3), dtype=np.uint8)
        for i, b in enumerate(bands):
            index = arr[..., b].astype(np.intp)  # take() converts to intp anyway
            if offset:
                index += offset
            np.take(table[i], index, out=out[..., i])
        return out
