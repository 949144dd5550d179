"""Reading training images of any source into 8-bit RGB, with one documented scaling for 16-bit rasters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from shipdet.errors import ImageDecodeError
from shipdet.imaging import to_rgb8

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")


def read_rgb8(path: Path) -> NDArray[np.uint8]:
    """Any supported image file as (H, W, 3) uint8; 16-bit and 1/4-band rasters are scaled by `to_rgb8`."""
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            arr = tifffile.imread(path)
            if arr.ndim == 3 and arr.shape[0] <= 4 and arr.shape[2] > 4:  # band-first GeoTIFF
                arr = np.moveaxis(arr, 0, -1)
            return to_rgb8(arr)
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except (OSError, ValueError) as exc:
        raise ImageDecodeError(f"cannot read image {path}: {exc}", "check the file is a complete image") from exc


def write_jpeg(path: Path, image: NDArray[np.uint8], quality: int = 95) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, quality=quality)
