"""One scene's ships: windows at the model's scale, read ahead of inference, batched, merged across seams."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipdet.detections import Detections
from shipdet.inference.detector import Detector
from shipdet.inference.operating_point import for_imagery
from shipdet.inference.postprocess import DEFAULT_MAX_DET
from shipdet.inference.views import ViewedDetector
from shipdet.rescore.params import RescoreParams
from shipdet.rescore.scene import Scene
from shipdet.scale import detect_resampled, scaled_windows
from shipdet.tiling import Window, merge_windows


def _read_ahead(scene: Scene, windows: list[Window], depth: int) -> queue.Queue[Any]:
    """A background thread reads and scales windows into a bounded queue, so inference never waits on disk."""
    out: queue.Queue[Any] = queue.Queue(maxsize=depth)

    def work() -> None:
        try:
            for w in windows:
                out.put((w, scene.read_window_with_data(w)))
        except Exception as exc:  # handed to the consumer, which fails the scene
            out.put(exc)

    threading.Thread(target=work, daemon=True, name=f"read-{scene.source.scene_id}").start()
    return out


@dataclass(frozen=True)
class ScoredScene:
    detections: Detections  # merged, in the scene's own pixels
    tiles: int              # windows scored
    gsd_m: float | None     # the scene's ground sample distance, where known
    factor: float           # the resampling applied before tiling (1: none)
    # Windows that returned the detector's cap (DEFAULT_MAX_DET): each may hold more ships than it gave, so the
    # scene's count is then a lower bound.
    capped_windows: int = 0


def capped(windows: list[Detections]) -> int:
    return sum(len(d) >= DEFAULT_MAX_DET for d in windows)


def scene_factor(engine: Detector, scene: Scene, params: RescoreParams) -> tuple[float | None, float]:
    """(GSD, resampling factor) of a scene: the GSD given or read from its georeference, brought into the model's
    scale range; factor 1 when either is unknown or resampling is off."""
    gsd = params.gsd if params.gsd is not None else scene.gsd_m()
    scale_range = engine.info.scale_range
    if params.scale is not None:
        return gsd, params.scale
    if not params.resample or scale_range is None:
        return gsd, 1.0
    return gsd, scale_range.factor_for(gsd)


def scene_windows(engine: Detector, scene: Scene, params: RescoreParams, factor: float) -> list[Window]:
    tile = params.tile or engine.input_size[0]
    # At most half a window: a model with a small input would otherwise get windows a pixel apart.
    return scaled_windows(scene.width, scene.height, tile, min(params.overlap, tile // 2), params.grid, factor)


def scoring_conf(engine: Detector, params: RescoreParams, factor: float = 1.0) -> float:
    """The threshold of a scene resampled by `factor`: a given one, else the model's for that scale and the views
    the scene is scored in."""
    given = params.conf
    if given is None:
        given = engine.info.conf_for(factor, scoring_views(engine, params, factor))
    return for_imagery(factor, given, params.conf_upsampled)


def scoring_iou(engine: Detector, params: RescoreParams) -> float:
    return params.iou if params.iou is not None else engine.info.default_iou


def scoring_views(engine: Detector, params: RescoreParams, factor: float = 1.0) -> int:
    """The views of a scene resampled by `factor`: given ones, else the model's for that scale."""
    given = params.views if params.views is not None else engine.info.views_for(factor)
    return for_imagery(factor, given, params.views_upsampled)


def in_views(engine: Detector, count: int) -> Detector:
    """The engine, scoring each window in `count` views and fusing them where that is more than one."""
    return engine if count == 1 else ViewedDetector(engine, count)


def detect_scene(engine: Detector, scene: Scene, params: RescoreParams,
                 on_windows: Callable[[int, int], None] | None = None) -> ScoredScene:
    """All ships in a scene: windows with overlap (resampled to the model's scale where the GSD is known),
    batched inference, seam merge. Windows without any data are not scored. `on_windows(done, total)` hears of
    each batch (progress inside a large scene)."""
    gsd, factor = scene_factor(engine, scene, params)
    windows = scene_windows(engine, scene, params, factor)
    viewed = in_views(engine, scoring_views(engine, params, factor))
    iou = scoring_iou(engine, params)
    conf = scoring_conf(engine, params, factor)
    reader = _read_ahead(scene, windows, params.readahead)
    per_window: list[tuple[Window, Detections]] = []
    batch: list[tuple[Window, np.ndarray]] = []
    scored = 0
    for i in range(len(windows)):
        item = reader.get()
        if isinstance(item, Exception):
            raise item
        if item[1] is not None:
            batch.append(item)
        if batch and (len(batch) == params.max_batch or i == len(windows) - 1):
            results = detect_resampled(viewed, [a for _, a in batch], factor, conf, iou)
            per_window += [(w, d.shifted(w.col, w.row)) for (w, _), d in zip(batch, results, strict=True)]
            scored += len(batch)
            batch = []
            if on_windows is not None:
                on_windows(i + 1, len(windows))
    merged = merge_windows(per_window, (scene.width, scene.height), iou_threshold=iou)
    return ScoredScene(merged, scored, gsd, factor, capped([d for _, d in per_window]))
