"""Voyage counting against the simulator's ground truth."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from shipdet.voyages.count import count_area
from shipdet.voyages.link import LinkParams
from shipdet.voyages.simulate import SimConfig, simulate, write_simulation

pytest.importorskip("geopandas")


def _count(sim, params=LinkParams()):
    cfg = sim.config
    return count_area(sim.area, sim.detections, sim.scenes, sim.ais, params, pd.Timestamp(cfg.start, tz="UTC"),
                      pd.Timestamp(cfg.end, tz="UTC"), cfg.min_dwell_days, cfg.berths)


PERFECT = SimConfig(cloud_probability=0.0, recall=1.0, false_positives_per_scene=0.0, position_noise_m=0.0,
                    length_noise=0.0, ais_noise_m=0.0, revisit_days=0.2, turnaround_days=0.5)


@pytest.mark.parametrize("seed", range(5))
def test_perfect_observation_and_detection_give_exact_counts(seed):
    sim = simulate(PERFECT, seed)
    result = _count(sim, LinkParams(absences_to_close=1))
    s = result.summary
    assert s["observed_visits"] == s["confirmed_visits"] == s["lower_bound"] == len(sim.truth)
    assert s["upper_bound"] == len(sim.truth)  # no gap a visit could hide in
    visits = result.visits.sort_values("first_seen").reset_index(drop=True)
    truth = sim.truth.sort_values("arrival").reset_index(drop=True)
    early = (visits.first_seen - truth.arrival).dt.total_seconds() / 86400
    late = (truth.departure - visits.last_seen).dt.total_seconds() / 86400
    ended = truth.departure <= sim.scenes.acquired.max()  # the last call may outlast the imaging period
    assert early.between(0, 0.2).all() and late[ended].between(0, 0.2).all()  # within one revisit of the truth
    assert (visits.arrival_earliest.iloc[1:] <= truth.arrival.iloc[1:]).all()  # bounds bracket the arrival


def test_true_count_within_bounds_in_95_percent_of_200_cloudy_simulations():
    cfg = SimConfig(cloud_probability=0.3)
    inside = 0
    for seed in range(200):
        sim = simulate(cfg, seed)
        s = _count(sim).summary
        arrivals = s["arrivals"]
        lo, hi = arrivals["hard_bounds"]
        assert lo <= arrivals["interval_90"][0] <= arrivals["estimate"] <= arrivals["interval_90"][1] <= hi
        inside += lo <= len(sim.truth) <= hi
    assert inside >= 190, inside


def test_dark_vessel_flags_precision_and_recall_under_ais_noise():
    cfg = SimConfig(ais_noise_m=60.0, cloud_probability=0.3)
    tp = fp = fn = 0
    for seed in range(40):
        sim = simulate(cfg, seed)
        det = _count(sim).detections
        flagged, dark = det.dark.to_numpy(), det.truth_dark.to_numpy().astype(bool)
        tp, fp, fn = tp + (flagged & dark).sum(), fp + (flagged & ~dark).sum(), fn + (~flagged & dark).sum()
    assert tp / (tp + fp) >= 0.9 and tp / (tp + fn) >= 0.9


def test_month_long_overcast_widens_the_bounds():
    clear = simulate(SimConfig(cloud_probability=0.1), 3)
    overcast = simulate(SimConfig(cloud_probability=0.1, overcast=("2024-07-01", "2024-08-01")), 3)
    a, b = _count(clear).summary, _count(overcast).summary
    assert b["longest_gap_days"] >= 30 and b["blind_days"] > a["blind_days"]
    assert b["upper_bound"] > a["upper_bound"] and len(overcast.truth) <= b["upper_bound"]
    july = b["arrivals_by_month"]["2024-07"]
    arrived = overcast.truth.arrival.dt.month == 7
    # Only AIS saw July: its lit calls are counted as they are, the dark ones could not be seen ...
    assert july["ais_calls"] == (arrived & overcast.truth.ais_on).sum() == july["observed"]
    assert july["hard_bounds"][0] == july["ais_calls"]
    # ... which says little of them: not zero
    assert july["hard_bounds"][1] > july["ais_calls"] + 10 and july["interval_90"][1] > july["ais_calls"]


def test_cli_end_to_end(tmp_path):
    from typer.testing import CliRunner

    from shipdet.cli import app

    paths = write_simulation(simulate(replace(SimConfig(), end="2024-05-01"), 7), tmp_path / "sim")
    result = CliRunner().invoke(app, ["voyages", "--detections", str(paths["detections"]), "--scenes",
                                      str(paths["scenes"]), "--areas", str(paths["areas"]), "--ais",
                                      str(paths["ais"]), "--out", str(tmp_path / "out"), "--min-dwell-days", "2"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    area = summary["areas"][0]
    for key in ("arrivals", "dark_arrivals"):
        counts = area[key]
        assert set(counts) >= {"observed", "estimate", "interval_90", "hard_bounds"}
        assert counts["hard_bounds"][0] <= counts["interval_90"][0] <= counts["interval_90"][1] <= \
            counts["hard_bounds"][1]
    assert all(set(m) >= {"observed", "estimate", "interval_90", "hard_bounds"}
               for m in area["arrivals_by_month"].values())
    assert "ceil(gap" in summary["method"] and "negative binomial" in summary["method"]
    visits = pd.read_csv(tmp_path / "out" / "visits.csv")
    assert {"visit_id", "first_seen", "last_seen", "arrival_earliest", "departure_latest", "dark",
            "confirmed"} <= set(visits.columns)
    assert (tmp_path / "out" / "timeline_berths.png").stat().st_size > 10_000
    assert (tmp_path / "out" / "visits.parquet").is_file()
    assert "## berths" in (tmp_path / "out" / "summary.md").read_text()


def test_bad_inputs_are_clear_errors(tmp_path):
    from typer.testing import CliRunner

    from shipdet.cli import app

    (tmp_path / "d.csv").write_text("scene_id,lon\nA,1\n")
    (tmp_path / "a.geojson").write_text('{"features": []}')
    result = CliRunner().invoke(app, ["voyages", "--detections", str(tmp_path / "d.csv"), "--scenes",
                                      str(tmp_path / "d.csv"), "--areas", str(tmp_path / "a.geojson"), "--out",
                                      str(tmp_path / "o")])
    assert result.exit_code != 0
    assert isinstance(result.exception, Exception) and "detections lack" in str(result.exception)
    _ = np  # numpy used by the simulator's outputs
