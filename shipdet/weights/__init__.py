"""The bundled default model (ONNX, its INT8 twin and its card), shipped as package data: found the same way
from a checkout, an editable install and an installed wheel."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEFAULT_MODEL_NAME = "shipdet-default.onnx"


def bundled_model(name: str = DEFAULT_MODEL_NAME) -> Path:
    """Path of a bundled model file (package data of `shipdet.weights`)."""
    return Path(str(resources.files(__name__) / name))
