"""Shared fixtures. Tests never touch the network; real-data tests skip cleanly where the data is absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

for _key, _value in {"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "false", "NO_ALBUMENTATIONS_UPDATE": "1",
                     "ORT_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1"}.items():
    os.environ.setdefault(_key, _value)

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = Path(os.environ.get("SHIPDET_REAL_DATA", REPO.parent / "shared" / "data" / "ships"))


@pytest.fixture
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"real ship data not found at {REAL_DATA} (set SHIPDET_REAL_DATA)")
    return REAL_DATA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def write_geotiff(path: Path, array: np.ndarray, transform: object, crs: str) -> Path:
    """A tiny GeoTIFF with a real CRS and transform (array is (H, W) or (H, W, bands))."""
    import rasterio

    arr = array if array.ndim == 3 else array[..., None]
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=arr.shape[2],
                       dtype=arr.dtype.name, crs=crs, transform=transform) as dst:
        dst.write(np.moveaxis(arr, -1, 0))
    return path
