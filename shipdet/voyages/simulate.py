"""A port-traffic simulator with ground truth, to check voyage counting: arrivals at berths, dwell times, vessel
lengths, AIS on or off per vessel; an imaging schedule with runs of bad weather (and optional overcast months);
a detector error model (recall, false positives, position and length noise)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from shipdet.voyages.inputs import Area
from shipdet.voyages.link import EARTH_M_PER_DEG


@dataclass(frozen=True)
class SimConfig:
    start: str = "2024-03-07"
    end: str = "2024-11-05"
    arrivals_per_day: float = 0.18
    berths: int = 3
    berth_spacing_m: float = 400.0
    min_dwell_days: float = 2.0
    max_dwell_days: float = 5.0
    turnaround_days: float = 0.25   # a berth stays empty at least this long between two calls
    length_range_m: tuple[float, float] = (90.0, 110.0)
    ais_on_probability: float = 0.4
    revisit_days: float = 1.0
    cloud_probability: float = 0.3
    cloud_persistence: float = 0.5
    overcast: tuple[str, str] | None = None
    recall: float = 0.95
    false_positives_per_scene: float = 0.03
    position_noise_m: float = 15.0
    length_noise: float = 0.05
    ais_interval_h: float = 1.0
    ais_noise_m: float = 30.0
    centre: tuple[float, float] = (133.06, 42.74)  # Vostochny, Nakhodka Bay


@dataclass
class Simulation:
    area: Area
    truth: pd.DataFrame
    scenes: pd.DataFrame
    detections: pd.DataFrame
    ais: pd.DataFrame
    config: SimConfig = field(default_factory=SimConfig)


def _offset(centre: tuple[float, float], east_m: np.ndarray, north_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lon0, lat0 = centre
    return (lon0 + east_m / (EARTH_M_PER_DEG * np.cos(np.radians(lat0))), lat0 + north_m / EARTH_M_PER_DEG)


def simulate(cfg: SimConfig, seed: int) -> Simulation:
    rng = np.random.default_rng(seed)
    start, end = pd.Timestamp(cfg.start, tz="UTC"), pd.Timestamp(cfg.end, tz="UTC")
    days = (end - start).total_seconds() / 86400
    berth_east = (np.arange(cfg.berths) - (cfg.berths - 1) / 2) * cfg.berth_spacing_m
    # Traffic: Poisson arrivals, each taking a free berth (an arrival finding none goes elsewhere).
    free_from = np.zeros(cfg.berths)
    truth: list[dict[str, object]] = []
    t = rng.exponential(1 / cfg.arrivals_per_day)
    while t < days:
        free = np.flatnonzero(free_from <= t)
        if len(free):
            b = int(rng.choice(free))
            dwell = rng.uniform(cfg.min_dwell_days, cfg.max_dwell_days)
            free_from[b] = t + dwell + cfg.turnaround_days
            truth.append({"vessel_id": f"v{len(truth):03d}", "berth": b, "arrival": t, "departure": t + dwell,
                          "length_m": rng.uniform(*cfg.length_range_m),
                          "ais_on": bool(rng.random() < cfg.ais_on_probability)})
        t += rng.exponential(1 / cfg.arrivals_per_day)
    tv = pd.DataFrame(truth, columns=["vessel_id", "berth", "arrival", "departure", "length_m", "ais_on"])
    # Imaging: a pass every revisit_days at 02:00 UTC; weather is a two-state Markov chain.
    times = np.arange(0.0, days, cfg.revisit_days) + 2 / 24
    p_cc = cfg.cloud_persistence
    p_oc = cfg.cloud_probability * (1 - p_cc) / max(1 - cfg.cloud_probability, 1e-9)
    cloudy = np.zeros(len(times), dtype=bool)
    for i in range(len(times)):
        prev = cloudy[i - 1] if i else rng.random() < cfg.cloud_probability
        cloudy[i] = rng.random() < (p_cc if prev else p_oc)
    when = start + pd.to_timedelta(times, unit="D")
    if cfg.overcast:
        lo, hi = pd.Timestamp(cfg.overcast[0], tz="UTC"), pd.Timestamp(cfg.overcast[1], tz="UTC")
        cloudy |= (when >= lo) & (when < hi)
    half = (cfg.berths * cfg.berth_spacing_m) / 2 + 400
    fx, fy = _offset(cfg.centre, np.array([-half * 4, half * 4]), np.array([-half * 4, half * 4]))
    footprint = shapely.box(fx[0], fy[0], fx[1], fy[1])
    scenes = pd.DataFrame({"scene_id": [f"S{i:04d}" for i in range(len(times))], "acquired": when,
                           "footprint": [footprint] * len(times),
                           "valid": [shapely.Polygon() if c else footprint for c in cloudy],
                           "valid_fraction": np.where(cloudy, 0.0, 1.0), "status": "done"})
    ax, ay = _offset(cfg.centre, np.array([-half, half]), np.array([-250.0, 250.0]))
    area = Area("berths", shapely.box(ax[0], ay[0], ax[1], ay[1]), cfg.length_range_m[0] * 0.7,
                cfg.length_range_m[1] * 1.3)
    # Detector: each vessel present in a clear scene is found with probability `recall`, with noise.
    rows = []
    for i, (t_day, c) in enumerate(zip(times, cloudy, strict=True)):
        if c:
            continue
        present = tv[(tv.arrival <= t_day) & (tv.departure > t_day)]
        for v in present.itertuples():
            if rng.random() >= cfg.recall:
                continue
            east = berth_east[v.berth] + rng.normal(0, cfg.position_noise_m)
            north = rng.normal(0, cfg.position_noise_m)
            lon, lat = _offset(cfg.centre, np.array([east]), np.array([north]))
            rows.append({"scene_id": f"S{i:04d}", "acquired": when[i], "lon": float(lon[0]), "lat": float(lat[0]),
                         "length_m": v.length_m * (1 + rng.normal(0, cfg.length_noise)),
                         "score": rng.uniform(0.5, 1.0), "truth_vessel": v.vessel_id, "truth_dark": not v.ais_on})
        for _ in range(rng.poisson(cfg.false_positives_per_scene)):
            lon, lat = _offset(cfg.centre, rng.uniform(-half, half, 1), rng.uniform(-250, 250, 1))
            rows.append({"scene_id": f"S{i:04d}", "acquired": when[i], "lon": float(lon[0]), "lat": float(lat[0]),
                         "length_m": rng.uniform(*cfg.length_range_m), "score": rng.uniform(0.25, 0.5),
                         "truth_vessel": None, "truth_dark": False})
    detections = pd.DataFrame(rows, columns=["scene_id", "acquired", "lon", "lat", "length_m", "score",
                                             "truth_vessel", "truth_dark"])
    # AIS: vessels with transponders on report hourly while at berth, with position noise.
    ais_rows = []
    for v in tv[tv.ais_on].itertuples():
        for t_day in np.arange(v.arrival - 0.05, v.departure + 0.05, cfg.ais_interval_h / 24):
            east = berth_east[v.berth] + rng.normal(0, cfg.ais_noise_m)
            lon, lat = _offset(cfg.centre, np.array([east]), np.array([rng.normal(0, cfg.ais_noise_m)]))
            ais_rows.append({"vessel_id": v.vessel_id, "time": start + pd.Timedelta(days=float(t_day)),
                             "lon": float(lon[0]), "lat": float(lat[0]), "speed_kn": 0.0, "length_m": v.length_m})
    ais = pd.DataFrame(ais_rows, columns=["vessel_id", "time", "lon", "lat", "speed_kn", "length_m"])
    tv["arrival"] = start + pd.to_timedelta(tv.arrival, unit="D")
    tv["departure"] = start + pd.to_timedelta(tv.departure, unit="D")
    return Simulation(area, tv, scenes, detections, ais, cfg)


def write_simulation(sim: Simulation, folder: Path) -> dict[str, Path]:
    """The simulation as the files `shipdet voyages` reads (CSV with WKT, GeoJSON areas)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {k: folder / f"{k}.csv" for k in ("detections", "scenes", "ais", "truth")}
    sim.detections.to_csv(paths["detections"], index=False)
    scenes = sim.scenes.assign(footprint_wkt=[g.wkt for g in sim.scenes.footprint],
                               valid_wkt=[g.wkt for g in sim.scenes.valid]).drop(columns=["footprint", "valid"])
    scenes.to_csv(paths["scenes"], index=False)
    sim.ais.to_csv(paths["ais"], index=False)
    sim.truth.to_csv(paths["truth"], index=False)
    area = sim.area
    paths["areas"] = folder / "areas.geojson"
    paths["areas"].write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": shapely.geometry.mapping(area.polygon),
        "properties": {"name": area.name, "min_length_m": area.min_length_m, "max_length_m": area.max_length_m}}]}))
    return paths
