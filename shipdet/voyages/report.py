"""Outputs of voyage counting: visits (CSV, GeoParquet), a summary per area (JSON, Markdown), a timeline PNG."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pandas as pd

from shipdet.rescore.table import write_geoparquet
from shipdet.voyages.bounds import __doc__ as BOUNDS_METHOD
from shipdet.voyages.count import AreaResult
from shipdet.voyages.estimate import __doc__ as ESTIMATE_METHOD


def write_outputs(results: list[AreaResult], out: Path) -> dict[str, Path]:
    import geopandas as gpd

    out.mkdir(parents=True, exist_ok=True)
    visits = pd.concat([r.visits for r in results], ignore_index=True) if results else pd.DataFrame()
    paths = {"visits_csv": out / "visits.csv", "visits_parquet": out / "visits.parquet",
             "summary_json": out / "summary.json", "summary_md": out / "summary.md"}
    visits.to_csv(paths["visits_csv"], index=False)
    if len(visits):
        write_geoparquet(gpd.GeoDataFrame(visits, geometry=gpd.points_from_xy(visits.lon, visits.lat),
                                          crs="EPSG:4326"), paths["visits_parquet"])
    summaries = [r.summary for r in results]
    paths["summary_json"].write_text(json.dumps({"method": f"{ESTIMATE_METHOD}\n{BOUNDS_METHOD}",
                                                 "areas": summaries}, indent=2, default=str))
    paths["summary_md"].write_text(summary_markdown(summaries))
    paths["areas"] = out / "areas.geojson"  # the counting areas as counted, for the review page's map
    paths["areas"].write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": r.area.name, "min_length_m": r.area.min_length_m,
                                           "max_length_m": r.area.max_length_m},
         "geometry": r.area.polygon.__geo_interface__} for r in results]}))
    for r in results:
        paths[f"timeline_{r.area.name}"] = timeline_png(r, out / f"timeline_{r.area.name}.png")
    return paths


def summary_markdown(summaries: list[dict[str, Any]]) -> str:
    lines = ["# Port calls", ""]
    for s in summaries:
        lines += [f"## {s['area']}", "",
                  f"Period {s['period'][0][:10]} to {s['period'][1][:10]}: {s['scenes']} scenes, "
                  f"{s['observed_scenes']} observed the area; {s['blind_days']} blind days (a whole "
                  f"minimum-length call could have been missed) "
                  f"(longest gap {s['longest_gap_days']} days).", "",
                  "| | seen | of them AIS calls | estimate | 90 % interval | hard bounds |",
                  "|---|---|---|---|---|---|",
                  _row("arrivals", s["arrivals"]),
                  _row("dark arrivals" if s["ais_used"] else "dark arrivals (no AIS given)", s["dark_arrivals"]),
                  "", f"Candidate visits {s['observed_visits']}, confirmed {s['confirmed_visits']}; detector "
                  f"recall {s['recall']['estimate']} ({s['recall']['from']}); mean dwell "
                  f"{s['dwell_days']['estimate']} days ({s['dwell_days']['from']}).", "",
                  "| month (first sighting) | seen | of them AIS calls | estimate | 90 % interval | hard bounds |",
                  "|---|---|---|---|---|---|",
                  *(_row(month, c) for month, c in s["arrivals_by_month"].items()), ""]
        if s["assumptions"]:
            lines += ["Assumed for these inputs: " + "; ".join(s["assumptions"]) + ".", ""]
    lines += ["## Method", "", (ESTIMATE_METHOD or "").strip(), "", (BOUNDS_METHOD or "").strip(), ""]
    return "\n".join(lines)


def _row(label: str, c: dict[str, Any]) -> str:
    estimate = "not observed" if c["estimate"] is None else c["estimate"]
    return (f"| {label} | {c['observed']} | {c.get('ais_calls', 0)} | {estimate} | "
            f"{c['interval_90'][0]}-{c['interval_90'][1]} | {c['hard_bounds'][0]}-{c['hard_bounds'][1]} |")


def berth_slots(visits: pd.DataFrame, spacing_m: float) -> list[int]:
    """Group visit positions into slots: sorted along the quay, a new slot wherever the gap exceeds spacing_m."""
    import numpy as np

    from shipdet.voyages.link import local_xy

    xy = local_xy(visits.lon.to_numpy(), visits.lat.to_numpy(), float(visits.lat.mean()))
    axis = xy[:, 0] if np.ptp(xy[:, 0]) >= np.ptp(xy[:, 1]) else xy[:, 1]
    order = np.argsort(axis)
    slot = np.zeros(len(axis), dtype=int)
    slot[order] = np.concatenate([[0], np.cumsum(np.diff(axis[order]) > spacing_m)])
    return slot.tolist()


def timeline_png(result: AreaResult, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    obs, visits = result.observations, result.visits
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 5.5), sharex=True, height_ratios=[1, 3])
    seen = obs[obs.observed]
    top.vlines(obs.acquired[~obs.observed], 0, 1, color="0.75", lw=1, label="not observed (cloud, nodata)")
    top.vlines(seen.acquired, 0, 1, color="tab:green", lw=1, label="observed")
    top.scatter(seen.acquired, 0.5 + 0 * seen.vessels, s=6 + 8 * seen.vessels, color="k", zorder=3,
                label="vessels present (size)")
    times = list(seen.acquired)
    for a, b in itertools.pairwise(times):
        if (b - a).total_seconds() / 86400 > result.summary["min_dwell_days"]:
            top.axvspan(a, b, color="tab:red", alpha=0.10, lw=0)
            bottom.axvspan(a, b, color="tab:red", alpha=0.05, lw=0)
    top.set_yticks([])
    top.legend(loc="upper left", fontsize=7, ncol=3)
    arrivals = result.summary["arrivals"]
    top.set_title(f"{result.area.name}: {arrivals['observed']} calls seen, estimate {arrivals['estimate']} "
                  f"(90 % interval {arrivals['interval_90'][0]}-{arrivals['interval_90'][1]}, hard bounds "
                  f"{arrivals['hard_bounds'][0]}-{arrivals['hard_bounds'][1]}); red: gaps longer than the "
                  "minimum dwell", fontsize=9)
    if len(visits):
        lanes = berth_slots(visits, spacing_m=100.0)
        for v, lane in zip(visits.itertuples(), lanes, strict=True):
            colour = "tab:red" if v.dark else "tab:blue"
            lo = v.arrival_earliest if pd.notna(v.arrival_earliest) else v.first_seen
            hi = v.departure_latest if pd.notna(v.departure_latest) else v.last_seen
            bottom.plot([lo, hi], [lane, lane], color=colour, lw=1, ls=":", alpha=0.7)
            # A visit seen once still gets a visible bar (half a day either side of its sighting).
            half = pd.Timedelta(hours=12)
            bottom.plot([v.first_seen - half, v.last_seen + half], [lane, lane], color=colour,
                        lw=7 if v.confirmed else 3, solid_capstyle="butt", alpha=1.0 if v.confirmed else 0.5)
        bottom.set_ylabel("berth slot")
        bottom.set_yticks(sorted(set(lanes)))
        bottom.set_ylim(min(lanes) - 0.7, max(lanes) + 1.2)
    bottom.plot([], [], color="tab:blue", lw=6,
                label="visit, AIS seen (bar: sightings; dotted: arrival/departure bounds)")
    bottom.plot([], [], color="tab:red", lw=6, label="dark visit (no matching AIS)")
    bottom.plot([], [], color="tab:blue", lw=2, alpha=0.5, label="unconfirmed (one low-score sighting)")
    bottom.legend(loc="upper left", fontsize=7)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
