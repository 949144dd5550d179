"""`shipdet voyages`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def voyages(
        detections: Path = typer.Option(..., help="Detections table (rescore's detections.parquet, CSV, GeoJSON)."),
        scenes: Path = typer.Option(..., help="Scenes table (rescore's scenes.parquet or scenes.csv)."),
        areas: Path = typer.Option(..., help="GeoJSON polygons: name, optional min_length_m / max_length_m."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
        ais: Path = typer.Option(None, help="AIS CSV: vessel_id, time, lon, lat, speed_kn, length_m."),
        start: str = typer.Option(None, help="Start of the counting period (default: first scene)."),
        end: str = typer.Option(None, help="End of the period (default: last scene)."),
        min_dwell_days: float = typer.Option(1.0, help="Shortest plausible port call, for the bounds."),
        berths: int = typer.Option(None, help="Vessels the area holds at once (default: most seen at once)."),
        min_observed: float = typer.Option(None, help="Share of an area a scene must see clearly (default 0.8)."),
        link_distance_m: float = typer.Option(None, help="Same berth slot within this distance (default 150 m)."),
    ) -> None:
        """Count port calls per area from detections, honest about the time that was not observed."""
        import pandas as pd

        from shipdet.voyages.count import count_area
        from shipdet.voyages.inputs import read_ais, read_areas, read_detections, read_scenes
        from shipdet.voyages.link import LinkParams
        from shipdet.voyages.report import write_outputs

        det, sc, aois, positions = read_detections(detections), read_scenes(scenes), read_areas(areas), read_ais(ais)
        given: dict[str, Any] = {"min_observed": min_observed, "link_distance_m": link_distance_m}
        params = LinkParams(**{k: v for k, v in given.items() if v is not None})  # the rest: SHIPDET_VOYAGES_*
        t0 = pd.Timestamp(start, tz="UTC") if start else None
        t1 = pd.Timestamp(end, tz="UTC") if end else None
        results = [count_area(a, det, sc, positions, params, t0, t1, min_dwell_days, berths) for a in aois]
        write_outputs(results, out)
        for r in results:
            s = r.summary
            typer.echo(f"{s['area']}: {s['confirmed_visits']} confirmed visits (estimate {s['estimate']}, bounds "
                       f"[{s['lower_bound']}, {s['upper_bound']}]), {s['dark_visits']} dark; "
                       f"{s['blind_days']} blind days")
        typer.echo(f"written: {out}/visits.csv, visits.parquet, summary.json, summary.md, timeline_*.png")
