"""Letterboxing into the model's input and decoding raw YOLO outputs back into `Detections`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from shipdet.detections import Detections
from shipdet.geometry import nms

PAD_VALUE = 114  # ultralytics' letterbox grey


@dataclass(frozen=True)
class Letterbox:
    """How an image was placed in the model input: scale, then padding (left, top)."""

    scale: float
    pad_x: float
    pad_y: float
    width: int
    height: int


def letterbox_into(image: NDArray[np.uint8], out: NDArray[np.float32], size: tuple[int, int]) -> Letterbox:
    """Resize `image` (H, W, 3) to fit `size` (h, w) keeping its aspect, centre it on grey, write CHW floats in
    [0, 1] into `out` (3, h, w). A tile already of the model's size is copied without resampling."""
    h, w = image.shape[:2]
    th, tw = size
    scale = min(th / h, tw / w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if (nh, nw) != (h, w):
        image = np.asarray(Image.fromarray(image).resize((nw, nh), Image.Resampling.BILINEAR))
    top, left = (th - nh) // 2, (tw - nw) // 2
    if (nh, nw) != (th, tw):
        out.fill(PAD_VALUE / 255.0)
    np.multiply(image.transpose(2, 0, 1), np.float32(1 / 255.0), out=out[:, top:top + nh, left:left + nw],
                casting="unsafe")
    return Letterbox(scale, float(left), float(top), w, h)


# Most detections one image (a tile or a scene's window) returns unless a caller asks for another cap.
DEFAULT_MAX_DET = 300


def decode_yolo(
    raw: NDArray[np.float32],
    box: Letterbox,
    task: str,
    names: dict[int, str],
    conf: float,
    iou: float,
    classes: list[int] | None = None,
    max_det: int = DEFAULT_MAX_DET,
    max_candidates: int = 3000,
) -> Detections:
    """One image's raw output, (4 + nc [+ 1 angle], anchors), to detections in the original image's pixels.

    Rows are centre x, centre y, width, height (input pixels), one score per class, and for oriented models the
    angle in radians (width along it). Class-aware NMS follows; boxes are then mapped out of the letterbox.
    """
    nc = len(names)
    pred = raw.T
    scores_all = pred[:, 4:4 + nc]
    cls = scores_all.argmax(axis=1)
    score = scores_all[np.arange(len(pred)), cls]
    keep = score > conf
    if classes is not None:
        keep &= np.isin(cls, classes)
    idx = np.flatnonzero(keep)
    if len(idx) > max_candidates:
        idx = idx[np.argsort(-score[idx])[:max_candidates]]
    pred, cls, score = pred[idx].astype(np.float64), cls[idx], score[idx].astype(np.float64)
    if task == "obb":
        boxes = np.column_stack([pred[:, :4], pred[:, 4 + nc]])
    else:
        xy, wh = pred[:, :2], pred[:, 2:4]
        boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1)
    kept = nms(boxes, score, iou, cls)[:max_det]
    boxes, score, cls = boxes[kept], score[kept], cls[kept]
    if task == "obb":
        boxes[:, :2] -= (box.pad_x, box.pad_y)
        boxes[:, :4] /= box.scale
        return Detections.from_obb(boxes, score, cls, names)
    boxes -= (box.pad_x, box.pad_y, box.pad_x, box.pad_y)
    boxes /= box.scale
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, box.width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, box.height)
    return Detections(np.asarray(boxes, dtype=np.float64), score, cls, class_names=dict(names))
