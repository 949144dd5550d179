"""A small real run to review: two georeferenced scenes with ships, re-scored by the pixel-exact fake detector."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipdet.rescore.run import RescoreParams, RescoreRun
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
