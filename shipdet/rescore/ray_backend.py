"""The same re-scoring job on Ray Data: windows of every pending scene become rows, an actor pool holds one engine
per actor (`num_gpus` each on GPU clusters) and scores them in batches; the driver merges each scene's windows and
writes it with the same atomic per-scene output and manifest as the local backend."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from shipdet.detections import Detections
from shipdet.rescore.run import RescoreRun, RunCounts
from shipdet.rescore.scene import open_scene
from shipdet.rescore.scoring import (
    ScoredScene,
    capped,
    in_views,
    scene_factor,
    scene_windows,
    scoring_conf,
    scoring_iou,
    scoring_views,
)
from shipdet.rescore.sources import SceneSource
from shipdet.scale import detect_resampled
from shipdet.tiling import Window, merge_windows


class WindowScorer:
    """A Ray actor: opens scenes as their windows arrive, scores a batch of windows, returns flat detections."""

    def __init__(self, model: str, providers: list[str], max_batch: int, scenes: dict[int, dict[str, Any]],
                 iou: float) -> None:
        from shipdet.inference.engine import Engine

        # One actor per CPU is Ray's unit of parallelism: each engine single-threaded, or actors would fight.
        self.engine = Engine(Path(model), providers=providers, max_batch=max_batch, threads=1)
        self.scenes = scenes
        self.open: dict[int, Any] = {}
        self.iou = iou
        counts = {int(spec["views"]) for spec in scenes.values()}
        self.viewed = {count: in_views(self.engine, count) for count in counts}

    def _scene(self, index: int) -> Any:
        if index not in self.open:
            spec = self.scenes[index]
            source = SceneSource(spec["scene_id"], [Path(p) for p in spec["paths"]], bands=spec["bands"])
            limits = None if spec["limits"] is None else np.asarray(spec["limits"])  # the driver's stretch
            scene = open_scene(source, spec["cloud_band"], limits=limits)
            self.open[index] = scene
        return self.open[index]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        windows = [Window(int(c), int(r), int(w), int(h)) for c, r, w, h in
                   zip(batch["col"], batch["row"], batch["width"], batch["height"], strict=True)]
        pixels = [self._scene(int(s)).read_window_with_data(w) for s, w in zip(batch["scene"], windows, strict=True)]
        with_data = [i for i, p in enumerate(pixels) if p is not None]  # windows of nodata only are not scored
        results = [Detections.empty(oriented=self.engine.info.task == "obb", class_names=self.engine.info.names)
                   for _ in pixels]
        by_scale: dict[tuple[float, float, int], list[int]] = defaultdict(list)  # a batch may mix scenes' scales
        for i in with_data:
            spec = self.scenes[int(batch["scene"][i])]
            by_scale[(float(spec["factor"]), float(spec["conf"]), int(spec["views"]))].append(i)
        for (factor, conf, views), indices in by_scale.items():
            found = detect_resampled(self.viewed[views], [pixels[i] for i in indices if pixels[i] is not None],
                                     factor, conf, self.iou)
            for i, dets in zip(indices, found, strict=True):
                results[i] = dets
        out: dict[str, list[Any]] = defaultdict(list)
        for s, w, dets in zip(batch["scene"], windows, results, strict=True):
            for i in range(len(dets)):
                out["scene"].append(int(s))
                out["window"].append([w.col, w.row, w.width, w.height])
                out["xyxy"].append(dets.xyxy[i].tolist())
                out["obb"].append(dets.obb[i].tolist() if dets.obb is not None else [np.nan] * 5)
                out["score"].append(float(dets.score[i]))
                out["class_id"].append(int(dets.class_id[i]))
        return {k: np.asarray(v) for k, v in out.items()} if out else {
            "scene": np.zeros(0, int), "window": np.zeros((0, 4), int), "xyxy": np.zeros((0, 4)),
            "obb": np.zeros((0, 5)), "score": np.zeros(0), "class_id": np.zeros(0, int)}


def run_on_ray(run: RescoreRun, sources: list[SceneSource], address: str | None = None, actors: int = 2,
               num_gpus: float = 0.0, providers: tuple[str, ...] = ("cuda", "cpu")) -> RunCounts:
    """Score the scenes `run` has not finished on a Ray cluster (`address`) or a local Ray instance."""
    import ray

    ray.init(address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False,
             num_cpus=None if address else max(actors, 1))
    pending = run.pending(sources)
    counts = RunCounts(done=0, skipped=len(sources) - len(pending), failed=0, tiles=0, seconds=0)
    specs: dict[int, dict[str, Any]] = {}
    rows = []
    opened = {}
    scales: dict[int, tuple[float | None, float]] = {}
    for index, source in enumerate(pending):
        try:
            scene = open_scene(source, run.params.cloud_band, run.params.crs)
        except Exception as exc:  # recorded like the local backend does
            run.fail(source, exc)
            counts["failed"] += 1
            continue
        opened[index] = scene
        scales[index] = scene_factor(run.engine, scene, run.params)
        factor = scales[index][1]
        specs[index] = {"factor": factor, "conf": scoring_conf(run.engine, run.params, factor),
                        "views": scoring_views(run.engine, run.params, factor),
                        "scene_id": source.scene_id,
                        "paths": [str(p) for p in source.paths],
                        "bands": [b for _, b in scene.bands] if len(source.paths) == 1 else [],
                        "cloud_band": run.params.cloud_band,
                        "limits": None if scene.limits is None else scene.limits.tolist()}
        for w in scene_windows(run.engine, scene, run.params, scales[index][1]):
            rows.append({"scene": index, "col": w.col, "row": w.row, "width": w.width, "height": w.height})
    started = time.perf_counter()
    by_window: dict[tuple[int, Window], list[Detections]] = defaultdict(list)
    if rows:
        names = run.engine.info.names
        scored = ray.data.from_items(rows).map_batches(
            WindowScorer, batch_size=run.params.max_batch, compute=ray.data.ActorPoolStrategy(size=actors),
            num_gpus=num_gpus, fn_constructor_kwargs={
                "model": str(run.engine.info.path), "providers": list(providers),
                "max_batch": run.params.max_batch, "scenes": specs,
                "iou": scoring_iou(run.engine, run.params)})
        for batch in scored.iter_batches(batch_format="numpy", batch_size=None):
            for i in range(len(batch["scene"])):
                w = Window(*(int(v) for v in batch["window"][i]))
                obb = batch["obb"][i]
                dets = Detections(batch["xyxy"][i][None], np.array([batch["score"][i]]),
                                  np.array([batch["class_id"][i]]),
                                  obb=None if np.isnan(obb).any() else obb[None], class_names=dict(names))
                by_window[(int(batch["scene"][i]), w)].append(dets.shifted(w.col, w.row))
    for index, scene in opened.items():
        try:
            windows = scene_windows(run.engine, scene, run.params, scales[index][1])
            empty = Detections.empty(oriented=run.engine.info.task == "obb", class_names=run.engine.info.names)
            # In tile order, as the local backend merges them (Ray returns batches in any order).
            per_window = [(w, Detections.concatenate(by_window[(index, w)]) if by_window[(index, w)] else empty)
                          for w in windows]
            merged = merge_windows(per_window, (scene.width, scene.height),
                                   iou_threshold=scoring_iou(run.engine, run.params))
            run.record(pending[index], scene, ScoredScene(merged, len(windows), *scales[index],
                                                          capped([d for _, d in per_window])), started)
            counts["done"] += 1
            counts["tiles"] += len(windows)
        except Exception as exc:
            run.fail(pending[index], exc)
            counts["failed"] += 1
        finally:
            scene.close()
    run.write_tables()
    counts["seconds"] = round(time.perf_counter() - started)
    return counts
