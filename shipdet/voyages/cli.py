"""`shipdet voyages` (count port calls) and `shipdet voyages simulate` (a seeded scenario with its truth)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from shipdet.errors import ConfigError


def _count(detections: Path | None, scenes: Path | None, areas: Path | None, out: Path | None, ais: Path | None,
           start: str | None, end: str | None, min_dwell_days: float, berths: int | None, recall: float | None,
           recall_sd: float, corrections: Path | None, given: dict[str, Any]) -> None:
    import pandas as pd

    from shipdet.voyages.corrections import VisitEdit, apply_corrections
    from shipdet.voyages.count import count_area
    from shipdet.voyages.inputs import read_ais, read_areas, read_detections, read_scenes
    from shipdet.voyages.link import LinkParams
    from shipdet.voyages.report import write_outputs

    missing = [f"--{n}" for n, v in {"detections": detections, "scenes": scenes, "areas": areas, "out": out}.items()
               if v is None]
    if missing:
        raise ConfigError(f"shipdet voyages needs {', '.join(missing)}", "see `shipdet voyages --help`")
    assert detections and scenes and areas and out  # for mypy: checked just above
    if recall is not None:
        from shipdet.voyages.estimate import given_recall

        try:
            given_recall(recall, recall_sd)
        except ValueError as exc:
            raise ConfigError(f"--recall {recall} --recall-sd {recall_sd}: {exc}") from None
    det, sc, aois, positions = read_detections(detections), read_scenes(scenes), read_areas(areas), read_ais(ais)
    edits: list[VisitEdit] = []
    log = corrections or detections.parent / "review.jsonl"  # a rescore run folder holds its reviewers' log
    if corrections is not None or log.is_file():
        reviewed = apply_corrections(det, log)
        det, edits = reviewed.detections, reviewed.edits
        det.attrs.setdefault("assumptions", []).append(reviewed.said)
    params = LinkParams(**{k: v for k, v in given.items() if v is not None})  # the rest: SHIPDET_VOYAGES_*
    t0 = pd.Timestamp(start, tz="UTC") if start else None
    t1 = pd.Timestamp(end, tz="UTC") if end else None
    results = [count_area(a, det, sc, positions, params, t0, t1, min_dwell_days, berths, recall, edits, recall_sd)
               for a in aois]
    write_outputs(results, out)
    for r in results:
        s, arrivals, dark = r.summary, r.summary["arrivals"], r.summary["dark_arrivals"]
        typer.echo(f"{s['area']}: {arrivals['observed']} calls seen, estimate {arrivals['estimate']} "
                   f"(90 % interval {arrivals['interval_90'][0]}-{arrivals['interval_90'][1]}, hard bounds "
                   f"{arrivals['hard_bounds'][0]}-{arrivals['hard_bounds'][1]}); dark: {dark['estimate']} "
                   f"({dark['interval_90'][0]}-{dark['interval_90'][1]}); {s['blind_days']} blind days")
    typer.echo(f"written: {out}/visits.csv, visits.parquet, summary.json, summary.md, timeline_*.png")


def register(app: typer.Typer) -> None:
    voyages_app = typer.Typer(help="Count port calls per area from detections, honest about what was not observed.")
    app.add_typer(voyages_app, name="voyages")

    @voyages_app.callback(invoke_without_command=True)
    def voyages(
        ctx: typer.Context,
        detections: Path = typer.Option(None, help="Detections table (rescore's detections.parquet, CSV, GeoJSON)."),
        scenes: Path = typer.Option(None, help="Scenes table (rescore's scenes.parquet or scenes.csv)."),
        areas: Path = typer.Option(None, help="GeoJSON polygons: name, optional min_length_m / max_length_m."),
        out: Path = typer.Option(None, "--out", "-o", help="Output folder."),
        ais: Path = typer.Option(None, help="AIS CSV: vessel_id, time, lon, lat, speed_kn, length_m."),
        start: str = typer.Option(None, help="Start of the counting period (default: first scene)."),
        end: str = typer.Option(None, help="End of the period (default: last scene)."),
        min_dwell_days: float = typer.Option(1.0, help="Shortest plausible port call, for the bounds."),
        max_dwell_days: float = typer.Option(None, help="Longest plausible call: a later sighting is a new call "
                                                        "(default 10)."),
        berths: int = typer.Option(None, help="Vessels the area holds at once (default: most seen at once)."),
        recall: float = typer.Option(None, help="The detector's validated recall, if known (default: learnt from "
                                                "AIS and the sighting patterns)."),
        recall_sd: float = typer.Option(0.02, help="The uncertainty of --recall (one standard deviation), e.g. "
                                                   "0.05 for a validation on about 50 ships."),
        min_observed: float = typer.Option(None, help="Share of an area a scene must see clearly (default 0.8)."),
        link_distance_m: float = typer.Option(None, help="Same berth slot within this distance (default 150 m)."),
        corrections: Path = typer.Option(None, help="Reviewers' corrections (`shipdet review`'s review.jsonl; "
                                                    "default: the one beside --detections, if any)."),
    ) -> None:
        """Count port calls per area: visits, dark calls, estimates with 90 % intervals and hard bounds."""
        if ctx.invoked_subcommand is not None:
            return
        _count(detections, scenes, areas, out, ais, start, end, min_dwell_days, berths, recall, recall_sd, corrections,
               {"min_observed": min_observed, "link_distance_m": link_distance_m, "max_dwell_days": max_dwell_days})

    @voyages_app.command()
    def simulate(
        out: Path = typer.Option(..., "--out", "-o", help="Folder for the input tables and the truth."),
        seed: int = typer.Option(0, help="Random seed: the same seed gives the same scenario."),
        start: str = typer.Option("2024-03-07"), end: str = typer.Option("2024-11-05"),
        berths: int = typer.Option(3, min=1), arrivals_per_day: float = typer.Option(0.18, min=0.0),
        min_dwell_days: float = typer.Option(2.0, min=0.0), max_dwell_days: float = typer.Option(5.0, min=0.0),
        dark_share: float = typer.Option(0.6, min=0.0, max=1.0, help="Share of calls with AIS off."),
        revisit_days: float = typer.Option(1.0, min=0.01, help="Days between optical passes."),
        cloud: float = typer.Option(0.3, min=0.0, max=1.0, help="Share of cloudy passes (in Markov runs)."),
        overcast: str = typer.Option(None, help="A wholly overcast stretch, e.g. 2024-07-01,2024-08-01."),
        recall: float = typer.Option(0.95, min=0.0, max=1.0, help="The simulated detector's recall."),
        false_alarms: float = typer.Option(0.03, min=0.0, help="False detections per scene."),
        position_noise_m: float = typer.Option(15.0, min=0.0), length_noise: float = typer.Option(0.05, min=0.0),
        ais_interval_h: float = typer.Option(1.0, min=0.01, help="Hours between AIS reports of a lit vessel."),
    ) -> None:
        """Write a seeded scenario as the tables `shipdet voyages` reads (detections, scenes, AIS, areas) and its
        truth (truth.csv: every call, its berth, arrival, departure, length and AIS state)."""
        from shipdet.voyages.simulate import SimConfig, write_simulation
        from shipdet.voyages.simulate import simulate as run_simulation

        if min_dwell_days > max_dwell_days:
            raise ConfigError(f"--min-dwell-days {min_dwell_days} is longer than --max-dwell-days {max_dwell_days}")
        window = None
        if overcast:
            parts = overcast.split(",")
            if len(parts) != 2:
                raise ConfigError(f"--overcast takes two dates, START,END, not {overcast!r}")
            window = (parts[0].strip(), parts[1].strip())
        cfg = SimConfig(start=start, end=end, berths=berths, arrivals_per_day=arrivals_per_day,
                        min_dwell_days=min_dwell_days, max_dwell_days=max_dwell_days,
                        ais_on_probability=1 - dark_share, revisit_days=revisit_days, cloud_probability=cloud,
                        overcast=window, recall=recall, false_positives_per_scene=false_alarms,
                        position_noise_m=position_noise_m, length_noise=length_noise, ais_interval_h=ais_interval_h)
        sim = run_simulation(cfg, seed)
        paths = write_simulation(sim, out)
        typer.echo(f"{len(sim.truth)} calls ({int((~sim.truth.ais_on).sum())} dark), {len(sim.scenes)} passes, "
                   f"{len(sim.detections)} detections; written: {', '.join(str(p) for p in paths.values())}")
