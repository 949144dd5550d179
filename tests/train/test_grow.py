"""`shipdet grow`: a trained yolo11n moved into yolo11n with a stride-4 level scores as before on its own levels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.train.test_average import _stage

pytest.importorskip("ultralytics")
pytestmark = pytest.mark.train

P2_ARCH = str(Path(__file__).resolve().parents[2] / "train" / "yolo11n-p2.yaml")


def test_grown_model_keeps_every_trained_weight_and_adds_a_stride_4_level(tmp_path, monkeypatch):
    import torch
    from ultralytics import YOLO

    from shipdet.train.card import card_markdown
    from shipdet.train.grow import grow_checkpoint

    monkeypatch.chdir(tmp_path)
    trained = _stage(tmp_path, "trained", seed=3)
    out = tmp_path / "grown" / "start.pt"
    record = grow_checkpoint(trained, P2_ARCH, out, "shipdet grow trained.pt --arch p2 --out start.pt")
    assert record["grown_from"]["max_difference_on_old_levels"] < 1e-6
    assert record["parent"]["command"] == "shipdet train trained"

    old = torch.load(trained, map_location="cpu", weights_only=False)["model"].float().eval()
    new = YOLO(str(out)).model.float().eval()  # what `shipdet train --model` loads
    image = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        before, after = old(image)[0], new(image)[0]
    levels = 64 // 8 * 64 // 8 + 64 // 16 * 64 // 16 + 64 // 32 * 64 // 32
    assert before.shape[-1] == levels
    assert after.shape[-1] == levels + (64 // 4) ** 2  # one more level, at stride 4, after the trained ones
    torch.testing.assert_close(after[..., :levels], before, rtol=0, atol=1e-6)  # float noise only
    assert float(after[:, 4, levels:].max()) < 0.01  # the new level starts near silent
    head_old, head_new = len(old.model) - 1, len(new.model) - 1
    assert torch.equal(new.state_dict()[f"model.{head_new}.cv2.0.0.conv.weight"],
                       old.state_dict()[f"model.{head_old}.cv2.0.0.conv.weight"])
    assert json.loads((out.parent / "shipdet_run.json").read_text())["architecture"] == P2_ARCH

    again = tmp_path / "again" / "start.pt"
    grow_checkpoint(trained, P2_ARCH, again)
    first, second = (torch.load(p, map_location="cpu", weights_only=False)["model"].state_dict() for p in (out, again))
    assert all(torch.equal(first[k], second[k]) for k in first)  # the same command gives the same weights

    card = {"name": "m", "version": "1", "file": "m.onnx", "sha256": "0", "task": "detect", "imgsz": 64,
            "names": {0: "ship"}, "parity": {}, "training": {"command": "shipdet train", "parent": record}}
    assert "earlier run: `shipdet grow trained.pt --arch p2" in card_markdown(card)


def test_grow_refuses_an_architecture_that_drops_trained_layers(tmp_path):
    from shipdet.errors import ConfigError, ModelLoadError
    from shipdet.train.grow import grow_checkpoint

    trained = _stage(tmp_path, "trained", seed=3)
    with pytest.raises(ModelLoadError, match="does not contain the trained model"):
        grow_checkpoint(trained, "yolo11s.yaml", tmp_path / "s" / "start.pt")  # wider layers: nothing fits
    with pytest.raises(ConfigError, match="no such checkpoint"):
        grow_checkpoint(tmp_path / "missing.pt", P2_ARCH, tmp_path / "x" / "start.pt")
    with pytest.raises(ConfigError, match="training run's record"):
        grow_checkpoint(trained, P2_ARCH, trained.parent.parent / "grown.pt")  # beside the run's record
