"""The satellite augmentation pipeline (albumentations), inserted into ultralytics' transforms.

Ultralytics rebuilds its transforms when mosaic closes (`close_mosaic`), so a transform added once in
`build_dataset` would be dropped for the last epochs. `SatelliteYOLODataset.build_transforms` inserts it
every time the transforms are built, and a shared counter records its calls so tests and run logs can
show it ran in every epoch.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

ENV_KEY = "SHIPDET_AUGMENT"  # the config travels to DDP workers through the environment


@dataclass(frozen=True)
class AugmentConfig:
    enabled: bool = True
    rot90: float = 0.5            # probability of a random multiple of 90 degrees
    flip: float = 0.5             # probability of each of a horizontal and a vertical flip
    scale_jitter: float = 0.25    # zoom in [1 - s, 1 + s]: ground sample distance varies by sensor
    scale_p: float = 0.3
    brightness_contrast: float = 0.4
    gamma: float = 0.2
    noise: float = 0.2
    blur: float = 0.1
    jpeg: float = 0.2
    haze: float = 0.1
    cloud: float = 0.1            # a soft bright occluding blob, as thin cloud

    @classmethod
    def from_env(cls) -> AugmentConfig:
        raw = os.environ.get(ENV_KEY)
        return cls(**json.loads(raw)) if raw else cls()

    def to_env(self) -> None:
        os.environ[ENV_KEY] = json.dumps(asdict(self))


def _cloud(image: NDArray[np.uint8], **_: Any) -> NDArray[np.uint8]:
    import cv2

    h, w = image.shape[:2]
    grid = np.random.rand(4, 4).astype(np.float32)
    blob = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    alpha = np.clip((blob - np.random.uniform(0.5, 0.75)) * 3.0, 0.0, 0.85)[..., None]
    return (image * (1 - alpha) + 230 * alpha).astype(np.uint8)


class SatelliteAugment:
    """An ultralytics transform: albumentations geometry on box corners, then photometric changes."""

    def __init__(self, cfg: AugmentConfig) -> None:
        import albumentations as A

        self.cfg = cfg
        self.calls = mp.Value("q", 0)
        self.geometric = A.Compose(
            [A.RandomRotate90(p=cfg.rot90), A.HorizontalFlip(p=cfg.flip), A.VerticalFlip(p=cfg.flip),
             A.Affine(scale=(1 - cfg.scale_jitter, 1 + cfg.scale_jitter), keep_ratio=True, p=cfg.scale_p)],
            keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
        )
        self.photometric = A.Compose([
            A.RandomBrightnessContrast(p=cfg.brightness_contrast),
            A.RandomGamma(p=cfg.gamma),
            A.GaussNoise(std_range=(0.02, 0.08), p=cfg.noise),
            A.OneOf([A.GaussianBlur(blur_limit=(3, 5)), A.MotionBlur(blur_limit=(3, 5))], p=cfg.blur),
            A.ImageCompression(quality_range=(40, 95), p=cfg.jpeg),
            A.RandomFog(fog_coef_range=(0.1, 0.3), alpha_coef=0.1, p=cfg.haze),
            A.Lambda(image=_cloud, p=cfg.cloud),
        ])

    def __call__(self, labels: dict[str, Any]) -> dict[str, Any]:
        with self.calls.get_lock():
            self.calls.value += 1
        image = labels["img"]
        h, w = image.shape[:2]
        inst = labels["instances"]
        inst.convert_bbox("xyxy")
        inst.denormalize(w, h)
        n = len(inst)
        oriented = inst.segments is not None and len(inst.segments) == n and n > 0 and inst.segments.shape[1] == 4
        if oriented:
            corners = inst.segments.reshape(-1, 2)
        else:
            x1, y1, x2, y2 = inst.bboxes.T
            corners = np.stack([np.stack([x1, y1], 1), np.stack([x2, y1], 1), np.stack([x2, y2], 1),
                                np.stack([x1, y2], 1)], axis=1).reshape(-1, 2)
        out = self.geometric(image=image, keypoints=corners)
        image = out["image"]
        pts = np.asarray(out["keypoints"], dtype=np.float32).reshape(n, 4, 2)
        nh, nw = image.shape[:2]
        lo, hi = pts.min(axis=1), pts.max(axis=1)
        clipped_lo, clipped_hi = np.clip(lo, 0, (nw, nh)), np.clip(hi, 0, (nw, nh))
        full = np.prod(np.maximum(hi - lo, 1e-6), axis=1)
        visible = np.prod(np.maximum(clipped_hi - clipped_lo, 0), axis=1) / full
        keep = (visible >= 0.4) & (np.min(clipped_hi - clipped_lo, axis=1) >= 2)
        boxes = np.concatenate([clipped_lo, clipped_hi], axis=1)[keep].astype(np.float32)
        segments = pts[keep] if oriented else None
        labels["instances"] = inst[keep] if keep.size else inst
        labels["instances"].update(bboxes=boxes, segments=segments)
        labels["cls"] = labels["cls"][keep] if keep.size else labels["cls"]
        labels["img"] = np.ascontiguousarray(self.photometric(image=image)["image"])
        labels["resized_shape"] = (nh, nw)
        return labels
