"""Hard bounds on the calls: how many could have been missed whatever the detector (stated in every report).

- Lower bound: the confirmed visits (seen in two observations or more, or once with a score >= confirm_score).
- Upper bound: every observed visit plus, for each gap between consecutive observations (and before the first /
  after the last, within the period), the most visits of at least `min_dwell` that fit wholly inside it at each
  of `berths` slots: ceil(gap / min_dwell) - 1 per slot. A visit overlapping any observation would have been seen
  (up to detector recall, which this bound does not cover).
- Blind days: the time, summed over gaps, in which a whole visit of `min_dwell` could have come and gone unseen.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import pandas as pd


def gaps(observed_times: list[pd.Timestamp], start: pd.Timestamp, end: pd.Timestamp) -> list[float]:
    """Lengths in days of the unobserved stretches of [start, end]."""
    times = sorted(t for t in observed_times if start <= t <= end)
    edges = [start, *times, end]
    return [max(0.0, (b - a).total_seconds() / 86400) for a, b in itertools.pairwise(edges)]


def visit_bounds(visits: pd.DataFrame, observed_times: list[pd.Timestamp], start: pd.Timestamp, end: pd.Timestamp,
                 min_dwell_days: float, berths: int) -> dict[str, Any]:
    in_period = visits[(visits.first_seen >= start) & (visits.first_seen <= end)] if len(visits) else visits
    observed = len(in_period)
    confirmed = int(in_period.confirmed.sum()) if observed else 0
    g = gaps(observed_times, start, end)
    missed_max = berths * sum(max(0, math.ceil(x / min_dwell_days) - 1) for x in g)
    return {"observed_visits": observed, "confirmed_visits": confirmed, "lower_bound": confirmed,
            "upper_bound": observed + missed_max,
            "blind_days": round(sum(max(0.0, x - min_dwell_days) for x in g), 2),
            "longest_gap_days": round(max(g, default=0.0), 2), "berths": berths, "min_dwell_days": min_dwell_days}
