"""From detections and observations of one area to visits, with dark-vessel flags.

Observation: one scene over the area; it *observed* the area when the clear, valid part covers at least
`min_observed` of it. Visit: detections linked across observed scenes at the same slot (within `link_distance_m`)
with compatible lengths; a visit ends when the area was observed without it `absences_to_close` times in a row
(one observed absence may be a missed detection). Arrival lies between the last observation without the vessel and
its first sighting; departure between its last sighting and the next observation without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pydantic_settings import BaseSettings, SettingsConfigDict

EARTH_M_PER_DEG = 111_320.0


class LinkParams(BaseSettings):
    """Voyage-counting parameters; each can come from the environment as SHIPDET_VOYAGES_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="SHIPDET_VOYAGES_", frozen=True, extra="forbid")

    min_observed: float = 0.8          # share of the area a scene must see (clear, valid) to count as observed
    link_distance_m: float = 150.0     # the same berth slot
    length_tolerance: float = 0.25     # relative length difference still the same vessel
    absences_to_close: int = 2         # observed absences in a row that end a visit
    confirm_score: float = 0.5         # a visit seen once counts as confirmed from this score up
    ais_distance_m: float = 300.0      # a detection with an AIS position this close (and a compatible length) is lit
    ais_max_gap_h: float = 6.0         # AIS positions further apart than this are not interpolated between


def local_xy(lon: np.ndarray, lat: np.ndarray, lat0: float) -> np.ndarray:
    """Metres east/north on a local equirectangular grid (port-scale distances)."""
    return np.column_stack([np.asarray(lon) * EARTH_M_PER_DEG * np.cos(np.radians(lat0)),
                            np.asarray(lat) * EARTH_M_PER_DEG])


@dataclass
class _Visit:
    rows: list[int]
    xy: np.ndarray
    length: float
    first: pd.Timestamp
    last: pd.Timestamp
    absences: int = 0
    arrival_after: pd.Timestamp | None = None
    departure_before: pd.Timestamp | None = None
    scores: list[float] = field(default_factory=list)


def flag_dark(det: pd.DataFrame, ais: pd.DataFrame | None, p: LinkParams, lat0: float) -> np.ndarray:
    """True where no AIS position, interpolated to the image time, lies within `ais_distance_m` with a
    compatible length. Without an AIS table nothing is flagged; an empty one (AIS checked, nobody transmitting
    there) flags every detection."""
    if ais is None or det.empty:
        return np.zeros(len(det), dtype=bool)
    if ais.empty:
        return np.ones(len(det), dtype=bool)
    dark = np.ones(len(det), dtype=bool)
    det_xy = local_xy(det.lon.to_numpy(), det.lat.to_numpy(), lat0)
    det_t = det.acquired.astype("int64").to_numpy() / 1e9
    for _, track in ais.sort_values("time").groupby("vessel_id"):
        t = track.time.astype("int64").to_numpy() / 1e9
        xy = local_xy(track.lon.to_numpy(), track.lat.to_numpy(), lat0)
        i = np.searchsorted(t, det_t)
        ok = (i > 0) & (i < len(t))
        i = np.clip(i, 1, max(len(t) - 1, 1))
        t0, t1 = t[i - 1], t[i]
        ok &= (t1 - t0) <= p.ais_max_gap_h * 3600
        frac = np.where(t1 > t0, (det_t - t0) / np.maximum(t1 - t0, 1e-9), 0.0)[:, None]
        pos = xy[i - 1] + (xy[i] - xy[i - 1]) * frac
        near = ok & (np.hypot(*(pos - det_xy).T) <= p.ais_distance_m)
        if "length_m" in track and track.length_m.notna().any():
            length = float(track.length_m.dropna().iloc[0])
            near &= np.abs(det.length_m.to_numpy() - length) <= p.length_tolerance * max(length, 1.0) + 10.0
        dark &= ~near
    return dark


def link_visits(det: pd.DataFrame, obs: pd.DataFrame, p: LinkParams, lat0: float) -> pd.DataFrame:
    """Visits of one area. `det`: detections in the area (lon, lat, length_m, score, acquired, scene_id, dark);
    `obs`: its observations (scene_id, acquired, observed), in time order."""
    open_visits: list[_Visit] = []
    closed: list[_Visit] = []
    by_scene = {k: g for k, g in det.groupby("scene_id")} if not det.empty else {}
    last_observed: pd.Timestamp | None = None
    xy_all = local_xy(det.lon.to_numpy(), det.lat.to_numpy(), lat0) if not det.empty else np.zeros((0, 2))
    pos = {idx: k for k, idx in enumerate(det.index)}
    for ob in obs.sort_values("acquired").itertuples():
        if not ob.observed:
            continue  # a cloudy scene says nothing: open visits stay open
        here = by_scene.get(ob.scene_id)
        rows = [] if here is None else list(here.index)
        taken: set[int] = set()
        for v in sorted(open_visits, key=lambda v: -len(v.rows)):
            best, best_d = None, p.link_distance_m
            for r in rows:
                if r in taken:
                    continue
                d = float(np.hypot(*(xy_all[pos[r]] - v.xy)))
                length = float(det.at[r, "length_m"])
                if d <= best_d and abs(length - v.length) <= p.length_tolerance * max(v.length, 1.0):
                    best, best_d = r, d
            if best is None:
                v.absences += 1
                if v.absences == 1:
                    v.departure_before = ob.acquired
                continue
            taken.add(best)
            v.rows.append(best)
            v.scores.append(float(det.at[best, "score"]))
            n = len(v.rows)
            v.xy = v.xy + (xy_all[pos[best]] - v.xy) / n
            v.length += (float(det.at[best, "length_m"]) - v.length) / n
            v.last, v.absences, v.departure_before = ob.acquired, 0, None
        still: list[_Visit] = []
        for v in open_visits:
            (closed if v.absences >= p.absences_to_close else still).append(v)
        open_visits = still
        for r in rows:
            if r not in taken:
                open_visits.append(_Visit([r], xy_all[pos[r]].copy(), float(det.at[r, "length_m"]), ob.acquired,
                                          ob.acquired, arrival_after=last_observed,
                                          scores=[float(det.at[r, "score"])]))
        last_observed = ob.acquired
    closed += open_visits
    records = []
    for v in sorted(closed, key=lambda v: v.first):
        sub = det.loc[v.rows]
        records.append({
            "first_seen": v.first, "last_seen": v.last, "sightings": len(v.rows),
            "arrival_earliest": v.arrival_after, "arrival_latest": v.first,
            "departure_earliest": v.last, "departure_latest": v.departure_before,
            "lon": float(sub.lon.mean()), "lat": float(sub.lat.mean()), "length_m": float(sub.length_m.mean()),
            "max_score": float(max(v.scores)), "dark": bool(sub.dark.mean() > 0.5) if "dark" in sub else False,
            "dark_sightings": int(sub.dark.sum()) if "dark" in sub else 0,
            "confirmed": len(v.rows) >= 2 or max(v.scores) >= p.confirm_score,
            "scene_ids": ",".join(sub.scene_id.astype(str)),
        })
    columns = ["first_seen", "last_seen", "sightings", "arrival_earliest", "arrival_latest", "departure_earliest",
               "departure_latest", "lon", "lat", "length_m", "max_score", "dark", "dark_sightings", "confirmed",
               "scene_ids"]
    return pd.DataFrame(records, columns=columns)
