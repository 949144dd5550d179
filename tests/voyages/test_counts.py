"""One-to-one AIS matching, calls told apart, intervals, the simulate command, stated assumptions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipdet.voyages.ais import match_ais
from shipdet.voyages.link import EARTH_M_PER_DEG, LinkParams, link_visits

pytest.importorskip("scipy")

LAT0 = 42.74
T0 = pd.Timestamp("2024-05-01T02:00", tz="UTC")


def _lon(east_m: float) -> float:
    return 133.0 + east_m / (EARTH_M_PER_DEG * np.cos(np.radians(LAT0)))


def _detections(rows: list[tuple[str, float, float, pd.Timestamp]]) -> pd.DataFrame:
    """(scene_id, east metres, length, time) -> a detections table on the quay at LAT0."""
    return pd.DataFrame([{"scene_id": s, "acquired": t, "lon": _lon(e), "lat": LAT0, "length_m": length,
                          "score": 0.9} for s, e, length, t in rows])


def _ais(vessel: str, east_m: float, length: float, start: pd.Timestamp, hours: int) -> pd.DataFrame:
    times = [start + pd.Timedelta(hours=h) for h in range(-1, hours + 1)]
    return pd.DataFrame({"vessel_id": vessel, "time": times, "lon": _lon(east_m), "lat": LAT0, "speed_kn": 0.0,
                         "length_m": length})


def test_an_ais_vessel_explains_one_detection_not_its_dark_neighbour() -> None:
    # Two tankers 200 m apart, one transmitting: before, the one AIS position lit both.
    det = _detections([("S1", 0.0, 100.0, T0), ("S1", 200.0, 102.0, T0)])
    matched = match_ais(det, _ais("lit", 10.0, 101.0, T0, 2), LinkParams(), LAT0)
    assert matched.vessel_id.tolist() == ["lit", None]
    assert matched.dark.tolist() == [False, True]
    assert matched.ais_nearest_m.iloc[1] != matched.ais_nearest_m.iloc[1]  # NaN: no AIS position left unmatched


def test_assignment_takes_the_better_pairing_and_lengths_gate_it() -> None:
    det = _detections([("S1", 0.0, 100.0, T0), ("S1", 120.0, 180.0, T0)])
    ais = pd.concat([_ais("short", 60.0, 100.0, T0, 2), _ais("long", 60.0, 182.0, T0, 2)])
    matched = match_ais(det, ais, LinkParams(), LAT0)
    assert matched.vessel_id.tolist() == ["short", "long"]  # by length, though both are 60 m from each
    alone = match_ais(det.iloc[:1], _ais("long", 0.0, 182.0, T0, 2), LinkParams(), LAT0)
    assert alone.dark.tolist() == [True] and alone.ais_nearest_m.iloc[0] == pytest.approx(0.0, abs=1.0)


def test_no_ais_table_flags_nothing_and_an_empty_one_flags_everything() -> None:
    det = _detections([("S1", 0.0, 100.0, T0)])
    assert not match_ais(det, None, LinkParams(), LAT0).dark.any()
    empty = _ais("x", 0, 100, T0, 1).iloc[:0]
    assert match_ais(det, empty, LinkParams(), LAT0).dark.all()


def _observations(times: list[pd.Timestamp]) -> pd.DataFrame:
    return pd.DataFrame({"scene_id": [f"S{i}" for i in range(len(times))], "acquired": times, "observed": True})


def test_two_ais_identities_at_one_berth_are_two_calls() -> None:
    days = [T0 + pd.Timedelta(days=d) for d in range(6)]
    det = _detections([(f"S{i}", 0.0, 100.0, t) for i, t in enumerate(days)])
    det["vessel_id"] = ["a", "a", "a", "b", "b", "b"]  # back to back, the berth never seen empty
    visits = link_visits(det, _observations(days), LinkParams(), LAT0)
    assert len(visits) == 2 and visits.vessel_id.tolist() == ["a", "b"]
    assert visits.linked_by.tolist() == ["ais", "ais"]


def test_a_call_does_not_outlast_the_longest_dwell_and_a_length_change_after_a_gap_is_a_new_call() -> None:
    days = [T0 + pd.Timedelta(days=d) for d in (0, 1, 2, 3)]
    det = _detections([(f"S{i}", 0.0, 100.0, t) for i, t in enumerate(days)])
    assert len(link_visits(det, _observations(days), LinkParams(max_dwell_days=2.5), LAT0)) == 2
    # Seen at two passes, a call stayed longer than the time between them: exactly the longest dwell is too long.
    assert len(link_visits(det, _observations(days), LinkParams(max_dwell_days=3.0), LAT0)) == 2
    assert len(link_visits(det, _observations(days), LinkParams(max_dwell_days=3.1), LAT0)) == 1
    gap = [T0, T0 + pd.Timedelta(days=1), T0 + pd.Timedelta(days=6)]  # cloudy days between
    det = _detections([("S0", 0.0, 100.0, gap[0]), ("S1", 0.0, 101.0, gap[1]), ("S2", 0.0, 122.0, gap[2])])
    precise = LinkParams(length_noise_m=4.0)  # 21 m is within the 25 % any two sightings may differ by, but
    visits = link_visits(det, _observations(gap), precise, LAT0)  # not within the noise of a precise measure
    assert visits.sightings.tolist() == [2, 1]
    same = _detections([("S0", 0.0, 100.0, gap[0]), ("S1", 0.0, 101.0, gap[1]), ("S2", 0.0, 103.0, gap[2])])
    visits = link_visits(same, _observations(gap), precise, LAT0)
    assert visits.sightings.tolist() == [3] and visits.linked_by.iloc[0] == "length,position"


def _simulate_and_count(tmp_path: Path, *extra: str) -> tuple[dict[str, object], pd.DataFrame]:
    from typer.testing import CliRunner

    from shipdet.cli import app

    runner = CliRunner()
    made = runner.invoke(app, ["voyages", "simulate", "--out", str(tmp_path / "sim"), "--seed", "5",
                               "--end", "2024-06-01", *extra])
    assert made.exit_code == 0, made.output
    sim = tmp_path / "sim"
    counted = runner.invoke(app, ["voyages", "--detections", str(sim / "detections.csv"), "--scenes",
                                  str(sim / "scenes.csv"), "--areas", str(sim / "areas.geojson"), "--ais",
                                  str(sim / "ais.csv"), "--out", str(tmp_path / "out"), "--min-dwell-days", "2"])
    assert counted.exit_code == 0, counted.output
    assert "90 % interval" in counted.output
    return json.loads((tmp_path / "out" / "summary.json").read_text()), pd.read_csv(sim / "truth.csv")


def test_simulate_is_seeded_and_writes_what_voyages_reads(tmp_path: Path) -> None:
    summary, truth = _simulate_and_count(tmp_path)
    again, _ = _simulate_and_count(tmp_path / "again")
    assert summary["areas"] == again["areas"]  # the same seed, the same scenario, the same counts
    assert {"vessel_id", "berth", "arrival", "departure", "length_m", "ais_on"} <= set(truth.columns)
    area = summary["areas"][0]
    assert area["recall"]["from"] == "AIS vessels present and sighting patterns"  # the simulation has AIS
    assert area["dwell_days"]["from"] == "AIS stays"
    assert area["arrivals"]["hard_bounds"][0] <= len(truth) <= area["arrivals"]["hard_bounds"][1]


def test_the_visits_geoparquet_passes_an_independent_validator(tmp_path: Path) -> None:
    gpv = pytest.importorskip("geoparquet_validator")
    _simulate_and_count(tmp_path)
    report = gpv.check(str(tmp_path / "out" / "visits.parquet"))
    assert report["version"] == "1.1.0" and gpv.failed(report) == [], report["outcomes"]


def test_naive_times_and_ais_without_lengths_are_stated_assumptions(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from shipdet.cli import app

    runner = CliRunner()
    assert runner.invoke(app, ["voyages", "simulate", "--out", str(tmp_path / "sim"), "--end", "2024-04-15",
                               "--dark-share", "0"]
                         ).exit_code == 0
    sim = tmp_path / "sim"
    det = pd.read_csv(sim / "detections.csv")
    det["acquired"] = pd.to_datetime(det.acquired, utc=True).dt.tz_localize(None).astype(str)
    det.to_csv(sim / "detections.csv", index=False)
    pd.read_csv(sim / "ais.csv").drop(columns=["length_m"]).to_csv(sim / "ais.csv", index=False)
    result = runner.invoke(app, ["voyages", "--detections", str(sim / "detections.csv"), "--scenes",
                                 str(sim / "scenes.csv"), "--areas", str(sim / "areas.geojson"), "--ais",
                                 str(sim / "ais.csv"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    said = json.loads((tmp_path / "out" / "summary.json").read_text())["areas"][0]["assumptions"]
    assert any("no time zone" in a for a in said) and any("no vessel lengths" in a for a in said)
    assert "no time zone" in (tmp_path / "out" / "summary.md").read_text()


def test_a_scenes_table_without_scored_scenes_is_a_clear_error(tmp_path: Path) -> None:
    from shipdet.errors import DatasetFormatError
    from shipdet.voyages.inputs import read_scenes

    (tmp_path / "scenes.csv").write_text("scene_id,acquired,footprint_wkt,status\nA,2024-01-01T00:00Z,,failed\n")
    with pytest.raises(DatasetFormatError, match="no scored scenes"):
        read_scenes(tmp_path / "scenes.csv")


def test_ais_calls_are_counted_as_they_are_passing_vessels_are_not() -> None:
    from shipdet.voyages.estimate import ais_calls

    call = _ais("tanker", 0.0, 100.0, T0, 60)                        # 2.5 days at the berth
    passing = _ais("tug", 50.0, 30.0, T0 + pd.Timedelta(days=5), 3)  # a few hours through the area
    calls = ais_calls(pd.concat([call, passing]), np.ones(len(call) + len(passing), bool), 2.0)
    assert calls is not None and len(calls) == 1
    # 61 h of reports, and the hour after the last
    assert calls.arrival.iloc[0] == T0 - pd.Timedelta(hours=1) and calls.days.iloc[0] == pytest.approx(62 / 24)
    assert ais_calls(None, np.zeros(0, bool), 2.0) is None


def test_transmitting_calls_no_pass_saw_are_still_counted() -> None:
    from dataclasses import replace

    from shipdet.voyages.count import count_area
    from shipdet.voyages.simulate import SimConfig, simulate

    # Every vessel transmits and half the passes are cloudy: AIS knows every call, images or not.
    sim = simulate(replace(SimConfig(), ais_on_probability=1.0, cloud_probability=0.5, revisit_days=5.0), 4)
    start, end = pd.Timestamp(sim.config.start, tz="UTC"), pd.Timestamp(sim.config.end, tz="UTC")
    s = count_area(sim.area, sim.detections, sim.scenes, sim.ais, LinkParams(max_dwell_days=5.0), start, end,
                   2.0, sim.config.berths).summary
    seen = sim.detections.truth_vessel.nunique()
    assert seen < len(sim.truth)  # some calls were never imaged ...
    arrivals = s["arrivals"]      # ... and still none is left to guess
    assert arrivals["ais_calls"] == arrivals["observed"] == len(sim.truth) == arrivals["interval_90"][0]
    assert s["dark_arrivals"]["observed"] == 0 and s["dark_arrivals"]["ais_calls"] == 0
    # A vessel whose track here is too short to be a call is not lost: its imaged visit is counted instead.
    vessel = sim.detections.truth_vessel.dropna().iloc[0]
    seen_at = sim.detections[sim.detections.truth_vessel == vessel].acquired.iloc[0]
    brief = sim.ais[(sim.ais.vessel_id != vessel) | ((sim.ais.time - seen_at).abs() < pd.Timedelta(hours=3))]
    s = count_area(sim.area, sim.detections, sim.scenes, brief, LinkParams(max_dwell_days=5.0), start, end,
                   2.0, sim.config.berths).summary
    assert s["arrivals"]["ais_calls"] == len(sim.truth) - 1 and s["arrivals"]["observed"] == len(sim.truth)


def test_a_recall_the_images_cannot_tell_is_said_to_lean_on_the_prior() -> None:
    from dataclasses import replace

    from shipdet.voyages.count import count_area
    from shipdet.voyages.simulate import SimConfig, simulate

    def assumptions(revisit_days: float) -> list[str]:
        sim = simulate(replace(SimConfig(), ais_on_probability=0.0, revisit_days=revisit_days, berths=2), 1)
        start, end = pd.Timestamp(sim.config.start, tz="UTC"), pd.Timestamp(sim.config.end, tz="UTC")
        return count_area(sim.area, sim.detections, sim.scenes, sim.ais, LinkParams(max_dwell_days=5.0), start, end,
                          2.0, 2).summary["assumptions"]

    # A pass every 5 days sees each call of 2-5 days once at most: nothing tells a miss from a short stay.
    assert any("--recall" in a for a in assumptions(5.0))
    assert not any("--recall" in a for a in assumptions(1.0))  # daily passes see calls several times
