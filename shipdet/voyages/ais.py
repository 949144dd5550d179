"""Matching detections to AIS, one to one: in each scene, the AIS positions interpolated to the image time (with
an uncertainty that grows with the time to the nearest report) and the detections are paired by an assignment
that minimises a cost of distance and length mismatch inside a gate. A vessel explains at most one detection, so
a dark tanker moored beside a transmitting one stays dark. Lit detections carry the matched `vessel_id`; dark
ones the distance to the nearest AIS position left unmatched."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from scipy.optimize import linear_sum_assignment
from shapely.geometry.base import BaseGeometry

from shipdet.voyages.link import LinkParams, local_xy

OUTSIDE_GATE = 1e6  # an assignment cost no allowed pair reaches


@dataclass(frozen=True)
class AisAtTimes:
    """AIS of every vessel at the image times: position (V, T, 2), its gate radius (V, T), known (V, T)."""

    vessel_ids: list[str]
    xy: np.ndarray
    gate_m: np.ndarray
    known: np.ndarray
    length_m: np.ndarray  # (V,), NaN where AIS gives none


def ais_at_times(ais: pd.DataFrame, times_s: np.ndarray, p: LinkParams, lat0: float) -> AisAtTimes:
    """Each vessel's position at each time, linearly between the two reports around it (no further apart than
    `ais_max_gap_h`); the gate grows by `ais_drift_m_per_h` with the time to the nearer report."""
    ids, xys, gates, knowns, lengths = [], [], [], [], []
    for vessel, track in ais.sort_values("time").groupby("vessel_id", sort=True):
        t = track.time.dt.as_unit("ns").astype("int64").to_numpy() / 1e9
        xy = local_xy(track.lon.to_numpy(), track.lat.to_numpy(), lat0)
        i = np.searchsorted(t, times_s, side="right")
        ok = (i > 0) & (i < len(t))
        i = np.clip(i, 1, max(len(t) - 1, 1))
        t0, t1 = t[i - 1], t[i] if len(t) > 1 else t[i - 1]
        ok &= (t1 - t0) <= p.ais_max_gap_h * 3600
        frac = np.where(t1 > t0, (times_s - t0) / np.maximum(t1 - t0, 1e-9), 0.0)[:, None]
        ids.append(str(vessel))
        xys.append(xy[i - 1] + (xy[i] - xy[i - 1]) * frac if len(t) > 1 else np.repeat(xy[:1], len(times_s), 0))
        nearest_h = np.minimum(np.abs(times_s - t0), np.abs(t1 - times_s)) / 3600
        gates.append(p.ais_distance_m + p.ais_drift_m_per_h * nearest_h)
        knowns.append(ok)
        known_lengths = track.length_m.dropna() if "length_m" in track else pd.Series(dtype=float)
        lengths.append(float(known_lengths.median()) if len(known_lengths) else np.nan)
    shape = (len(ids), len(times_s))
    return AisAtTimes(ids, np.asarray(xys).reshape(*shape, 2), np.asarray(gates).reshape(shape),
                      np.asarray(knowns, dtype=bool).reshape(shape), np.asarray(lengths, dtype=float))


def match_ais(det: pd.DataFrame, ais: pd.DataFrame | None, p: LinkParams, lat0: float) -> pd.DataFrame:
    """Per detection (same index): `vessel_id` (the matched AIS vessel, None when dark), `dark`, and
    `ais_nearest_m` (dark ones: distance to the nearest unmatched AIS position; NaN where none). Without an AIS
    table nothing is flagged dark; an empty one (AIS checked, nobody transmitting) makes every detection dark."""
    out = pd.DataFrame({"vessel_id": pd.Series([None] * len(det), index=det.index, dtype=object),
                        "dark": ais is not None, "ais_nearest_m": np.nan}, index=det.index)
    if ais is None or ais.empty or det.empty:
        return out
    times = np.unique(det.acquired.dt.as_unit("ns").astype("int64").to_numpy()) / 1e9
    known = ais_at_times(ais, times, p, lat0)
    det_xy = local_xy(det.lon.to_numpy(), det.lat.to_numpy(), lat0)
    det_t = det.acquired.dt.as_unit("ns").astype("int64").to_numpy() / 1e9
    lengths = det.length_m.to_numpy(dtype=float)
    for k, when in enumerate(times):
        rows = np.flatnonzero(det_t == when)
        present = np.flatnonzero(known.known[:, k])
        if not len(present):
            continue
        pos = known.xy[present, k]  # (V, 2)
        dist = np.hypot(*(det_xy[rows][:, None, :] - pos[None, :, :]).transpose(2, 0, 1))  # (D, V)
        gate = known.gate_m[present, k][None, :]
        ais_len = known.length_m[present][None, :]
        tol = p.length_tolerance * np.maximum(np.nan_to_num(ais_len, nan=1.0), 1.0) + 10.0
        length_gap = np.where(np.isnan(ais_len), 0.0, np.abs(lengths[rows][:, None] - ais_len))
        allowed = (dist <= gate) & (length_gap <= tol)
        cost = np.where(allowed, (dist / gate) ** 2 + (length_gap / tol) ** 2, OUTSIDE_GATE)
        matched_rows, matched_cols = linear_sum_assignment(cost)
        taken = np.zeros(len(present), dtype=bool)
        lit = np.zeros(len(rows), dtype=bool)
        for r, c in zip(matched_rows, matched_cols, strict=True):
            if allowed[r, c]:
                lit[r], taken[c] = True, True
                out.iloc[rows[r], out.columns.get_loc("vessel_id")] = known.vessel_ids[present[c]]
        out.iloc[rows[lit], out.columns.get_loc("dark")] = False
        if (~taken).any():
            nearest = dist[:, ~taken].min(axis=1)
            out.iloc[rows[~lit], out.columns.get_loc("ais_nearest_m")] = np.round(nearest[~lit], 1)
    return out


def recall_from_ais(det: pd.DataFrame, matched: pd.DataFrame, ais: pd.DataFrame | None,
                    observed_times: list[pd.Timestamp], area_polygon_lonlat: BaseGeometry, p: LinkParams,
                    lat0: float) -> tuple[int, int]:
    """(found, present): at each observed pass, the AIS vessels known to be inside the area, and how many of
    them a detection was matched to. AIS says who was there, so this measures the detector's recall directly."""
    if ais is None or ais.empty or not observed_times:
        return 0, 0
    times = np.asarray([t.value for t in observed_times], dtype=np.int64) / 1e9
    known = ais_at_times(ais, times, p, lat0)
    ring = np.asarray(shapely.get_coordinates(area_polygon_lonlat.convex_hull))
    local = shapely.Polygon(local_xy(ring[:, 0], ring[:, 1], lat0))
    inside = known.known & shapely.contains_xy(local, known.xy[..., 0], known.xy[..., 1])
    det_t = det.acquired.dt.as_unit("ns").astype("int64").to_numpy() / 1e9
    found = 0
    for k, when in enumerate(times):
        here = set(matched.vessel_id[(det_t == when) & matched.vessel_id.notna().to_numpy()])
        found += sum(known.vessel_ids[v] in here for v in np.flatnonzero(inside[:, k]))
    return found, int(inside.sum())
