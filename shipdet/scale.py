"""Ground sample distance as part of the model: resampling imagery to the scale range a model was trained for.

A ship 8 px long at 10 m and 300 px long at 0.3 m is one object at two scales, and a detector only sees pixels.
A model records the GSD range it was trained for (`ScaleRange`, in its ONNX metadata and card); imagery whose GSD
is known is resampled into that range before tiling (Sentinel-2 at 10 m is upsampled to the range's coarse end),
and the boxes found are mapped back by the same factor. Imagery without a known GSD is scored as it is.

The same `resample` is used to cut training tiles and at inference, so the model sees the same interpolation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from shipdet.detections import Detections
from shipdet.errors import ConfigError
from shipdet.tiling import Window, tile_windows

METADATA_KEY = "shipdet_gsd_range_m"
MAX_FACTOR = 8.0   # beyond this, resampling invents detail rather than revealing it (and costs f^2 tiles)
MIN_FACTOR = 1 / 8
GSD_MIN_M, GSD_MAX_M = 0.01, 1000.0  # plausible metres per pixel, given or read from a georeference


@dataclass(frozen=True)
class ScaleRange:
    """The ground sample distances (metres per pixel) a model was trained for: finest and coarsest."""

    finest_m: float
    coarsest_m: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.finest_m) and math.isfinite(self.coarsest_m)
                and 0 < self.finest_m <= self.coarsest_m):
            raise ConfigError(f"scale range {self.finest_m}-{self.coarsest_m} m is not 0 < finest <= coarsest")

    def factor_for(self, gsd_m: float | None) -> float:
        """How much to resample imagery of `gsd_m` (>1 upsamples): 1 inside the range or when the GSD is
        unknown; otherwise the factor that brings it to the nearest end of the range, within [1/8, 8]."""
        if gsd_m is None:
            return 1.0
        check_gsd(gsd_m)
        target = min(max(gsd_m, self.finest_m), self.coarsest_m)
        return float(min(max(gsd_m / target, MIN_FACTOR), MAX_FACTOR))

    def to_metadata(self) -> str:
        return json.dumps([self.finest_m, self.coarsest_m])

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> ScaleRange | None:
        """The range an exported model declares, or None for a model exported before scale was recorded."""
        raw = metadata.get(METADATA_KEY)
        if not raw:
            return None
        try:
            finest, coarsest = (float(v) for v in json.loads(raw))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"model metadata {METADATA_KEY}={raw!r} is not [finest, coarsest]") from exc
        return cls(finest, coarsest)


def plausible_gsd(gsd_m: float) -> bool:
    return math.isfinite(gsd_m) and GSD_MIN_M <= gsd_m <= GSD_MAX_M


def check_gsd(gsd_m: float) -> float:
    if not plausible_gsd(gsd_m):
        raise ConfigError(f"ground sample distance {gsd_m} m is outside {GSD_MIN_M:g}-{GSD_MAX_M:g} m",
                          "give metres per pixel, e.g. 10 for Sentinel-2")
    return gsd_m


def resampled_size(width: int, height: int, factor: float) -> tuple[int, int]:
    return max(1, round(width * factor)), max(1, round(height * factor))


def resample(image: NDArray[np.uint8], factor: float) -> NDArray[np.uint8]:
    """An (H, W, 3) uint8 image resampled by `factor` (bicubic up, area-averaging down); 1 returns it as is.

    Pixel (x, y) of the result covers (x / sx, y / sy) of the input, where (sx, sy) = new size / old size: boxes
    map back exactly with `Detections.scaled(1 / sx, 1 / sy)`.
    """
    if factor == 1.0:
        return image
    height, width = image.shape[:2]
    size = resampled_size(width, height, factor)
    method = Image.Resampling.BICUBIC if factor > 1 else Image.Resampling.BOX
    return np.asarray(Image.fromarray(image).resize(size, method))


def scaled_windows(width: int, height: int, tile: int, overlap: int, grid: str, factor: float) -> list[Window]:
    """Windows in the image's own pixels that are `tile` x `tile` (at most) once resampled by `factor`; `overlap`
    is in resampled pixels, as the model sees them. Resampling window by window, instead of the whole scene first,
    keeps memory flat whatever the scene size."""
    native_tile = max(1, math.floor(tile / factor))
    native_overlap = min(round(overlap / factor), native_tile - 1)
    return tile_windows(width, height, native_tile, max(native_overlap, 0), grid)


class WindowDetector(Protocol):
    """The part of `shipdet.inference.detector.Detector` the scale path needs (no import cycle)."""

    def detect(self, images: Sequence[NDArray[np.uint8]], conf: float = 0.25, iou: float = 0.45
               ) -> list[Detections]: ...

    def for_factor(self, factor: float) -> WindowDetector: ...


def detect_resampled(detector: WindowDetector, windows: Sequence[NDArray[np.uint8]], factor: float, conf: float,
                     iou: float) -> list[Detections]:
    """Each window resampled by `factor`, scored (by the model's graph for upsampled imagery where it has one and
    `factor` upsamples), and its boxes mapped back to the window's own pixels."""
    resampled = [resample(w, factor) for w in windows]
    found = detector.for_factor(factor).detect(resampled, conf=conf, iou=iou)
    if factor == 1.0:
        return found
    return [d.scaled(w.shape[1] / r.shape[1], w.shape[0] / r.shape[0])
            for d, w, r in zip(found, windows, resampled, strict=True)]
