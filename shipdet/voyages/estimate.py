"""How many calls there were, with a 90 % interval (the method is stated in every report).

A call is seen when at least one observed pass during its stay detects it. The chance of that, pi, depends on the
calls' dwell times, the detector's recall and the observation schedule; both unknowns are learnt from the sighting
patterns of the seen calls (how often a call present at a pass was found, how long the seen calls stayed against the
passes that missed them), with AIS stays as the dwell times and AIS's own count of the vessels it placed in the area
at observed passes (how many a detection was matched to) as the recall's evidence where there is AIS, and the
analyst's recall where one is given (`shipdet/voyages/detectability.py`). The estimate is the calls seen over pi (a
Horvitz-Thompson estimate), taken at the posterior median of pi: half the weight of what is uncertain lies on either
side of it. A visit without an AIS identity seen over longer than a typical call counts as its span over the typical
call's: back-to-back calls at one berth that no pass saw apart. The 90 % interval is a posterior draw of the dwell
and recall (which gives pi), of the calls that long visits hide (Poisson), and of the unseen calls themselves (given
n seen with probability pi, the unseen number is negative binomial). With AIS, a transmitting vessel's call (its
track inside the area for at least half the shortest call) is counted from the track whether or not a pass saw it,
and only the calls AIS does not explain (dark) are estimated: arrivals are the AIS calls plus that estimate.
Assumptions an analyst should quote: AIS reception in the area is complete for the vessels that transmit; arrivals
are spread evenly over the period (or the month); a call's chance of being seen does not depend on whether it is
dark; the recall is the same at every pass; without AIS, dwell times vary within +-40 % of their mean, which lies
between the shortest and the longest call allowed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shipdet.voyages.detectability import DEFAULT_RECALL_PRIOR, Detectability, learn

DRAWS = 400
NEARLY_UNOBSERVED = 0.05  # below this chance of seeing a call, the images say nothing: estimate None


def calls_in(visits: pd.DataFrame, typical_dwell_days: float) -> float:
    """Calls behind the confirmed visits: an AIS-identified visit is one call; one without an identity that was
    seen over longer than a typical call may be back-to-back calls at one berth that no pass saw apart (the berth
    empty between them), and counts as its span from first to last sighting over the typical call (at least 1)."""
    confirmed = visits[visits.confirmed] if len(visits) else visits
    if not len(confirmed):
        return 0.0
    span = (confirmed.last_seen - confirmed.first_seen).dt.total_seconds().to_numpy() / 86400
    identified = confirmed.vessel_id.notna().to_numpy() if "vessel_id" in confirmed else np.zeros(len(span), bool)
    return float(np.where(identified, 1.0, np.maximum(1.0, span / typical_dwell_days)).sum())


def interval(model: Detectability, seen: float, visits: int, start: pd.Timestamp, end: pd.Timestamp,
             hard: tuple[int, int], rng: np.random.Generator) -> dict[str, Any]:
    """{observed, estimate, interval_90, hard_bounds} for `seen` calls, behind `visits` confirmed visits, arriving
    in [start, end]."""
    table = np.clip(model.seen_probability(start.value / 1e9, end.value / 1e9), 1e-3, 1.0)
    pi = float((table * model.weights).sum())
    dwell, recall = model.draw(rng, DRAWS)
    p = table[dwell, recall]
    calls = visits + rng.poisson(max(seen - visits, 0.0), DRAWS)  # the calls that long visits hide are a guess
    draws = calls + rng.negative_binomial(np.maximum(calls, 1), p)  # none seen: the unseen of one more
    lo, hi = np.quantile(draws, [0.05, 0.95])
    seen = round(seen)
    lo_hard, hi_hard = hard
    if pi < NEARLY_UNOBSERVED:  # no call could have been seen: say so, not "zero"
        return {"observed": int(seen), "estimate": None, "interval_90": [int(lo_hard), int(hi_hard)],
                "hard_bounds": [int(lo_hard), int(hi_hard)], "detection_probability": round(pi, 3)}
    # The posterior median of seen / pi, not seen over its mean: it is the estimate of least absolute error, and
    # where recall and dwell are barely identified (rare passes, every call dark) the mean is dragged high by the
    # long tail of small pi.
    inverse = 1.0 / table.ravel()
    order = np.argsort(inverse)
    mass = np.cumsum(model.weights.ravel()[order])
    estimate = float(np.clip(seen * inverse[order][np.searchsorted(mass, 0.5 * mass[-1])], lo_hard, hi_hard))
    lo, hi = min(lo, estimate), max(hi, estimate)  # the interval holds its own point estimate
    return {"observed": int(seen), "estimate": round(estimate, 1),
            "interval_90": [int(np.clip(np.floor(lo), lo_hard, hi_hard)), int(np.clip(np.ceil(hi), lo_hard, hi_hard))],
            "hard_bounds": [int(lo_hard), int(hi_hard)], "detection_probability": round(pi, 3)}


def given_recall(mean: float, sd: float) -> tuple[float, float]:
    """The beta distribution of a recall given as a figure and its standard deviation (a validation's); a recall of
    1 reads as 0.999, for a beta needs room on both sides."""
    mean = 0.999 if 0.999 < mean <= 1 else mean
    if not 0 < mean < 1 or not 0 < sd < np.sqrt(mean * (1 - mean)):
        raise ValueError(f"a recall of {mean} +- {sd} is no probability's: the mean must lie in (0, 1) and the "
                         f"spread in (0, {np.sqrt(max(mean * (1 - mean), 0)):.3f})")
    k = mean * (1 - mean) / sd**2 - 1
    return mean * k, (1 - mean) * k


def area_counts(visits: pd.DataFrame, observed_times: list[pd.Timestamp], start: pd.Timestamp, end: pd.Timestamp,
                min_dwell_days: float, max_dwell_days: float, berths: int, recall: float | None,
                ais_calls: pd.DataFrame | None = None, ais_recall: tuple[int, int] = (0, 0),
                recall_sd: float = 0.02) -> dict[str, Any]:
    """`arrivals`, `dark_arrivals` and `arrivals_by_month` of one area, each {observed, estimate, interval_90,
    hard_bounds, ais_calls}; `recall` given (with its standard deviation) overrides the one learnt from AIS and the
    sighting patterns. With AIS, its calls are counted as they are and only the dark ones are estimated."""
    from shipdet.voyages.bounds import visit_bounds

    in_period = visits[(visits.first_seen >= start) & (visits.first_seen <= end)] if len(visits) else visits
    found, present = ais_recall
    # AIS says which vessels were there at each observed pass: the share a detection was matched to is the recall's
    # direct evidence, added to the weak default prior (any count helps; a few vessels do not settle it).
    prior, source = (given_recall(recall, recall_sd), "given") if recall is not None else \
        ((DEFAULT_RECALL_PRIOR[0] + found, DEFAULT_RECALL_PRIOR[1] + present - found), "AIS vessels present") \
        if present else (None, "prior")
    ais_dwells = ais_calls.days.to_numpy() if ais_calls is not None and len(ais_calls) else None
    model = learn(in_period, np.sort([t.value / 1e9 for t in observed_times]), start, end, min_dwell_days,
                  max_dwell_days, ais_dwells, prior, source)
    dark = in_period[in_period.dark] if len(in_period) else in_period
    # A transmitting vessel's call is known from its AIS track whether or not a pass saw it: only the calls AIS
    # does not explain (dark, or matched to a vessel whose track here is too short to be a call) are left to
    # estimate. Without an AIS table every call is.
    unexplained = in_period if ais_calls is None or not len(in_period) else \
        in_period[in_period.dark | ~in_period.vessel_id.isin(set(ais_calls.vessel_id))]

    def counts(seen: pd.DataFrame, lo: pd.Timestamp, hi: pd.Timestamp, known: int) -> dict[str, Any]:
        seen = seen[(seen.first_seen >= lo) & (seen.first_seen <= hi)] if len(seen) else seen
        bounds = visit_bounds(seen, observed_times, lo, hi, min_dwell_days, berths)
        hard = (bounds["lower_bound"], bounds["upper_bound"])
        visits = int(seen.confirmed.sum()) if len(seen) else 0
        # The same draws for every count: arrivals are then the dark arrivals' interval shifted by the AIS calls.
        out = interval(model, calls_in(seen, model.dwell_days), visits, lo, hi, hard, np.random.default_rng(0))
        if known:
            out |= {"observed": out["observed"] + known, "interval_90": [v + known for v in out["interval_90"]],
                    "hard_bounds": [v + known for v in out["hard_bounds"]],
                    "estimate": None if out["estimate"] is None else round(out["estimate"] + known, 1)}
        return out | {"ais_calls": known}

    def known_in(lo: pd.Timestamp, hi: pd.Timestamp) -> int:
        return 0 if ais_calls is None else int(((ais_calls.arrival >= lo) & (ais_calls.arrival <= hi)).sum())

    by_month = {}
    for month in pd.period_range(start.tz_convert(None), end.tz_convert(None), freq="M"):
        lo = max(start, month.start_time.tz_localize(start.tz))
        hi = min(end, month.end_time.tz_localize(start.tz))
        by_month[str(month)] = counts(unexplained, lo, hi, known_in(lo, hi))
    return {"arrivals": counts(unexplained, start, end, known_in(start, end)),
            "dark_arrivals": counts(dark, start, end, 0), "arrivals_by_month": by_month,
            "recall": {"estimate": round(model.recall, 3), "sd": round(model.recall_sd, 3),
                       "from": model.recall_source},
            "dwell_days": {"estimate": round(model.dwell_days, 2), "from": model.dwell_source}}


def ais_calls(ais: pd.DataFrame | None, inside: np.ndarray, min_dwell_days: float,
              interval_h: float = 1.0) -> pd.DataFrame | None:
    """The calls AIS saw in the area: one per vessel and run of reports inside it no more than a day apart, lasting
    at least half the shortest call (shorter runs are vessels passing through); `vessel_id`, `arrival` (UTC), `days`.
    None without an AIS table; an empty frame when AIS was checked and nobody called."""
    if ais is None:
        return None
    stays: list[tuple[str, pd.Timestamp, float]] = []
    for vessel, track in ais[inside].sort_values("time").groupby("vessel_id"):
        t = track.time.dt.as_unit("ns").astype("int64").to_numpy() / 86400e9
        breaks = np.flatnonzero(np.diff(t) > 1.0) + 1
        for first, run in zip(np.r_[0, breaks], np.split(t, breaks), strict=True):
            days = run[-1] - run[0] + interval_h / 24
            if days >= min_dwell_days / 2:
                stays.append((str(vessel), track.time.iloc[first], days))
    return pd.DataFrame(stays, columns=["vessel_id", "arrival", "days"])
