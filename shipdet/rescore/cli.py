"""`shipdet rescore`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def rescore(
        sources: list[str] = typer.Argument(..., help="Files, folders, globs, a manifest (.csv/.jsonl: path, "
                                                      "scene_id, acquired; 'a|b|c' for R|G|B band files) or a "
                                                      "STAC item collection (.json)."),
        model: Path = typer.Option(None, help="ONNX model (default: the bundled one)."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder (re-runs resume in it)."),
        conf: float = typer.Option(None, help="Confidence threshold (default: the model's, else 0.25)."),
        conf_upsampled: float = typer.Option(None, help="Confidence threshold of scenes the scale path upsamples "
                                                        "(default: --conf, else the model's for them)."),
        iou: float = typer.Option(None, help="NMS and seam IoU (default: the model's, else 0.45)."),
        tile: int = typer.Option(None, help="Window size (default: the model's input size)."),
        overlap: int = typer.Option(None, help="Window overlap in pixels, after resampling (default 128; at most "
                                               "half a window)."),
        grid: str = typer.Option(None, help="Window placement: even (default: equal overlaps) or stride "
                                            "(SAHI's slices, to compare with SAHI runs)."),
        cloud_band: int = typer.Option(None, help="Band (1-based) of a cloud mask: non-zero = cloud."),
        crs: str = typer.Option(None, help="CRS of tiles placed by a world file without a .prj (e.g. EPSG:32633)."),
        gsd: float = typer.Option(None, help="Metres per pixel of the scenes (default: from each scene's "
                                             "georeference; unknown: scored as they are)."),
        resample: bool = typer.Option(None, "--resample/--no-resample",
                                      help="Resample scenes of known GSD into the model's scale range (default: on)."),
        scale: float = typer.Option(None, help="Resample every scene by this factor instead (e.g. to compare)."),
        views: int = typer.Option(None, help="Score each window in 1, 2, 4 or 8 views (flips, then quarter turns) "
                                             "and fuse them (default: the model's own; N views cost N inferences)."),
        views_upsampled: int = typer.Option(None, help="Views of scenes the scale path upsamples (default: --views, "
                                                       "else the model's for them)."),
        batch: int = typer.Option(None, help="Windows per model call (default 8)."),
        providers: str = typer.Option("cuda,cpu", help="Execution providers in order."),
        retry_failed: bool = typer.Option(False, help="Retry scenes that failed in an earlier run."),
        geojson: bool = typer.Option(False, help="Also write detections.geojson."),
        backend: str = typer.Option("local", help="local, or ray (Ray Data: an actor pool of engines)."),
        ray_address: str = typer.Option(None, help="Ray cluster address (default: start a local instance)."),
        actors: int = typer.Option(2, help="Ray: engines in the actor pool."),
        gpus_per_actor: float = typer.Option(0.0, help="Ray: GPUs per actor (e.g. 1 on a GPU cluster)."),
    ) -> None:
        """Re-score whole scenes: windows, batched inference, seam merge, georeferenced GeoParquet; crash-safe.
        Defaults can also come from SHIPDET_RESCORE_* variables."""
        from shipdet.errors import ConfigError
        from shipdet.inference.engine import Engine
        from shipdet.rescore.params import RescoreParams
        from shipdet.rescore.run import RescoreRun
        from shipdet.rescore.sources import resolve_sources
        from shipdet.serve.settings import DEFAULT_MODEL

        if backend not in ("local", "ray"):
            raise ConfigError(f"unknown backend {backend!r}", "use --backend local or --backend ray")
        given: dict[str, Any] = {"conf": conf, "conf_upsampled": conf_upsampled, "iou": iou, "tile": tile,
                                  "overlap": overlap, "grid": grid, "cloud_band": cloud_band,
                                  "crs": crs, "max_batch": batch, "gsd": gsd,
                                  "resample": resample, "scale": scale, "views": views,
                                  "views_upsampled": views_upsampled}
        params = RescoreParams(**{k: v for k, v in given.items() if v is not None})  # refused before any work
        scenes = resolve_sources(sources)
        engine = Engine(model or DEFAULT_MODEL, providers=[p.strip() for p in providers.split(",")],
                        max_batch=params.max_batch)
        run = RescoreRun(out, engine, params)
        if backend == "ray":
            from shipdet.rescore.ray_backend import run_on_ray

            counts = run_on_ray(run, run.pending(scenes, retry_failed), ray_address, actors,
                                gpus_per_actor, tuple(p.strip() for p in providers.split(",")))
        else:
            counts = run.run(scenes, retry_failed=retry_failed)
        if geojson and (out / "detections.parquet").is_file():
            run.export_geojson()
        typer.echo(closing_summary(counts, out))


def closing_summary(counts: Any, out: Path) -> str:
    """What the run did, once, in plain words, naming only the files that exist."""
    from shipdet.progress import plural

    seconds = float(counts["seconds"])
    rate = f", {counts['tiles'] / seconds:.1f} a second" if seconds > 0 and counts["tiles"] else ""
    said = [f"Scored {plural(counts['done'], 'scene')} ({plural(counts['skipped'], 'scene')} already done, "
            f"{plural(counts['failed'], 'failure')}): {plural(counts['tiles'], 'window')} in {seconds:.1f} s{rate}."]
    files = [out / name for name in ("detections.parquet", "detections.csv", "detections.geojson", "scenes.parquet",
                                     "scenes.csv", "failures.jsonl")]
    written = [str(f) for f in files if f.is_file()]
    said.append(f"Written: {', '.join(written)}." if written else "No table written: no scene was scored.")
    if counts["failed"]:
        said.append(f"Failed scenes and why: {out / 'failures.jsonl'} (`--retry-failed` tries them again).")
    return " ".join(said)
