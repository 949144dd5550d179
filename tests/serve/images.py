"""Image bytes for service tests, including hostile ones."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def jpeg(w: int = 64, h: int = 64, value: int = 0, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), value, np.uint8)).convert(mode).save(buf, format="JPEG")
    return buf.getvalue()


def png(w: int = 64, h: int = 64, value: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def tiff(array: np.ndarray, **kwargs: object) -> bytes:
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, array, **kwargs)  # type: ignore[arg-type]
    return buf.getvalue()


def png_declaring(w: int, h: int) -> bytes:
    """A valid PNG signature and header claiming w x h pixels, with a tiny compressed body (a bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + \
        chunk(b"IEND", b"")


def tiff_bomb(w: int = 100_000, h: int = 100_000) -> bytes:
    """A TIFF whose header declares a huge image over a few bytes of compressed data."""
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, np.zeros((16, 16), np.uint8), compression="zlib")
    raw = bytearray(buf.getvalue())
    # Patch ImageWidth (256) and ImageLength (257) in the first IFD to the claimed size.
    ifd = struct.unpack_from("<I", raw, 4)[0]
    count = struct.unpack_from("<H", raw, ifd)[0]
    for i in range(count):
        at = ifd + 2 + 12 * i
        tag = struct.unpack_from("<H", raw, at)[0]
        if tag in (256, 257):
            value = w if tag == 256 else h
            struct.pack_into("<HHII", raw, at, tag, 4, 1, value)
    return bytes(raw)


def progressive_jpeg(scans: int, w: int = 64, h: int = 64) -> bytes:
    """A progressive JPEG whose last scan is repeated until the file holds `scans` scans (each is decoded
    again: thousands of them cost seconds from a few kilobytes)."""
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(buf, format="JPEG", progressive=True)
    data = buf.getvalue()
    last = data.rindex(b"\xff\xda")
    have = data.count(b"\xff\xda")
    return data[:-2] + data[last:-2] * max(scans - have, 0) + b"\xff\xd9"


def tiff_volume(depth: int = 64, side: int = 64) -> bytes:
    """A TIFF page holding a volume (ImageDepth): two of its dimensions pass a pixel limit, the third multiplies."""
    return tiff(np.zeros((depth, side, side, 1), np.uint8), volumetric=True, photometric="minisblack")
