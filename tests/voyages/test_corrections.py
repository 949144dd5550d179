"""A recount reads the reviewers' corrections: rejected detections leave it, merges and splits regroup sightings."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from shipdet.errors import DatasetFormatError, DatasetNotFoundError
from shipdet.review.store import CorrectionIn, CorrectionLog
from shipdet.voyages.corrections import apply_corrections
from shipdet.voyages.count import count_area
from shipdet.voyages.link import LinkParams
from shipdet.voyages.simulate import SimConfig, simulate

CLEAR = SimConfig(end="2024-05-01", berths=1, cloud_probability=0.0, recall=1.0, false_positives_per_scene=0.0,
                  position_noise_m=0.0, length_noise=0.0, ais_on_probability=0.0, revisit_days=0.5)


def _visits(det: pd.DataFrame, log: Path | None = None) -> pd.DataFrame:
    sim = simulate(CLEAR, 1)
    edits = []
    if log is not None:
        reviewed = apply_corrections(det, log)
        det, edits = reviewed.detections, reviewed.edits
    result = count_area(sim.area, det, sim.scenes, None, LinkParams(absences_to_close=1),
                        pd.Timestamp(CLEAR.start, tz="UTC"), pd.Timestamp(CLEAR.end, tz="UTC"), 1.0, 1, None, edits)
    return result.visits


def _sightings(visit: pd.Series) -> list[tuple[str, int]]:
    return [(s, int(d)) for s, d in zip(visit.scene_ids.split(","), str(visit.det_ids).split(","), strict=True)]


def test_rejections_merges_and_splits_are_recounted(tmp_path: Path) -> None:
    det = simulate(CLEAR, 1).detections.assign(det_id=lambda d: range(len(d)))
    before = _visits(det)
    assert len(before) >= 4 and (before.sightings >= 3).all()
    log = CorrectionLog(tmp_path)
    for scene_id, det_id in _sightings(before.iloc[0]):  # the first call was not a ship at all
        log.append(CorrectionIn(action="reject", scene_id=scene_id, det_id=det_id))
    both = _sightings(before.iloc[1]) + _sightings(before.iloc[2])
    log.append(CorrectionIn(action="merge", visit_id="x-2", with_visit="x-3", detections=both))
    fourth = _sightings(before.iloc[3])
    log.append(CorrectionIn(action="split", visit_id="x-4", split_at=pd.Timestamp(0), detections=fourth[2:]))

    after = _visits(det, tmp_path)
    assert len(after) == len(before) - 1 - 1 + 1
    kept = {tuple(_sightings(v)[0]) for _, v in after.iterrows()}
    assert _sightings(before.iloc[0])[0] not in kept
    merged = after[after.scene_ids.str.contains(both[0][0]) & after.scene_ids.str.contains(both[-1][0])]
    assert len(merged) == 1 and merged.iloc[0].sightings == len(both) and "review" in merged.iloc[0].linked_by
    early = after[after.first_seen == before.iloc[3].first_seen].iloc[0]
    late = after[after.last_seen == before.iloc[3].last_seen].iloc[0]
    assert early.sightings == 2 and late.sightings == len(fourth) - 2
    assert early.departure_latest == late.first_seen and late.arrival_earliest == early.last_seen


def test_a_missing_log_or_a_table_without_ids_is_a_clear_error(tmp_path: Path) -> None:
    det = simulate(CLEAR, 1).detections
    with pytest.raises(DatasetNotFoundError, match="no corrections log"):
        apply_corrections(det, tmp_path)
    CorrectionLog(tmp_path).append(CorrectionIn(action="confirm", scene_id="S0001", det_id=0))
    with pytest.raises(DatasetFormatError, match="no det_id"):
        apply_corrections(det, tmp_path / "review.jsonl")
