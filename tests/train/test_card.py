"""The card's Measured section: written after export, in the JSON and the Markdown alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner


def _card(folder: Path) -> Path:
    model = folder / "m.onnx"
    model.write_bytes(b"onnx")
    model.with_suffix(".card.json").write_text(json.dumps({
        "name": "m", "version": "1", "file": "m.onnx", "sha256": "0" * 64, "task": "detect", "imgsz": 512,
        "names": {"0": "ship"}, "parity": {}, "notes": "## Limitations\n- few epochs\n"}))
    return model


def test_measured_figures_become_the_cards_section(tmp_path: Path) -> None:
    from shipdet.cli import app

    model = _card(tmp_path)
    measured = tmp_path / "measured.md"
    measured.write_text("| mAP50 | 0.5 |\n")
    result = CliRunner().invoke(app, ["card", str(model), "--measured", str(measured), "--title", "stage 7"])
    assert result.exit_code == 0, result.output
    card = json.loads(model.with_suffix(".card.json").read_text())
    assert card["measured_md"] == "| mAP50 | 0.5 |\n" and card["measured_title"] == "stage 7"
    md = model.with_suffix(".card.md").read_text()
    assert md.index("## Limitations") < md.index("## Measured (stage 7)") < md.index("| mAP50 | 0.5 |")


def test_a_card_that_does_not_exist_is_a_clear_error(tmp_path: Path) -> None:
    from shipdet.errors import ConfigError
    from shipdet.train.card import set_measured

    measured = tmp_path / "measured.md"
    measured.write_text("x")
    with pytest.raises(ConfigError, match="does not exist"):
        set_measured(tmp_path / "none.onnx", measured, "t")


def test_notes_changed_after_export_replace_the_cards(tmp_path: Path) -> None:
    from shipdet.errors import ConfigError
    from shipdet.train.card import set_measured

    model = _card(tmp_path)
    measured, notes = tmp_path / "measured.md", tmp_path / "limitations.md"
    measured.write_text("| mAP50 | 0.5 |\n")
    notes.write_text("## Limitations\n- thresholds for other views recorded\n")
    set_measured(model, measured, "stage 7", notes)
    md = model.with_suffix(".card.md").read_text()
    assert "thresholds for other views recorded" in md and "few epochs" not in md
    with pytest.raises(ConfigError, match=r"missing\.md does not exist"):
        set_measured(model, measured, "stage 7", tmp_path / "missing.md")
