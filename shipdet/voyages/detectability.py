"""How likely a call is to be seen, learnt from the sighting patterns of the calls that were seen.

A call of dwell D arriving at time a is present at the observed passes K(a, D) during [a, a + D]; each finds it
with probability r (the detector's recall). A seen call's pattern (first and last sighting, number of sightings)
has probability (1/T) * integral over a of r^s (1 - r)^(K - s), with K the passes of a stay holding both
sightings; the chance of being seen at all is pi = (1/T) * integral of 1 - (1 - r)^K. Conditional on being seen,
a visit's likelihood is the first over the second: this is what the seen calls say about D and r whatever the
number of calls never seen. Where no AIS times the stays, the dwell times of all calls follow a family (uniform
within +-DWELL_SPREAD of a mean that the likelihood chooses between the shortest and longest call); with AIS, its
stays are the dwell distribution. The recall's prior is AIS's own count of the vessels it saw found, the analyst's
figure, or a weak default; a visit that some dwell times cannot explain (two calls the linker joined) is, under
those, an outlier of small likelihood (a share of its best explanation, the same for every dwell) instead of ruling
them out, so that one bad link neither decides nor vetoes the dwell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

RECALLS = np.linspace(0.05, 0.99, 95)
DWELL_SPREAD = 0.4          # dwell times vary uniformly within +-40 % of their mean, where AIS does not time them
QUADRATURE = np.linspace(-1.0, 1.0, 9)
DWELL_STEP_DAYS = 0.25
ARRIVAL_GRID = 600          # arrival times sampled across a period
VISIT_CHUNK = 64            # visits whose likelihoods are computed at once (bounds the memory)
VISIT_GRID = 96             # arrival times sampled across one visit's possible arrivals
MISFIT = 0.02               # an outlier visit's likelihood, as a share of its best explanation
DEFAULT_RECALL_PRIOR = (2.0, 1.0)  # mean 0.67, wide: the sighting patterns, AIS or the analyst must say more


@dataclass(frozen=True)
class Detectability:
    """The posterior over (mean dwell, recall) of one area; each row of `dwells` is one candidate's dwell times."""

    observed_s: np.ndarray     # sorted observation times, seconds
    dwells: np.ndarray         # (candidates, points) dwell days, equally likely within a candidate
    weights: np.ndarray        # (candidates, len(RECALLS)) posterior mass, summing to 1
    recall_source: str
    dwell_source: str

    @property
    def recall(self) -> float:
        return float((self.weights.sum(axis=0) * RECALLS).sum())

    @property
    def recall_sd(self) -> float:
        mass = self.weights.sum(axis=0)
        return float(np.sqrt((mass * (RECALLS - self.recall) ** 2).sum()))

    @property
    def dwell_days(self) -> float:
        return float((self.weights.sum(axis=1) * self.dwells.mean(axis=1)).sum())

    def seen_probability(self, start_s: float, end_s: float) -> np.ndarray:
        """(candidates, len(RECALLS)): the chance that a call arriving in [start_s, end_s] is seen."""
        return seen_probability(self.observed_s, start_s, end_s, self.dwells)

    def draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """n (candidate, recall) index pairs from the posterior."""
        flat = rng.choice(self.weights.size, n, p=self.weights.ravel())
        return np.unravel_index(flat, self.weights.shape)  # type: ignore[return-value]


def _passes(observed_s: np.ndarray, arrivals_s: np.ndarray, dwell_days: np.ndarray) -> np.ndarray:
    """Observed passes during each stay: broadcast of arrivals (..., A) against dwells."""
    leave = arrivals_s + dwell_days * 86400
    return (np.searchsorted(observed_s, leave, side="right")
            - np.searchsorted(observed_s, np.broadcast_to(arrivals_s, leave.shape), side="left"))


def _histogram(counts: np.ndarray, top: int) -> np.ndarray:
    """(..., A) pass counts to (..., top + 1) shares of arrivals with each count."""
    flat = counts.reshape(-1, counts.shape[-1]).clip(0, top)
    out = np.zeros((flat.shape[0], top + 1))
    np.add.at(out, (np.repeat(np.arange(flat.shape[0]), flat.shape[1]), flat.ravel()), 1.0 / flat.shape[1])
    return out.reshape(*counts.shape[:-1], top + 1)


def seen_probability(observed_s: np.ndarray, start_s: float, end_s: float, dwells: np.ndarray) -> np.ndarray:
    arrivals = np.linspace(start_s, end_s, ARRIVAL_GRID)
    counts = _passes(observed_s, arrivals[None, None, :], dwells[:, :, None])
    share = _histogram(counts, int(counts.max(initial=0)))          # (candidates, points, k)
    ks = np.arange(share.shape[-1])
    seen = 1 - (1 - RECALLS[None, :]) ** ks[:, None]                # (k, recalls)
    return np.einsum("cpk,kr->cr", share, seen) / dwells.shape[1]


def pattern_likelihood(observed_s: np.ndarray, start_s: float, end_s: float, first_s: np.ndarray,
                       last_s: np.ndarray, sightings: np.ndarray, dwells: np.ndarray) -> np.ndarray:
    """(visits, candidates, len(RECALLS)): each visit's sighting pattern under each dwell and recall."""
    days = dwells[None, :, :, None]                                   # (1, c, p, 1)
    lo = last_s[:, None, None, None] - days * 86400                   # earliest arrival holding both sightings
    hi = first_s[:, None, None, None]
    span = np.clip(hi - lo, 0.0, None)
    arrivals = lo + span * (np.arange(VISIT_GRID) + 0.5) / VISIT_GRID
    counts = _passes(observed_s, arrivals, days)                      # (v, c, p, G)
    top = int(counts.max(initial=0))
    share = _histogram(counts, top) * (span / (end_s - start_s))      # (v, c, p, k)
    ks = np.arange(top + 1)
    misses = np.clip(ks[None, :] - sightings[:, None], 0, None)       # (v, k)
    possible = ks[None, :] >= sightings[:, None]
    prob = np.where(possible[:, :, None], RECALLS ** sightings[:, None, None]
                    * (1 - RECALLS) ** misses[:, :, None], 0.0)       # (v, k, r)
    return np.einsum("vcpk,vkr->vcr", share, prob) / dwells.shape[1]


def dwell_candidates(min_dwell_days: float, max_dwell_days: float, ais_dwells: np.ndarray | None) -> np.ndarray:
    if ais_dwells is not None and len(ais_dwells) >= 3:
        return np.quantile(np.clip(ais_dwells, min_dwell_days, max_dwell_days), np.linspace(0.02, 0.98, 25))[None]
    means = np.arange(min_dwell_days, max_dwell_days + 1e-9, DWELL_STEP_DAYS)
    return means[:, None] * (1 + DWELL_SPREAD * QUADRATURE[None, :])


def learn(visits: pd.DataFrame, observed_s: np.ndarray, start: pd.Timestamp, end: pd.Timestamp,
          min_dwell_days: float, max_dwell_days: float, ais_dwells: np.ndarray | None,
          recall_prior: tuple[float, float] | None, recall_source: str) -> Detectability:
    """The posterior over (dwell, recall) from the confirmed visits' sighting patterns."""
    dwells = dwell_candidates(min_dwell_days, max_dwell_days, ais_dwells)
    prior = recall_prior or DEFAULT_RECALL_PRIOR
    log_post = np.broadcast_to(stats.beta.logpdf(RECALLS, *prior), (len(dwells), len(RECALLS))).copy()
    confirmed = visits[visits.confirmed] if len(visits) else visits
    start_s, end_s = start.value / 1e9, max(end.value / 1e9, start.value / 1e9 + 86400)
    if len(confirmed):
        first, last = _seconds(confirmed.first_seen), _seconds(confirmed.last_seen)
        pi = np.maximum(seen_probability(observed_s, start_s, end_s, dwells), 1e-9)
        sightings = confirmed.sightings.to_numpy().astype(int)
        # In chunks of visits: a year at a busy port holds thousands, and each spans (dwells x arrivals) samples.
        fit = np.concatenate([pattern_likelihood(observed_s, start_s, end_s, first[i:i + VISIT_CHUNK],
                                                 last[i:i + VISIT_CHUNK], sightings[i:i + VISIT_CHUNK], dwells)
                              for i in range(0, len(first), VISIT_CHUNK)]) / pi
        best = fit.max(axis=(1, 2), keepdims=True)
        log_post += np.log((1 - MISFIT) * fit + MISFIT * best + 1e-300).sum(axis=0)
    weights = np.exp(log_post - log_post.max())
    if len(confirmed) and recall_source != "given":
        recall_source = "sighting patterns" if recall_source == "prior" else f"{recall_source} and sighting patterns"
    return Detectability(observed_s, dwells, weights / weights.sum(), recall_source,
                         "AIS stays" if len(dwells) == 1 else "sighting patterns" if len(confirmed) else "prior")



def _seconds(times: pd.Series) -> np.ndarray:
    return pd.to_datetime(times, utc=True).dt.as_unit("ns").astype("int64").to_numpy() / 1e9
