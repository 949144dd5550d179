"""What every consumer of a detector relies on: the serving engine implements it, and so do the test fakes.
Re-scoring, evaluation and the scale path type their detector with it, never `Any`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from shipdet.detections import Detections
from shipdet.scale import ScaleRange


class ModelDescription(Protocol):
    """The facts of a loaded model that its users read (`shipdet.inference.model.ModelInfo` has them all)."""

    @property
    def path(self) -> Path: ...
    @property
    def sha256(self) -> str: ...
    @property
    def task(self) -> str: ...
    @property
    def names(self) -> Mapping[int, str]: ...
    @property
    def name(self) -> str: ...
    @property
    def scale_range(self) -> ScaleRange | None: ...
    @property
    def default_conf(self) -> float: ...
    @property
    def default_views(self) -> int: ...
    @property
    def default_iou(self) -> float: ...

    def conf_for(self, factor: float, views: int | None = None) -> float: ...
    def views_for(self, factor: float) -> int: ...


class Detector(Protocol):
    """Images (H, W, 3 uint8) in, one `Detections` each out, in each image's own pixels."""

    @property
    def info(self) -> ModelDescription: ...
    @property
    def input_size(self) -> tuple[int, int]: ...

    def detect(self, images: Sequence[NDArray[np.uint8]], conf: float = 0.25, iou: float = 0.45
               ) -> list[Detections]: ...

    def for_factor(self, factor: float) -> Detector:
        """The detector for images resampled by `factor` before scoring (1: as posted): a model with a graph for
        upsampled imagery (`shipdet.inference.companion`) gives that one for factors above 1, else itself."""
        ...
