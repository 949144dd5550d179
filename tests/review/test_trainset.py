"""Corrections become a YOLO set: chips around reviewed detections, rejected ones left unlabelled."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from shipdet.cli import app
from shipdet.review.store import CorrectionIn, CorrectionLog
from tests.rescore.conftest import SHIPS


def test_reviewed_detections_become_positives_and_hard_negatives(run_dir: Path, tmp_path: Path) -> None:
    log = CorrectionLog(run_dir)
    for action, det_id, label in (("confirm", 0, None), ("reject", 1, None), ("relabel", 2, "tanker"),
                                  ("confirm", 1, None), ("reject", 1, None)):  # the last word counts
        log.append(CorrectionIn(action=action, scene_id="scene_2024-03-07", det_id=det_id, label=label))
    out = tmp_path / "set"
    result = CliRunner().invoke(app, ["datasets", "review", str(run_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = sorted(p.stem for p in (out / "images").glob("*.jpg"))
    assert names == ["scene_2024-03-07_0_confirm", "scene_2024-03-07_1_reject", "scene_2024-03-07_2_relabel"]
    for name in names:  # the 300 x 260 scene fits one chip: every ship but the rejected one is labelled
        lines = (out / "labels" / f"{name}.txt").read_text().splitlines()
        assert len(lines) == len(SHIPS) - 1 and all(line.startswith("0 ") for line in lines)
    assert "tanker" in (out / "review_labels.csv").read_text()
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] in ({0: "ship"}, ["ship"])
    assert (out / "manifest.csv").read_text().count("\nscene_2024-03-07_") == 3  # one row a chip, grouped by scene
