"""Procedural satellite-like ship scenes with exact oriented labels, deterministic for a seed.

Sea with low-frequency texture and sun glint, an optional coastline with quays, ships with realistic
length/width ratios (5-8) and headings, some moored side by side at quays, wakes behind moving ships,
clouds and haze, and empty scenes. Used by the tests and demos of every part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from shipdet.detections import Detections
from shipdet.geometry import corners_to_obb, obb_iou, obb_to_corners


@dataclass(frozen=True)
class SynthConfig:
    width: int = 640
    height: int = 640
    gsd_m: float = 3.0
    max_ships: int = 12
    empty_fraction: float = 0.1
    coast_probability: float = 0.5
    cloud_probability: float = 0.3
    min_length_m: float = 25.0
    max_length_m: float = 320.0


def _noise(rng: np.random.Generator, h: int, w: int, cells: int) -> NDArray[np.float32]:
    """Smooth noise in [0, 1]: a coarse random grid resized bicubically."""
    grid = (rng.random((cells, cells)) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(grid).resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32) / 255.0


def _sea(rng: np.random.Generator, h: int, w: int) -> NDArray[np.float32]:
    base = np.array([18, 42, 58], dtype=np.float32) + rng.normal(0, 6, 3).astype(np.float32)
    tex = _noise(rng, h, w, 6) * 14 + _noise(rng, h, w, 40) * 6 + rng.normal(0, 2.0, (h, w)).astype(np.float32)
    img = base[None, None, :] + tex[..., None]
    glint = rng.random((h, w)) > 0.9985
    img[glint] += rng.uniform(60, 140)
    return img


Quay = tuple[float, float, float]  # centre x, y of its seaward end, width


def _coast(rng: np.random.Generator, img: NDArray[np.float32]) -> tuple[NDArray[np.float32], list[Quay]]:
    """Land across the top with a wobbly shoreline and rectangular quays; returns quays as (x, y_end, width)."""
    h, w = img.shape[:2]
    shore = (h * rng.uniform(0.12, 0.3) + (_noise(rng, 1, w, 5)[0] - 0.5) * h * 0.08).astype(np.int64)
    land = np.arange(h)[:, None] < shore[None, :]
    land_colour = np.array([95, 88, 70], dtype=np.float32) + rng.normal(0, 8, 3).astype(np.float32)
    tex = _noise(rng, h, w, 30)[..., None] * 40
    img = np.where(land[..., None], land_colour + tex, img)
    quays = []
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for _ in range(rng.integers(1, 4)):
        qx = float(rng.uniform(0.1, 0.9) * w)
        qw = float(rng.uniform(0.03, 0.06) * w)
        qend = float(shore[int(qx)] + rng.uniform(0.15, 0.35) * h)
        draw.rectangle([qx - qw / 2, 0, qx + qw / 2, qend], fill=(150, 150, 145))
        quays.append((qx, qend, qw))
    return np.asarray(pil, dtype=np.float32), quays


def _hull(obb: NDArray[np.float64]) -> list[tuple[float, float]]:
    """A ship outline: a rectangle with a pointed bow, inside its oriented box."""
    cx, cy, length, width, angle = obb
    c, s = math.cos(angle), math.sin(angle)
    local = [(length / 2, 0), (length / 2 - width, width / 2), (-length / 2, width / 2),
             (-length / 2, -width / 2), (length / 2 - width, -width / 2)]
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in local]


def _draw_ship(draw: ImageDraw.ImageDraw, rng: np.random.Generator, obb: NDArray[np.float64], wake: bool) -> None:
    cx, cy, length, width, angle = obb
    c, s = math.cos(angle), math.sin(angle)
    if wake:
        spread = width * rng.uniform(1.5, 3.0)
        tail = length * rng.uniform(1.0, 2.5)
        stern = (cx - c * length / 2, cy - s * length / 2)
        back = (stern[0] - c * tail, stern[1] - s * tail)
        draw.polygon([stern, (back[0] - s * spread, back[1] + c * spread),
                      (back[0] + s * spread, back[1] - c * spread)], fill=(70, 90, 100))
    tone = rng.choice([0, 1, 2, 3])
    colour = [(200, 200, 195), (150, 40, 35), (45, 45, 50), (40, 70, 120)][tone]
    draw.polygon(_hull(obb), fill=tuple(int(v) for v in colour))
    deck = np.array([cx - c * length * 0.25, cy - s * length * 0.25, length * 0.18, width * 0.6, angle])
    draw.polygon([tuple(p) for p in obb_to_corners(deck[None])[0]], fill=(235, 235, 230))


def _place(rng: np.random.Generator, cfg: SynthConfig, quays: list[Quay],
           sea_top: float) -> tuple[list[NDArray[np.float64]], list[bool]]:
    """Ship boxes (pixels) that do not overlap, some moored in pairs along quays; and which ones move."""
    boxes: list[NDArray[np.float64]] = []
    moving: list[bool] = []

    def fits(box: NDArray[np.float64]) -> bool:
        corners = obb_to_corners(box[None])[0]
        inside = (corners[:, 0].min() >= 1 and corners[:, 1].min() >= 1 and corners[:, 0].max() <= cfg.width - 1
                  and corners[:, 1].max() <= cfg.height - 1)
        return inside and (not boxes or obb_iou(box[None], np.array(boxes)).max() == 0)

    def size() -> tuple[float, float]:
        length_m = float(np.exp(rng.uniform(np.log(cfg.min_length_m), np.log(cfg.max_length_m))))
        length = max(length_m / cfg.gsd_m, 6.0)
        return length, max(length / rng.uniform(5.0, 8.0), 2.0)

    n_target = int(rng.integers(1, cfg.max_ships + 1))
    for qx, qend, qw in quays:  # moored pairs side by side, parallel to the quay
        if len(boxes) >= n_target:
            break
        length, width = size()
        side = rng.choice([-1.0, 1.0])
        cy = qend - length / 2 - rng.uniform(0, 10)
        for k in range(int(rng.integers(1, 3))):
            cx = qx + side * (qw / 2 + width * (k + 0.5) + 1.0 + k)
            box = np.array([cx, cy, length, width, math.pi / 2])
            if fits(box):
                boxes.append(box)
                moving.append(False)
    for _ in range(200):
        if len(boxes) >= n_target:
            break
        length, width = size()
        box = np.array([rng.uniform(0, cfg.width), rng.uniform(sea_top, cfg.height), length, width,
                        rng.uniform(-math.pi, math.pi)])
        if fits(box):
            boxes.append(box)
            moving.append(bool(rng.random() < 0.5))
    return boxes, moving


def make_scene(seed: int, cfg: SynthConfig = SynthConfig()) -> tuple[NDArray[np.uint8], Detections]:
    """One scene (H, W, 3) uint8 and its ships as oriented boxes (class 0, `ship`)."""
    rng = np.random.default_rng(seed)
    h, w = cfg.height, cfg.width
    img = _sea(rng, h, w)
    quays: list[Quay] = []
    sea_top = 0.0
    if rng.random() < cfg.coast_probability:
        img, quays = _coast(rng, img)
        sea_top = h * 0.4
    boxes, moving = ([], []) if rng.random() < cfg.empty_fraction else _place(rng, cfg, quays, sea_top)
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for box, move in zip(boxes, moving, strict=True):
        _draw_ship(draw, rng, box, move)
    out = np.asarray(pil, dtype=np.float32)
    visible = np.ones(len(boxes), dtype=bool)
    if rng.random() < cfg.cloud_probability:
        cloud = np.clip((_noise(rng, h, w, 5) - rng.uniform(0.45, 0.65)) * 3.0, 0, 1)
        out = out * (1 - cloud[..., None]) + 235 * cloud[..., None]
        visible = np.array([cloud[int(min(b[1], h - 1)), int(min(b[0], w - 1))] < 0.5 for b in boxes], dtype=bool)
    haze = rng.uniform(0, 0.15)
    out = out * (1 - haze) + 200 * haze
    image = np.clip(out, 0, 255).astype(np.uint8)
    obb = np.array(boxes).reshape(-1, 5)[visible]
    k = int(rng.integers(0, 4))  # put the coast on any side
    if k:
        image = np.ascontiguousarray(np.rot90(image, k))
        corners = obb_to_corners(obb)
        for _ in range(k):  # np.rot90 (counter-clockwise): (x, y) -> (y, width - x)
            corners = np.stack([corners[..., 1], w - corners[..., 0]], axis=-1) if len(corners) else corners
            h, w = w, h
        obb = corners_to_obb(corners) if len(corners) else obb
    return image, Detections.from_obb(obb, np.ones(len(obb)), np.zeros(len(obb), dtype=np.int64))
