"""Voyage counting for each area: observations, vessels present, visits, bounds, dark flags."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely

from shipdet.voyages.ais import match_ais, recall_from_ais
from shipdet.voyages.bounds import visit_bounds
from shipdet.voyages.corrections import VisitEdit
from shipdet.voyages.estimate import ais_calls, area_counts
from shipdet.voyages.inputs import Area
from shipdet.voyages.link import LinkParams, link_visits

UNSETTLED_RECALL_SD = 0.15  # a recall known no better than this leaves the estimate to the prior (sd 0.24)


@dataclass
class AreaResult:
    area: Area
    observations: pd.DataFrame   # scene_id, acquired, observed_fraction, observed, vessels
    detections: pd.DataFrame     # in the area and the length range, with `dark`
    visits: pd.DataFrame
    summary: dict[str, Any]


def observations(scenes: pd.DataFrame, area: Area, min_observed: float) -> pd.DataFrame:
    """Each scene's observed share of the area: its clear, valid part (or footprint x valid_fraction)."""
    rows = []
    total = area.polygon.area
    for s in scenes.itertuples():
        valid = getattr(s, "valid", None)
        if valid is not None and not shapely.is_empty(valid):
            fraction = shapely.intersection(valid, area.polygon).area / total
        else:
            footprint = s.footprint if s.footprint is not None else shapely.Polygon()
            fraction = shapely.intersection(footprint, area.polygon).area / total * float(
                getattr(s, "valid_fraction", 1.0) or 0.0)
        rows.append({"scene_id": s.scene_id, "acquired": s.acquired, "observed_fraction": round(float(fraction), 4),
                     "observed": bool(fraction >= min_observed)})
    return pd.DataFrame(rows, columns=["scene_id", "acquired", "observed_fraction", "observed"]).sort_values(
        "acquired", kind="stable").reset_index(drop=True)


def count_area(area: Area, det: pd.DataFrame, scenes: pd.DataFrame, ais: pd.DataFrame | None, p: LinkParams,
               start: pd.Timestamp | None, end: pd.Timestamp | None, min_dwell_days: float,
               berths: int | None, recall: float | None = None, edits: Sequence[VisitEdit] = (),
               recall_sd: float = 0.02) -> AreaResult:
    obs = observations(scenes, area, p.min_observed)
    inside = shapely.contains_xy(area.polygon, det.lon.to_numpy(), det.lat.to_numpy()) if len(det) else \
        np.zeros(0, bool)
    sel = det[inside].copy()
    if area.min_length_m is not None:
        sel = sel[sel.length_m >= area.min_length_m]
    if area.max_length_m is not None:
        sel = sel[sel.length_m <= area.max_length_m]
    sel = sel[sel.scene_id.isin(obs.scene_id[obs.observed])]  # a cloudy scene's detections are not evidence
    lat0 = float(area.polygon.centroid.y)
    matched = match_ais(sel, ais, p, lat0)
    sel[["vessel_id", "dark", "ais_nearest_m"]] = matched[["vessel_id", "dark", "ais_nearest_m"]]
    visits = link_visits(sel, obs, p, lat0, edits)
    visits.insert(0, "area", area.name)
    visits.insert(1, "visit_id", [f"{area.name}-{i + 1:04d}" for i in range(len(visits))])
    per_scene = sel.groupby("scene_id").size()
    obs["vessels"] = obs.scene_id.map(per_scene).fillna(0).astype(int)
    observed_times = list(obs.acquired[obs.observed])
    start = start or (obs.acquired.min() if len(obs) else pd.Timestamp.now(tz="UTC"))
    end = end or (obs.acquired.max() if len(obs) else start)
    slots = berths or int(max(obs.vessels.max() if len(obs) else 1, 1))
    summary = {"area": area.name, "period": [str(start), str(end)], "scenes": len(obs),
               "observed_scenes": int(obs.observed.sum()),
               **visit_bounds(visits, observed_times, start, end, min_dwell_days, slots),
               "dark_visits": int(visits.dark.sum()) if len(visits) else 0,
               "ais_used": ais is not None}
    assumptions = [*det.attrs.get("assumptions", []), *scenes.attrs.get("assumptions", []),
                   *(ais.attrs.get("assumptions", []) if ais is not None else [])]
    if not obs.observed.any():
        assumptions.append("no scene observed this area clearly: the counts say nothing about it")
    summary["assumptions"] = assumptions
    in_area = shapely.contains_xy(area.polygon, ais.lon.to_numpy(), ais.lat.to_numpy()) if ais is not None and \
        len(ais) else np.zeros(0, bool)
    seen_by_ais = recall_from_ais(sel, matched, ais, observed_times, area.polygon, p, lat0)
    summary.update(area_counts(visits, observed_times, start, end, min_dwell_days, p.max_dwell_days, slots,
                               recall, ais_calls(ais, in_area, min_dwell_days), seen_by_ais, recall_sd))
    if summary["recall"]["sd"] > UNSETTLED_RECALL_SD:
        # Calls seen at one pass each say nothing of the recall apart from their dwell: the prior decides.
        assumptions.append(f"the images hardly tell the detector's recall here (+-{summary['recall']['sd']:.2f}): "
                           "the estimate leans on the default prior; give the validated recall (--recall)")
    return AreaResult(area, obs, sel, visits, summary)
