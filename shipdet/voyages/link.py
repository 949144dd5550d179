"""From detections and observations of one area to visits (the AIS matching is in `shipdet.voyages.ais`).

Observation: one scene over the area; it *observed* the area when the clear, valid part covers at least
`min_observed` of it. Visit: detections linked across observed scenes at the same slot (within `link_distance_m`)
with compatible lengths; a visit ends when the area was observed without it `absences_to_close` times in a row
(one observed absence may be a missed detection). Calls are told apart: two AIS identities are two calls; no
call lasts longer than `max_dwell_days`; after an unobserved stretch longer than `min_gap_days` the same vessel
must measure the same within the detector's length noise. Each visit records what linked its sightings.
Arrival lies between the last observation without the vessel and its first sighting; departure between its last
sighting and the next observation without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pydantic_settings import BaseSettings, SettingsConfigDict

from shipdet.voyages.corrections import VisitEdit

EARTH_M_PER_DEG = 111_320.0


class LinkParams(BaseSettings):
    """Voyage-counting parameters; each can come from the environment as SHIPDET_VOYAGES_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="SHIPDET_VOYAGES_", frozen=True, extra="forbid")

    min_observed: float = 0.8          # share of the area a scene must see (clear, valid) to count as observed
    link_distance_m: float = 150.0     # the same berth slot
    length_tolerance: float = 0.25     # relative length difference still the same vessel
    absences_to_close: int = 2         # observed absences in a row that end a visit
    confirm_score: float = 0.5         # a visit seen once counts as confirmed from this score up
    ais_distance_m: float = 300.0      # gate around an AIS position at a report time (a lit detection lies inside)
    ais_drift_m_per_h: float = 100.0   # the gate grows by this per hour between the image and the nearer report
    ais_max_gap_h: float = 6.0         # AIS positions further apart than this are not interpolated between
    max_dwell_days: float = 10.0       # a sighting this long after a visit's first is a new call, not the same one
    length_noise_m: float = 8.0        # the detector's length error (1 sigma): after an unobserved stretch longer
                                       # than min_gap_days, the same vessel must measure within 2.5 sigma * sqrt 2
    min_gap_days: float = 2.0


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
    vessel_id: str | None = None  # the AIS identity of its sightings, where one matched
    linked_by: set[str] = field(default_factory=set)


def _same_call(v: _Visit, when: pd.Timestamp, length: float, vessel_id: str | None, p: LinkParams) -> str | None:
    """Why a detection continues visit `v` ("ais", "length", "position"), or None when it cannot: another AIS
    identity, longer than any call since the visit began, or a length that changed across an unobserved gap."""
    if v.vessel_id is not None and vessel_id is not None:
        return "ais" if v.vessel_id == vessel_id else None
    # Present at both passes, the call stayed longer than the time between them: at max_dwell_days it cannot.
    if (when - v.first).total_seconds() / 86400 >= p.max_dwell_days:
        return None
    difference = abs(length - v.length)
    if difference > p.length_tolerance * max(v.length, 1.0):
        return None
    if (when - v.last).total_seconds() / 86400 > p.min_gap_days:
        return "length" if difference <= 2.5 * np.sqrt(2) * p.length_noise_m else None
    return "position"


def link_visits(det: pd.DataFrame, obs: pd.DataFrame, p: LinkParams, lat0: float,
                edits: Sequence[VisitEdit] = ()) -> pd.DataFrame:
    """Visits of one area. `det`: detections in the area (lon, lat, length_m, score, acquired, scene_id, dark;
    optionally det_id and a reviewer's word, `reviewed`); `obs`: its observations (scene_id, acquired, observed),
    in time order; `edits`: reviewers' splits and merges, applied after linking."""
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
            best, best_d, why = None, p.link_distance_m, None
            for r in rows:
                if r in taken:
                    continue
                d = float(np.hypot(*(xy_all[pos[r]] - v.xy)))
                reason = _same_call(v, ob.acquired, float(det.at[r, "length_m"]), _vessel(det, r), p)
                if reason is not None and d <= best_d:
                    best, best_d, why = r, d, reason
            if best is None:
                v.absences += 1
                if v.absences == 1:
                    v.departure_before = ob.acquired
                continue
            taken.add(best)
            v.rows.append(best)
            v.linked_by.add(str(why))
            v.vessel_id = v.vessel_id or _vessel(det, best)
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
                                          scores=[float(det.at[r, "score"])], vessel_id=_vessel(det, r)))
        last_observed = ob.acquired
    closed = _apply_edits(closed + open_visits, det, edits)
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
            "confirmed": len(v.rows) >= 2 or max(v.scores) >= p.confirm_score or (
                "reviewed" in sub and bool(sub.reviewed.isin(["confirm", "relabel"]).any())),
            "vessel_id": v.vessel_id, "linked_by": ",".join(sorted(v.linked_by)) or "single sighting",
            "observed_passes": int(((obs.acquired >= v.first) & (obs.acquired <= v.last) & obs.observed).sum()),
            "scene_ids": ",".join(sub.scene_id.astype(str)),
            "det_ids": ",".join(str(int(d)) for d in sub.det_id) if "det_id" in sub else "",
        })
    columns = ["first_seen", "last_seen", "sightings", "arrival_earliest", "arrival_latest", "departure_earliest",
               "departure_latest", "lon", "lat", "length_m", "max_score", "dark", "dark_sightings", "confirmed",
               "vessel_id", "linked_by", "observed_passes", "scene_ids", "det_ids"]
    return pd.DataFrame(records, columns=columns)


def _vessel(det: pd.DataFrame, row: int) -> str | None:
    value = det.at[row, "vessel_id"] if "vessel_id" in det else None
    return str(value) if isinstance(value, str) and value else None


def _regrouped(rows: list[int], det: pd.DataFrame, xy: np.ndarray, arrival_after: pd.Timestamp | None,
               departure_before: pd.Timestamp | None, linked_by: set[str]) -> _Visit:
    rows = sorted(rows, key=lambda r: det.at[r, "acquired"])
    vessels = [v for v in (_vessel(det, r) for r in rows) if v]
    return _Visit(rows, xy.mean(axis=0), float(det.loc[rows, "length_m"].mean()), det.at[rows[0], "acquired"],
                  det.at[rows[-1], "acquired"], arrival_after=arrival_after, departure_before=departure_before,
                  scores=[float(det.at[r, "score"]) for r in rows], vessel_id=vessels[0] if vessels else None,
                  linked_by=linked_by | {"review"})


def _apply_edits(visits: list[_Visit], det: pd.DataFrame, edits: Sequence[VisitEdit]) -> list[_Visit]:
    """A reviewer's merge makes one visit of those holding the given sightings; a split makes the given sightings
    a visit of their own, each part bounded by the other (the berth was taken until the first part's last
    sighting). Sightings no longer in the table (rejected, or outside the area) are passed over."""
    if not edits or "det_id" not in det:
        return visits
    row_of = {(str(s), int(d)): r for r, s, d in zip(det.index, det.scene_id, det.det_id, strict=True)}
    xy = local_xy(det.lon.to_numpy(), det.lat.to_numpy(), float(det.lat.mean())) if len(det) else np.zeros((0, 2))
    at = {r: k for k, r in enumerate(det.index)}

    def build(rows: list[int], after: pd.Timestamp | None, before: pd.Timestamp | None, why: set[str]) -> _Visit:
        return _regrouped(rows, det, xy[[at[r] for r in rows]], after, before, why)

    for edit in edits:
        rows = {row_of[k] for k in edit.sightings if k in row_of}
        hit = [v for v in visits if rows & set(v.rows)]
        if edit.action == "merge" and len(hit) >= 2:
            joined = build([r for v in hit for r in v.rows], min(hit, key=lambda v: v.first).arrival_after,
                           max(hit, key=lambda v: v.last).departure_before, set().union(*(v.linked_by for v in hit)))
            visits = [v for v in visits if v not in hit] + [joined]
        elif edit.action == "split" and len(hit) == 1 and set(hit[0].rows) - rows:
            whole = hit[0]
            parts = sorted([[r for r in whole.rows if r in rows], [r for r in whole.rows if r not in rows]],
                           key=lambda part: min(det.at[r, "acquired"] for r in part))
            early = build(parts[0], whole.arrival_after, None, whole.linked_by)
            late = build(parts[1], early.last, whole.departure_before, whole.linked_by)
            early.departure_before = late.first
            visits = [v for v in visits if v is not whole] + [early, late]
    return visits
