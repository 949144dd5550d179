"""The chance of seeing a call, and what the seen calls' sighting patterns say about dwell and recall."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shipdet.voyages.detectability import RECALLS, Detectability, learn, pattern_likelihood, seen_probability
from shipdet.voyages.estimate import interval

DAY = 86400.0


def test_a_call_present_at_daily_passes_is_seen_unless_the_detector_misses_every_one() -> None:
    passes = np.arange(0, 100) * DAY + 0.1 * DAY
    pi = seen_probability(passes, 10 * DAY, 80 * DAY, np.array([[3.0]]))[0]  # a 3-day call: 3 passes
    expected = 1 - (1 - RECALLS) ** 3
    assert np.allclose(pi, expected, atol=1e-9)
    assert np.allclose(seen_probability(np.array([]), 0, 10 * DAY, np.array([[3.0]])), 0.0)


def test_a_sighting_pattern_longer_than_the_dwell_is_impossible_and_misses_cost_one_minus_recall() -> None:
    passes = np.arange(0, 30) * DAY
    first, last = np.array([10 * DAY, 10 * DAY]), np.array([14 * DAY, 10 * DAY])
    like = pattern_likelihood(passes, 0, 30 * DAY, first, last, np.array([5, 1]), np.array([[2.5], [5.5]]))
    assert np.all(like[0, 0] == 0)          # seen over 4 days: no 2.5-day call holds both sightings
    assert np.all(like[0, 1] > 0)
    # Seen once in a 2.5-day stay: two or three passes fall in it, and the others missed it. Of the arrivals in
    # (7.5, 10] holding pass 10, those in (7.5, 8], [8.5, 9] and [9.5, 10] hold three passes: 1.5 days of 2.5.
    r = RECALLS
    share_three = 0.6
    expected = 2.5 / 30 * (share_three * r * (1 - r) ** 2 + (1 - share_three) * r * (1 - r))
    assert np.allclose(like[1, 0], expected, rtol=0.05)


def _visits(rng: np.random.Generator, recall: float, dwell: float, passes: np.ndarray) -> pd.DataFrame:
    rows = []  # dwell times within +-40 % of their mean, as the model assumes where AIS does not time them
    for arrival, stay in zip(rng.uniform(0, passes[-1] - 1.4 * dwell * DAY, 80), rng.uniform(0.6, 1.4, 80) * dwell,
                             strict=True):
        at = passes[(passes >= arrival) & (passes <= arrival + stay * DAY)]
        hits = at[rng.random(len(at)) < recall]
        if len(hits):
            rows.append({"first_seen": pd.Timestamp(hits[0], unit="s", tz="UTC"),
                         "last_seen": pd.Timestamp(hits[-1], unit="s", tz="UTC"), "sightings": len(hits),
                         "confirmed": True, "vessel_id": None})
    return pd.DataFrame(rows)


def test_repeat_sightings_teach_the_recall_and_the_dwell() -> None:
    rng = np.random.default_rng(3)
    passes = np.arange(0, 200) * DAY + 0.1 * DAY
    start, end = pd.Timestamp(0, unit="s", tz="UTC"), pd.Timestamp(passes[-1], unit="s", tz="UTC")
    for recall, dwell in ((0.6, 3.0), (0.9, 6.0)):
        model = learn(_visits(rng, recall, dwell, passes), passes, start, end, 1.0, 10.0, None, None, "prior")
        assert abs(model.recall - recall) < 0.1 and abs(model.dwell_days - dwell) < 1.0
        assert model.recall_source == "sighting patterns"


def test_a_given_recall_holds_and_ais_stays_are_the_dwell() -> None:
    passes = np.arange(0, 60) * DAY
    start, end = pd.Timestamp(0, unit="s", tz="UTC"), pd.Timestamp(passes[-1], unit="s", tz="UTC")
    none = pd.DataFrame(columns=["first_seen", "last_seen", "sightings", "confirmed", "vessel_id"])
    model = learn(none, passes, start, end, 1.0, 10.0, np.array([2.0, 3.0, 4.0]), (160.0, 40.0), "given")
    assert abs(model.recall - 0.8) < 0.01 and model.recall_source == "given"
    assert model.dwell_source == "AIS stays" and 2.0 <= model.dwell_days <= 4.0


def test_a_given_recall_and_its_spread_make_the_beta_prior_and_nonsense_is_refused() -> None:
    import pytest
    from scipy import stats

    from shipdet.voyages.estimate import given_recall

    a, b = given_recall(0.9, 0.05)
    assert stats.beta.mean(a, b) == pytest.approx(0.9) and stats.beta.std(a, b) == pytest.approx(0.05)
    for mean, sd in ((0.9, 0.4), (1.2, 0.05), (0.9, 0.0)):
        with pytest.raises(ValueError, match="no probability"):
            given_recall(mean, sd)


def test_the_estimate_is_seen_over_pi_at_its_posterior_median_not_over_its_mean() -> None:
    start, end = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-03-01", tz="UTC")
    passes = start.value / 1e9 + np.arange(0, 60, 5) * DAY + 0.1 * DAY  # a pass every 5 days: a call is seen once
    high, low = int(np.argmin(np.abs(RECALLS - 0.9))), int(np.argmin(np.abs(RECALLS - 0.3)))
    weights = np.zeros((1, len(RECALLS)))
    weights[0, high], weights[0, low] = 0.6, 0.4  # most of the posterior on a good detector, a tail on a poor one
    model = Detectability(passes, np.full((1, 4), 3.0), weights, "test", "test")
    p = model.seen_probability(start.value / 1e9, end.value / 1e9)[0]
    out = interval(model, 20.0, 20, start, end, (20, 1000), np.random.default_rng(0))
    assert out["estimate"] == round(20 / p[high], 1)  # the median: the tail moves it no further
    assert out["estimate"] < 20 / (0.6 * p[high] + 0.4 * p[low])  # seen over the mean pi reads higher
    assert out["interval_90"][0] <= out["estimate"] <= out["interval_90"][1]
