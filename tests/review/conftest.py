"""A small real run to review: two georeferenced scenes with ships, re-scored by the pixel-exact fake detector."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shipdet.rescore.params import RescoreParams
from shipdet.rescore.run import RescoreRun
from shipdet.rescore.sources import resolve_sources
from tests.rescore.conftest import SHIPS, ThresholdEngine, write_scene


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    archive = tmp_path / "archive"
    archive.mkdir()
    write_scene(archive / "scene_2024-03-07.tif", SHIPS)
    write_scene(archive / "scene_2024-03-08.tif", SHIPS[:2], offset=2000.0)
    out = tmp_path / "run"
    RescoreRun(out, ThresholdEngine(), RescoreParams(tile=128, overlap=32, max_batch=4)).run(
        resolve_sources([str(archive)]))
    return out


@pytest.fixture
def voyages_report(run_dir: Path, tmp_path: Path) -> Path:
    """`shipdet voyages` over the run, one area: the first scene's footprint."""
    import geopandas as gpd
    from typer.testing import CliRunner

    from shipdet.cli import app

    first = gpd.read_parquet(run_dir / "scenes.parquet").footprint.iloc[0]
    (tmp_path / "area.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"name": "harbour"}, "geometry": first.__geo_interface__}]}))
    report = tmp_path / "voyages"
    counted = CliRunner().invoke(app, ["voyages", "--detections", str(run_dir / "detections.parquet"), "--scenes",
                                       str(run_dir / "scenes.parquet"), "--areas", str(tmp_path / "area.geojson"),
                                       "--out", str(report)])
    assert counted.exit_code == 0, counted.output
    return report
