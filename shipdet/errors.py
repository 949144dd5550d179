"""Typed errors. Each says what was wrong and what to do about it; the CLI prints them without a traceback."""

from __future__ import annotations


class ShipdetError(Exception):
    """Base class: `message` says what went wrong, `hint` what the user can do."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class DatasetNotFoundError(ShipdetError):
    """A dataset root or one of its expected files is missing."""


class DatasetFormatError(ShipdetError):
    """A dataset file is present but malformed (bad row, unknown class, bad geometry)."""


class ImageDecodeError(ShipdetError):
    """Bytes or a file could not be decoded as a supported image."""


class UnsupportedImageError(ImageDecodeError):
    """A well-formed image of a kind the service does not take (not JPEG/PNG/TIFF, or an unsupported band count)."""


class ImageTooLargeError(ShipdetError):
    """An image declares more pixels than allowed (decompression-bomb guard)."""


class ModelLoadError(ShipdetError):
    """An ONNX model is missing, corrupt, or does not match its model card."""


class GeoreferenceError(ShipdetError):
    """A transform or CRS is missing or unusable."""


class ConfigError(ShipdetError):
    """Settings are inconsistent or unsafe."""
