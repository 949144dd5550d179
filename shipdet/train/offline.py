"""Offline switches for ultralytics, albumentations and onnxruntime, set by code rather than left to the user.

Ultralytics otherwise reaches the network for settings sync, pip auto-installs, its font (`check_font` ignores
YOLO_OFFLINE) and the AMP check's reference weights. Call `ensure_offline()` before importing ultralytics.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

OFFLINE_ENV = {
    "YOLO_OFFLINE": "1",
    "YOLO_AUTOINSTALL": "false",
    "YOLO_VERBOSE": "true",
    "NO_ALBUMENTATIONS_UPDATE": "1",
    "ORT_DISABLE_TELEMETRY": "1",
    "HF_HUB_OFFLINE": "1",
}


def config_dir() -> Path:
    """shipdet's own ultralytics config folder (settings and the font), under the user cache."""
    base = os.environ.get("SHIPDET_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")), "shipdet")
    return Path(base) / "yolo-config"


def ensure_offline() -> Path:
    """Set the offline environment, provide the font ultralytics wants, return YOLO_CONFIG_DIR."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    cfg = Path(os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir())))
    font = cfg / "Ultralytics" / "Arial.ttf"
    if not font.exists():
        import matplotlib

        # Any TTF will do for plot labels; matplotlib bundles DejaVu Sans, so nothing is downloaded.
        source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        font.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, font)
    import ultralytics.utils

    ultralytics.utils.SETTINGS.update({"sync": False})
    return cfg
