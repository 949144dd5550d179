"""Re-scoring a list of scenes, crash-safe: a scene's output is written to a temporary file, synced and renamed,
and only then recorded in the run's manifest; a re-run skips recorded scenes and redoes the rest."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypedDict

from shipdet.georef import georeference
from shipdet.inference.detector import Detector
from shipdet.progress import progress
from shipdet.rescore.params import RescoreParams, scene_key
from shipdet.rescore.quicklook import write_quicklook
from shipdet.rescore.scene import Scene, open_scene
from shipdet.rescore.scoring import ScoredScene, detect_scene, scoring_conf, scoring_iou, scoring_views
from shipdet.rescore.sources import SceneSource
from shipdet.rescore.table import atomic_write, detections_frame, write_geoparquet

log = logging.getLogger(__name__)


Decision = Literal["score", "skip", "failed", "missing"]


class RunCounts(TypedDict):
    """What a run did: scenes scored, skipped (done before), failed (now or before); tiles scored; seconds."""

    done: int
    skipped: int
    failed: int
    tiles: int
    seconds: int


class RescoreRun:
    """One output folder: scenes/<id>.parquet, manifest.jsonl, failures.jsonl, scenes and combined tables."""

    def __init__(self, out: Path, engine: Detector, params: RescoreParams) -> None:
        self.out = out
        self.engine = engine
        # The operating point is resolved before hashing: a scene scored at the model's 0.3 is not the same result
        # as one scored at an explicit 0.25, and a resumed run must not mix them. A model that records no NMS IoU
        # resolves to the 0.45 runs used before it was recorded: their scenes keep their keys.
        self.params = params.model_copy(update={"conf": scoring_conf(engine, params),
                                                "conf_upsampled": scoring_conf(engine, params, math.inf),
                                                "views": scoring_views(engine, params),
                                                "views_upsampled": scoring_views(engine, params, math.inf),
                                                "iou": scoring_iou(engine, params)})
        self.params_hash = self.params.digest()
        (out / "scenes").mkdir(parents=True, exist_ok=True)
        for stale in (out / "scenes").glob(".*.tmp"):  # left by a run killed mid-write
            stale.unlink()
        self.manifest = out / "manifest.jsonl"
        self.failures = out / "failures.jsonl"

    def _records(self, path: Path) -> dict[str, dict[str, Any]]:
        if not path.is_file():
            return {}
        records = {}
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line torn by a crash: that scene is redone
            records[rec["key"]] = rec
        return records

    def _append(self, path: Path, record: dict[str, Any]) -> None:
        with open(path, "a") as fh:
            fh.write(json.dumps(record, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def process(self, source: SceneSource, on_windows: Callable[[int, int], None] | None = None
                ) -> dict[str, Any]:
        """Detect, then record: the local backend. Distributed backends call `record` with their detections."""
        started = time.perf_counter()
        scene = open_scene(source, self.params.cloud_band, self.params.crs)
        try:
            return self.record(source, scene, detect_scene(self.engine, scene, self.params, on_windows), started)
        finally:
            scene.close()

    def record(self, source: SceneSource, scene: Scene, scored: ScoredScene, started: float) -> dict[str, Any]:
        """Georeference a scene's merged detections, write its table atomically, then add it to the manifest."""
        dets, tiles = scored.detections, scored.tiles
        sha = self.engine.info.sha256
        key = scene_key(source, sha, self.params_hash)
        ref = scene.georef
        if ref is not None:
            dets = georeference(dets, ref)
        acquired = scene.acquired
        frame = detections_frame(dets, source.scene_id, acquired, ref, sha, self.params_hash)
        valid, fraction = scene.valid()
        write_quicklook(self.out, source.scene_id, scene.quicklook())  # its overview is in memory now
        info = {"key": key, "scene_id": source.scene_id, "path": "|".join(map(str, source.paths)),
                "acquired": acquired.isoformat() if acquired else None,
                "crs": ref.crs.to_string() if ref else None,
                "width": scene.width, "height": scene.height, "footprint_wkt": scene.footprint().wkt,
                "valid_wkt": valid.wkt, "valid_fraction": fraction, "n_detections": len(dets),
                "tiles": tiles, "gsd_m": scored.gsd_m, "scale_factor": scored.factor,
                "conf": scoring_conf(self.engine, self.params, scored.factor),
                "views": scoring_views(self.engine, self.params, scored.factor), "nms_iou": self.params.iou,
                "capped_windows": scored.capped_windows,
                "seconds": time.perf_counter() - started, "model_sha256": sha,
                "params_hash": self.params_hash}
        output = self.out / "scenes" / f"{source.scene_id}.parquet"
        write_geoparquet(frame, output)
        info["output"] = str(output.relative_to(self.out))
        self._append(self.manifest, {**info, "status": "done"})  # only after the output is safely in place
        return info

    def decide(self, source: SceneSource, done: dict[str, dict[str, Any]], failed: dict[str, dict[str, Any]],
               retry_failed: bool) -> tuple[Decision, str]:
        """The one place that says what becomes of a scene, and its key: `score` it, `skip` it (done with this model
        and these parameters, its table in place), leave it `failed` (failed before, no --retry-failed), or record
        it `missing` (a file cannot be read)."""
        try:
            key = scene_key(source, self.engine.info.sha256, self.params_hash)
        except OSError:
            return "missing", f"missing:{source.scene_id}"
        if key in done and (self.out / done[key]["output"]).is_file():
            return "skip", key
        if key in failed and not retry_failed:
            return "failed", key
        return "score", key

    def pending(self, sources: list[SceneSource], retry_failed: bool = False) -> list[SceneSource]:
        """The scenes this run still has to do (a missing file is left to processing, which records it)."""
        done, failed = self._records(self.manifest), self._records(self.failures)
        return [s for s in sources if self.decide(s, done, failed, retry_failed)[0] in ("score", "missing")]

    def fail(self, source: SceneSource, exc: Exception) -> None:
        try:
            key = scene_key(source, self.engine.info.sha256, self.params_hash)
        except OSError:
            key = f"missing:{source.scene_id}"
        log.warning("%s failed: %s", source.scene_id, exc)
        self._append(self.failures, {"key": key, "scene_id": source.scene_id, "status": "failed",
                                     "path": "|".join(map(str, source.paths)), "error": f"{type(exc).__name__}: {exc}"})

    def run(self, sources: list[SceneSource], retry_failed: bool = False) -> RunCounts:
        done, failed = self._records(self.manifest), self._records(self.failures)
        counts = RunCounts(done=0, skipped=0, failed=0, tiles=0, seconds=0)
        started = time.perf_counter()
        bar = progress(sources, desc="scenes", unit="scene", total=len(sources))
        try:
            self._score_all(bar, done, failed, retry_failed, counts)
        except KeyboardInterrupt:  # Ctrl-C: the tables still describe every scene finished so far
            log.warning("interrupted: writing the tables of the %d scenes done", counts["done"])
            self.write_tables()
            raise
        self.write_tables()
        elapsed = time.perf_counter() - started
        counts["seconds"] = round(elapsed)
        return counts

    def _score_all(self, bar: Any, done: dict[str, dict[str, Any]], failed: dict[str, dict[str, Any]],
                   retry_failed: bool, counts: RunCounts) -> None:
        scoring = 0.0
        for source in bar:
            decision, key = self.decide(source, done, failed, retry_failed)
            if decision == "skip":
                counts["skipped"] += 1
                continue
            if decision != "score":
                if decision == "missing" and key not in failed:
                    self.fail(source, FileNotFoundError(f"cannot read {', '.join(map(str, source.paths))}"))
                counts["failed"] += 1
                continue
            scene_started = time.perf_counter()

            def inside(windows_done: int, windows: int, scene_id: str = source.scene_id,
                       t0: float = scene_started, tiles_before: int = counts["tiles"], spent: float = scoring) -> None:
                rate = (tiles_before + windows_done) / max(spent + time.perf_counter() - t0, 1e-9)
                bar.note(f"{scene_id}: window {windows_done:,} of {windows:,}, {rate:.1f} tiles/s", live=True)

            try:
                info = self.process(source, inside)
                counts["done"] += 1
                counts["tiles"] += int(info["tiles"])
                scoring += info["seconds"]
                bar.note(f"{counts['tiles'] / scoring:.1f} tiles/s, {counts['failed']} failed")
                log.info("%s: %d ships, %d tiles in %.1f s%s", source.scene_id, info["n_detections"],
                         info["tiles"], info["seconds"], "" if info["scale_factor"] == 1 else
                         f" (GSD {info['gsd_m']:.2f} m, resampled x{info['scale_factor']:.2f})")
                if info["capped_windows"]:
                    log.warning("%s: %d windows gave the most detections a window returns: the scene may hold "
                                "more ships than were found (capped_windows in scenes.csv)", source.scene_id,
                                info["capped_windows"])
            except Exception as exc:  # one bad scene is recorded and the others go on
                self.fail(source, exc)
                counts["failed"] += 1

    def write_tables(self) -> None:
        """The scenes table and the combined detections table, rebuilt from what the manifest holds."""
        import geopandas as gpd
        import pandas as pd
        import shapely

        done = list(self._records(self.manifest).values())
        done_ids = {r["scene_id"] for r in done}
        failed = [r for r in self._records(self.failures).values() if r["scene_id"] not in done_ids]
        rows = [{**r, "status": "done", "error": None} for r in done] + \
               [{"scene_id": r["scene_id"], "path": r["path"], "status": "failed", "error": r["error"],
                 "footprint_wkt": "POLYGON EMPTY", "valid_wkt": "POLYGON EMPTY", "valid_fraction": 0.0,
                 "n_detections": 0} for r in failed]
        columns = ["scene_id", "path", "acquired", "crs", "width", "height", "gsd_m", "scale_factor", "conf", "views",
                   "nms_iou", "capped_windows", "footprint_wkt", "valid_wkt", "valid_fraction", "status",
                   "n_detections", "error"]
        table = pd.DataFrame(rows).reindex(columns=columns).sort_values("scene_id", kind="stable")
        table["acquired"] = pd.to_datetime(table["acquired"], utc=True)
        atomic_write(self.out / "scenes.csv", lambda tmp: table.to_csv(tmp, index=False))
        geo = gpd.GeoDataFrame(table.drop(columns=["footprint_wkt", "valid_wkt"]),
                               geometry=shapely.from_wkt(table["footprint_wkt"].fillna("POLYGON EMPTY")),
                               crs="EPSG:4326").rename_geometry("footprint")
        geo["valid"] = gpd.GeoSeries(shapely.from_wkt(table["valid_wkt"].fillna("POLYGON EMPTY")).tolist(),
                                     crs="EPSG:4326", index=geo.index)
        write_geoparquet(geo, self.out / "scenes.parquet")
        parts = [gpd.read_parquet(self.out / r["output"]) for r in sorted(done, key=lambda r: r["scene_id"])]
        if parts:
            combined = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs="EPSG:4326")
            write_geoparquet(combined, self.out / "detections.parquet")
            atomic_write(self.out / "detections.csv",
                         lambda tmp: combined.drop(columns="geometry").to_csv(tmp, index=False))

    def export_geojson(self) -> Path:
        import geopandas as gpd

        path = self.out / "detections.geojson"
        frame = gpd.read_parquet(self.out / "detections.parquet")
        # RFC 7946: WGS84 without a `crs` member, counter-clockwise exterior rings, 7 decimals (about 1 cm); no
        # collection name (GDAL would take it from the temporary file's).
        atomic_write(path, lambda tmp: frame.to_file(tmp, driver="GeoJSON", RFC7946="YES", WRITE_NAME="NO",
                                                     COORDINATE_PRECISION=7))
        return path
