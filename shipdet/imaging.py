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
