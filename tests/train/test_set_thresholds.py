"""`shipdet set-thresholds` records thresholds measured for other view counts in an exported model, its INT8 twin
and its card, leaving the weights as they were."""

import json
import shutil
from pathlib import Path

import onnx
import pytest
from typer.testing import CliRunner

from shipdet.cli import app
from shipdet.errors import ConfigError
from shipdet.inference.model import file_sha256, load_model_info
from shipdet.inference.operating_point import CONF_AT_VIEWS_METADATA_KEY, CONF_METADATA_KEY, VIEWS_METADATA_KEY
from shipdet.train.card import card_markdown
from shipdet.train.thresholds import set_conf_at_views
from tests.fake_model import detect_model


def exported(tmp_path: Path) -> Path:
    """A model as `shipdet export --views 4 --conf 0.2 --int8` leaves it: the file, its INT8 twin, its card."""
    model = detect_model(tmp_path / "m.onnx", {VIEWS_METADATA_KEY: "4", CONF_METADATA_KEY: "0.2",
                                               "shipdet_version": "1"})
    shutil.copy(model, tmp_path / "m.int8.onnx")
    card = {"name": "m", "version": "1", "file": model.name, "sha256": file_sha256(model), "task": "detect",
            "imgsz": 64, "names": {0: "ship"}, "parity": {}, "default_conf": 0.2, "default_views": 4,
            "int8": {"file": "m.int8.onnx"}}
    model.with_suffix(".card.json").write_text(json.dumps(card))
    model.with_suffix(".card.md").write_text(card_markdown(card))
    return model


def test_the_tables_are_recorded_in_the_model_its_twin_and_its_card(tmp_path: Path) -> None:
    model = exported(tmp_path)
    graph = onnx.load(str(model)).graph
    set_conf_at_views(model, {1: 0.7, 2: 0.3}, {})
    info = load_model_info(model)  # its card's sha256 follows the rewritten file
    assert info.conf_at_views == {1: 0.7, 2: 0.3} and info.conf_for(1.0, 1) == 0.7 and info.default_conf == 0.2
    assert load_model_info(tmp_path / "m.int8.onnx", verify=False).conf_at_views == {1: 0.7, 2: 0.3}
    assert onnx.load(str(model)).graph == graph  # the weights are untouched
    card = json.loads(model.with_suffix(".card.json").read_text())
    assert card["conf_at_views"] == {"1": 0.7, "2": 0.3} and card["conf_upsampled_at_views"] == {}
    assert "as posted views=1: conf 0.7, views=2: conf 0.3" in model.with_suffix(".card.md").read_text()
    set_conf_at_views(model, {}, {})  # an empty table removes what was recorded
    assert CONF_AT_VIEWS_METADATA_KEY not in load_model_info(model).metadata
    assert "thresholds measured for other views" not in model.with_suffix(".card.md").read_text()


def test_a_threshold_for_the_default_views_must_be_the_default(tmp_path: Path) -> None:
    model = exported(tmp_path)
    before = file_sha256(model)
    with pytest.raises(ConfigError, match=r"gives 0\.5 for 4 views, the default views"):
        set_conf_at_views(model, {4: 0.5}, {})
    assert file_sha256(model) == before  # refused before anything was written


def test_the_command_records_and_a_model_without_a_card_is_refused(tmp_path: Path) -> None:
    model = exported(tmp_path)
    done = CliRunner().invoke(app, ["set-thresholds", str(model), "--conf-at-views", "1=0.7", "--version", "2"])
    assert done.exit_code == 0, done.output
    info = load_model_info(model)
    assert info.conf_at_views == {1: 0.7} and info.version == "2" and info.metadata["shipdet_version"] == "2"
    with pytest.raises(ConfigError, match="has no card of its own"):  # the command: one line, exit 2 (test_cli)
        set_conf_at_views(detect_model(tmp_path / "bare.onnx"), {1: 0.7}, {})
