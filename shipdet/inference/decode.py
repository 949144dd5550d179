"""Decoding untrusted image bytes: header checks before any pixel is decoded, one scaling to 8-bit.

JPEG goes through libjpeg-turbo (simplejpeg), with Pillow for what it cannot do (CMYK, progressive
oddities); PNG through Pillow; TIFF through tifffile (8/16-bit, 1-4 bands, GeoTIFF tags). Non-8-bit and
non-RGB rasters are scaled by `shipdet.imaging.to_rgb8` (2-98 percentile stretch; 1 band repeated; 4 bands
-> the first three).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from affine import Affine
from numpy.typing import NDArray
from PIL import Image

from shipdet.errors import GeoreferenceError, ImageDecodeError, ImageTooLargeError, UnsupportedImageError
from shipdet.georef import GeoReference
from shipdet.imaging import to_rgb8

JPEG_MAGIC = b"\xff\xd8"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# tifffile logs an ERROR for each malformed tag it meets; on untrusted bytes that is the client's fault, said in
# the typed error it gets, and a way to flood the service's log: keep only tifffile's critical messages.
logging.getLogger("tifffile").setLevel(logging.CRITICAL)
TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
# A progressive JPEG is decoded once per scan: encoders write about 10, a crafted file thousands (tens of
# seconds of work from a small body). Start-of-scan markers cannot appear inside entropy-coded data (a 0xFF
# there is always followed by 0x00 or a restart code), so counting them bounds the scans from above.
MAX_JPEG_SCANS = 100
SOS_MARKER = b"\xff\xda"
# Decoded bytes per pixel at most: 4 bands of 16 bits. Wider samples (32/64-bit floats) at the pixel limit
# would decode to gigabytes.
MAX_BYTES_PER_PIXEL = 8


@dataclass
class DecodedImage:
    pixels: NDArray[np.uint8]        # (H, W, 3) RGB
    georef: GeoReference | None = None
    source_dtype: str = "uint8"
    bands: int = 3


def sniff(data: bytes) -> str:
    if data.startswith(JPEG_MAGIC):
        return "jpeg"
    if data.startswith(PNG_MAGIC):
        return "png"
    if data[:4] in TIFF_MAGICS:
        return "tiff"
    raise UnsupportedImageError("the body is not a JPEG, PNG or TIFF image" + (" (it is empty)" if not data else ""),
                           "send image/jpeg, image/png or image/tiff bytes")


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"image declares an empty size {width} x {height}")
    if width * height > max_pixels:
        raise ImageTooLargeError(f"image declares {width} x {height} = {width * height:,} pixels, the limit is "
                                 f"{max_pixels:,}", "cut it into tiles, or use `shipdet rescore` for whole scenes")


def _decode_jpeg(data: bytes, max_pixels: int) -> DecodedImage:
    import simplejpeg

    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError as exc:
        raise ImageDecodeError(f"corrupt JPEG header ({exc})") from exc
    _check_size(width, height, max_pixels)
    scans = data.count(SOS_MARKER)
    if scans > MAX_JPEG_SCANS:
        raise ImageTooLargeError(f"JPEG has {scans} scans, at most {MAX_JPEG_SCANS} are decoded",
                                 "re-encode it as a baseline JPEG or a PNG")
    if colorspace not in ("CMYK", "YCCK"):
        try:
            return DecodedImage(simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True))
        except ValueError:
            pass  # let Pillow try, and report its error if it fails too
    return DecodedImage(_pillow(data, max_pixels, "JPEG"))


def _pillow(data: bytes, max_pixels: int, kind: str) -> NDArray[np.uint8]:
    try:
        # Only the sniffed format: Pillow would otherwise try every registered plugin on untrusted bytes.
        with Image.open(io.BytesIO(data), formats=[kind]) as img:
            _check_size(img.width, img.height, max_pixels)
            img.load()
            if img.mode in ("I;16", "I;16B", "I", "F"):
                return to_rgb8(np.asarray(img))
            return np.asarray(img.convert("RGB"))
    except Image.DecompressionBombError as exc:  # Pillow's own guard can fire while reading the header
        raise ImageTooLargeError(f"image refused as a decompression bomb ({exc})",
                                 "cut it into tiles, or use `shipdet rescore` for whole scenes") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageDecodeError(f"corrupt or truncated image ({exc})") from exc


def _geotiff_reference(tags: dict[int, Any]) -> GeoReference | None:
    """Affine and CRS from GeoTIFF tags (pixel scale + tie point, or a transformation matrix) and geokeys."""
    keys = tags.get(34735)
    if keys is None:
        return None
    values = [int(v) for v in keys]
    geokeys = {values[i]: values[i + 3] for i in range(4, 4 + 4 * values[3], 4) if values[i + 1] == 0}
    epsg = geokeys.get(3072) or geokeys.get(2048)
    if not epsg or epsg == 32767:
        return None
    if 34264 in tags:
        m = [float(v) for v in tags[34264]]
        transform = Affine(m[0], m[1], m[3], m[4], m[5], m[7])
    elif 33550 in tags and 33922 in tags:
        sx, sy = (float(v) for v in list(tags[33550])[:2])
        i, j, _, x, y, _ = (float(v) for v in list(tags[33922])[:6])
        transform = Affine(sx, 0.0, x - i * sx, 0.0, -sy, y + j * sy)
    else:
        return None
    if geokeys.get(1025) == 2:  # PixelIsPoint: the tie point is a pixel centre
        transform = transform @ Affine.translation(-0.5, -0.5)
    try:
        return GeoReference.from_parts(transform, f"EPSG:{epsg}")
    except GeoreferenceError:
        return None


def _decode_tiff(data: bytes, max_pixels: int) -> DecodedImage:
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages.first
            shape = tuple(int(v) for v in page.shape)
            if getattr(page, "imagedepth", 1) > 1 or len(shape) > 3:  # a volume: pages of pages
                raise UnsupportedImageError(f"TIFF holds a volume (shape {shape}); send 2-D tiles")
            if len(shape) == 3 and page.planarconfig == tifffile.PLANARCONFIG.SEPARATE:  # planar: bands first
                bands, height, width = shape
            else:
                height, width = shape[:2]
                bands = shape[2] if len(shape) == 3 else 1
            _check_size(width, height, max_pixels)
            if bands > 4:
                raise UnsupportedImageError(f"TIFF has {bands} bands; 1-4 are supported", "send RGB or RGB+NIR tiles")
            itemsize = page.dtype.itemsize if page.dtype is not None else 0  # None: tifffile refuses it below
            if bands * itemsize > MAX_BYTES_PER_PIXEL:
                raise UnsupportedImageError(f"TIFF has {bands} bands of {page.dtype}, more than "
                                            f"{MAX_BYTES_PER_PIXEL} bytes a pixel", "send 8- or 16-bit tiles")
            arr = page.asarray()
            tags = {t.code: t.value for t in page.tags.values() if t.code in (33550, 33922, 34264, 34735)}
    except (ImageDecodeError, ImageTooLargeError):
        raise
    except Exception as exc:  # tifffile raises many types for corrupt files
        raise ImageDecodeError(f"corrupt or unsupported TIFF ({exc})") from exc
    if arr.ndim == 3 and arr.shape[0] == bands and arr.shape[-1] != bands:
        arr = np.moveaxis(arr, 0, -1)
    return DecodedImage(to_rgb8(arr), _geotiff_reference(tags), str(arr.dtype), bands)


def decode_image(data: bytes, max_pixels: int = 25_000_000) -> DecodedImage:
    """Decode image bytes of any supported kind; raises ImageDecodeError / ImageTooLargeError, nothing else."""
    kind = sniff(data)
    try:
        if kind == "jpeg":
            return _decode_jpeg(data, max_pixels)
        if kind == "png":
            return DecodedImage(_pillow(data, max_pixels, "PNG"))
        return _decode_tiff(data, max_pixels)
    except (ImageDecodeError, ImageTooLargeError):
        raise
    except Exception as exc:  # a decoder library failing in a way of its own is still a bad image, not a crash
        raise ImageDecodeError(f"cannot decode the {kind} image ({type(exc).__name__}: {exc})") from exc
