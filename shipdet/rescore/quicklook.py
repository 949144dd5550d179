"""Each scene's quicklook, made while it is scored: the decimated overview the run reads anyway (for the valid
mask), with the scoring stretch, as a JPEG in the run folder. The review page draws it at once, however large the
scene (making it later would mean another pass over the file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

FOLDER = Path("review-cache") / "quicklooks"


def quicklook_path(run: Path, scene_id: str) -> Path:
    return run / FOLDER / f"{scene_id}.jpg"


def write_quicklook(run: Path, scene_id: str, pixels: NDArray[np.uint8]) -> Path:
    from PIL import Image

    path = quicklook_path(run, scene_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(pixels).save(tmp, format="JPEG", quality=85)
    tmp.replace(path)  # readers see the old file or the whole new one
    return path
