"""How many calls there were, with a 90 % interval (the method is stated in every report).

A call is seen when at least one observed pass during its stay detects it. For a call of dwell D arriving at a
uniformly random time in the period, the chance of that is pi(D) = mean over arrival times of 1 - (1 - r)^k, with k
the observed passes during its stay and r the detector's recall. The dwell times come from the stays of AIS tracks
in the area where there are at least three, else from the seen calls (each the middle of its arrival and departure
bounds). The estimate is the calls seen over pi, pi averaged harmonically over those dwell times (a Horvitz-Thompson
estimate: seen calls over-represent long stays). A visit without an AIS identity seen over longer than a typical
call counts as its span over the typical call's: back-to-back calls at one berth that no pass saw apart. The 90 %
interval is a parametric bootstrap over what is uncertain: the recall (a beta distribution: from AIS, the share of
the vessels it places in the area at observed passes that a detection was matched to; without AIS, from repeat
sightings, the share of the observed passes inside seen calls, after their first sighting and before their last,
that found the vessel again), the dwell times (resampled), and the calls that long visits hide (Poisson), and the
unseen calls themselves (given n seen with probability pi, the unseen number is negative binomial). Assumptions an
analyst should quote: arrivals are spread evenly over the period (or the month), a call's chance of being seen does
not depend on whether it is dark, the recall is the same at every pass, and the dwell times measured (by AIS, or by
the images) are typical of all calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

GRID = 600               # arrival times sampled across the period
BOOTSTRAP = 400
NEARLY_UNOBSERVED = 0.05  # below this chance of seeing a call, the images say nothing: estimate None
DEFAULT_RECALL = (9.0, 1.0)  # beta prior of the recall where no call was seen twice: mean 0.9, wide


@dataclass(frozen=True)
class DetectionModel:
    """What the estimate needs from the observations and the seen calls."""

    observed_s: np.ndarray          # observation times, seconds
    dwell_days: np.ndarray          # dwell estimates of single calls (AIS-identified where there are enough)
    recall_beta: tuple[float, float]

    @property
    def typical_dwell(self) -> float:
        return float(np.mean(self.dwell_days))

    @property
    def recall(self) -> float:
        a, b = self.recall_beta
        return a / (a + b)


def recall_evidence(visits: pd.DataFrame, ais_found: int = 0, ais_present: int = 0) -> tuple[float, float]:
    """The recall's beta distribution. From AIS where its vessels were present at 10 passes or more (AIS says who
    was there: the share a detection was matched to). Else from the passes strictly inside seen calls (between
    their first and last sighting, which are sightings by construction), added to the prior (mean 0.9): visits
    that joined two calls count the empty berth between them as misses, so the prior keeps a few such from
    sinking the estimate."""
    if ais_present >= 10:
        return 1.0 + ais_found, 1.0 + ais_present - ais_found
    if not len(visits):
        return DEFAULT_RECALL
    inner_passes = (visits.observed_passes - 2).clip(lower=0)
    inner_sightings = (visits.sightings - 2).clip(lower=0)
    n, s = float(inner_passes[visits.sightings >= 2].sum()), float(inner_sightings[visits.sightings >= 2].sum())
    return (DEFAULT_RECALL[0] + s, DEFAULT_RECALL[1] + n - s) if n > 0 else DEFAULT_RECALL


def dwell_estimates(visits: pd.DataFrame, min_dwell_days: float, max_dwell_days: float) -> np.ndarray:
    """Each seen call's dwell: from the middle of its arrival bounds to the middle of its departure bounds,
    within [min_dwell_days, max_dwell_days]; a bound left open (the period's edge) counts as its sighting."""
    if not len(visits):
        return np.array([min_dwell_days])
    first, last = pd.to_datetime(visits.first_seen, utc=True), pd.to_datetime(visits.last_seen, utc=True)
    earliest = pd.to_datetime(visits.arrival_earliest, utc=True).fillna(first)  # all None: object dtype
    latest = pd.to_datetime(visits.departure_latest, utc=True).fillna(last)
    arrive = first - (first - earliest) / 2
    leave = last + (latest - last) / 2
    days = (leave - arrive).dt.total_seconds().to_numpy() / 86400
    return np.clip(days, min_dwell_days, max_dwell_days)


def _passes_during(model: DetectionModel, start_s: float, end_s: float, dwell_days: np.ndarray) -> np.ndarray:
    """(dwells, GRID): observed passes during a call of each dwell arriving at each of GRID times in the span."""
    arrivals = np.linspace(start_s, end_s, GRID)
    leave = arrivals[None, :] + dwell_days[:, None] * 86400
    return (np.searchsorted(model.observed_s, leave, side="right")
            - np.searchsorted(model.observed_s, np.broadcast_to(arrivals, leave.shape), side="left"))


def calls_in(visits: pd.DataFrame, model: DetectionModel) -> float:
    """Calls behind the confirmed visits: an AIS-identified visit is one call; one without an identity that was
    seen over longer than a typical call may be back-to-back calls at one berth that no pass saw apart (the berth
    empty between them), and counts as its span from first to last sighting over the typical call (at least 1)."""
    confirmed = visits[visits.confirmed] if len(visits) else visits
    if not len(confirmed):
        return 0.0
    span = (confirmed.last_seen - confirmed.first_seen).dt.total_seconds().to_numpy() / 86400
    identified = confirmed.vessel_id.notna().to_numpy() if "vessel_id" in confirmed else np.zeros(len(span), bool)
    return float(np.where(identified, 1.0, np.maximum(1.0, span / model.typical_dwell)).sum())


def single_call_dwells(visits: pd.DataFrame, min_dwell_days: float, max_dwell_days: float,
                       ais_dwells: np.ndarray | None = None) -> np.ndarray:
    """Dwell times of single calls: the AIS tracks' stays in the area where there are at least 3 (AIS times
    them to the hour, where images bound them only between passes); else AIS-identified visits where at least 3
    were seen (their identity keeps back-to-back calls apart); else every seen visit."""
    if ais_dwells is not None and len(ais_dwells) >= 3:
        return np.clip(ais_dwells, min_dwell_days, max_dwell_days)
    identified = visits[visits.vessel_id.notna()] if len(visits) and "vessel_id" in visits else visits.iloc[:0]
    return dwell_estimates(identified if len(identified) >= 3 else visits, min_dwell_days, max_dwell_days)


def interval(model: DetectionModel, seen: float, visits: int, start: pd.Timestamp, end: pd.Timestamp,
             hard: tuple[int, int], rng: np.random.Generator) -> dict[str, Any]:
    """{observed, estimate, interval_90, hard_bounds} for `seen` calls, behind `visits` confirmed visits, arriving
    in [start, end]."""
    passes = _passes_during(model, start.value / 1e9, end.value / 1e9, model.dwell_days)

    def detection_probability(recall: float, dwells: np.ndarray) -> float:
        # Long calls are more likely to be seen, so the seen calls over-represent them: each stands for 1/pi(D)
        # calls of its dwell, and the probability over all calls is the harmonic mean (Horvitz-Thompson).
        per_call = np.maximum(np.mean(1 - (1 - recall) ** passes[dwells], axis=1), 1e-3)
        return float(1 / np.mean(1 / per_call))

    every = np.arange(len(model.dwell_days))
    pi = max(detection_probability(model.recall, every), 1e-3)
    recalls = rng.beta(*model.recall_beta, BOOTSTRAP)
    draws = np.empty(BOOTSTRAP)
    for i, recall in enumerate(recalls):
        p = max(detection_probability(recall, rng.choice(every, len(every))), 1e-3)
        calls = visits + rng.poisson(max(seen - visits, 0.0))  # the calls that long visits hide are a guess
        draws[i] = calls + rng.negative_binomial(max(calls, 1), p)  # none seen: the unseen of one more
    lo, hi = np.quantile(draws, [0.05, 0.95])
    seen = round(seen)
    lo_hard, hi_hard = hard
    if pi < NEARLY_UNOBSERVED:  # no call could have been seen: say so, not "zero"
        return {"observed": int(seen), "estimate": None, "interval_90": [int(lo_hard), int(hi_hard)],
                "hard_bounds": [int(lo_hard), int(hi_hard)], "detection_probability": round(pi, 3)}
    estimate = float(np.clip(seen / pi, lo_hard, hi_hard))
    lo, hi = min(lo, estimate), max(hi, estimate)  # the interval holds its own point estimate
    return {"observed": int(seen), "estimate": round(estimate, 1),
            "interval_90": [int(np.clip(np.floor(lo), lo_hard, hi_hard)), int(np.clip(np.ceil(hi), lo_hard, hi_hard))],
            "hard_bounds": [int(lo_hard), int(hi_hard)], "detection_probability": round(pi, 3)}


def area_counts(visits: pd.DataFrame, observed_times: list[pd.Timestamp], start: pd.Timestamp, end: pd.Timestamp,
                min_dwell_days: float, max_dwell_days: float, berths: int, recall: float | None,
                ais_dwells: np.ndarray | None = None, ais_recall: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    """`arrivals`, `dark_arrivals` and `arrivals_by_month` of one area, each {observed, estimate, interval_90,
    hard_bounds}; `recall` given overrides the one estimated from repeat sightings."""
    from shipdet.voyages.bounds import visit_bounds

    rng = np.random.default_rng(0)
    in_period = visits[(visits.first_seen >= start) & (visits.first_seen <= end)] if len(visits) else visits
    evidence = recall_evidence(in_period, *ais_recall)
    beta = (recall * 200, (1 - recall) * 200) if recall is not None else evidence
    model = DetectionModel(np.sort([t.value / 1e9 for t in observed_times]),
                           single_call_dwells(in_period, min_dwell_days, max_dwell_days, ais_dwells), beta)

    def counts(seen: pd.DataFrame, lo: pd.Timestamp, hi: pd.Timestamp) -> dict[str, Any]:
        bounds = visit_bounds(seen, observed_times, lo, hi, min_dwell_days, berths)
        hard = (bounds["lower_bound"], bounds["upper_bound"])
        visits = int(seen.confirmed.sum()) if len(seen) else 0
        return interval(model, calls_in(seen, model), visits, lo, hi, hard, rng)

    dark = in_period[in_period.dark] if len(in_period) else in_period
    by_month = {}
    for month in pd.period_range(start.tz_convert(None), end.tz_convert(None), freq="M"):
        lo = max(start, month.start_time.tz_localize(start.tz))
        hi = min(end, month.end_time.tz_localize(start.tz))
        seen = in_period[(in_period.first_seen >= lo) & (in_period.first_seen <= hi)] if len(in_period) else in_period
        by_month[str(month)] = counts(seen, lo, hi)
    return {"arrivals": counts(in_period, start, end), "dark_arrivals": counts(dark, start, end),
            "arrivals_by_month": by_month,
            "recall": {"estimate": round(model.recall, 3), "from": "given" if recall is not None else
                       "AIS vessels present" if ais_recall[1] >= 10 else
                       ("repeat sightings" if evidence != DEFAULT_RECALL else "prior (no call seen twice)")}}


def ais_stays(ais: pd.DataFrame | None, inside: np.ndarray, interval_h: float = 1.0) -> np.ndarray | None:
    """Days each AIS vessel spent in the area (its reports inside it; `inside` marks them), one stay per vessel
    and run of reports no more than a day apart."""
    if ais is None or ais.empty or not inside.any():
        return None
    stays = []
    for _, track in ais[inside].sort_values("time").groupby("vessel_id"):
        t = track.time.astype("int64").to_numpy() / 86400e9
        for run in np.split(t, np.flatnonzero(np.diff(t) > 1.0) + 1):
            stays.append(run[-1] - run[0] + interval_h / 24)
    return np.asarray(stays)
