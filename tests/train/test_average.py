"""`shipdet average`: the mean of checkpoints of one lineage, loadable, with the lineage the card lists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("ultralytics")
pytestmark = pytest.mark.train


def _stage(root: Path, name: str, seed: int, nc: int = 1, parent: str | None = None) -> Path:
    """A run folder as training leaves it: weights/best.pt (a half-precision model, no EMA) and its record."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(seed)
    model = DetectionModel("yolo11n.yaml", nc=nc, verbose=False)
    for module in model.modules():  # batch norms start at 1/0: make them differ between the stages
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 2.0)
    weights = root / name / "weights" / "best.pt"
    weights.parent.mkdir(parents=True)
    torch.save({"epoch": -1, "model": model.half(), "ema": None, "train_args": {"imgsz": 64, "task": "detect"}},
               weights)
    record = {"config": {"model": parent or "yolo11n.yaml", "epochs": 3, "imgsz": 64},
              "command": f"shipdet train {name}", "git_commit": "abc", "sources": [name]}
    (root / name / "shipdet_run.json").write_text(json.dumps(record))
    return weights


def _floats(path: Path) -> dict:
    import torch

    model = torch.load(path, map_location="cpu", weights_only=False)["model"].float()
    return {k: v for k, v in model.state_dict().items() if v.is_floating_point()}


def test_average_is_the_mean_of_the_weights_and_keeps_the_lineage(tmp_path, monkeypatch):
    import torch
    from ultralytics import YOLO

    from shipdet.train.average import average_checkpoints
    from shipdet.train.card import card_markdown

    monkeypatch.chdir(tmp_path)
    first = _stage(tmp_path, "first", seed=1)
    second = _stage(tmp_path, "second", seed=2, parent=str(first))
    out = tmp_path / "soup" / "soup.pt"
    record = average_checkpoints([first, second], out, "shipdet average first second --out soup.pt")
    a, b, mean = _floats(first), _floats(second), _floats(out)
    assert mean.keys() == a.keys()
    differing = 0
    for k in a:
        torch.testing.assert_close(mean[k], ((a[k] + b[k]) / 2).half().float(), rtol=0, atol=0)
        differing += int(not torch.equal(a[k], b[k]))
    assert differing > len(a) // 2  # the stages really differ, so the mean is not one of them
    assert [x["weights"] for x in record["averaged"]] == [str(first), str(second)]
    assert record["parent"]["command"] == "shipdet train second"  # the last stage's lineage goes on
    assert record["parent"]["parent"]["command"] == "shipdet train first"
    assert record["sources"] == ["first", "second"]
    assert json.loads((out.parent / "shipdet_run.json").read_text())["command"].startswith("shipdet average")
    card = {"name": "m", "version": "1", "file": "m.onnx", "sha256": "0", "task": "detect", "imgsz": 64,
            "names": {0: "ship"}, "parity": {}, "training": record}
    text = card_markdown(card)
    assert "uniform average of 2 checkpoints" in text and "earlier run: `shipdet train second`" in text
    model = YOLO(str(out))  # what `shipdet export` and `shipdet train --model` load
    with torch.no_grad():
        outputs = model.model.float().eval()(torch.zeros(1, 3, 64, 64))
    assert torch.isfinite(outputs[0]).all()


def test_average_refuses_what_cannot_be_averaged(tmp_path):
    from shipdet.errors import ConfigError, ModelLoadError
    from shipdet.train.average import average_checkpoints

    one = _stage(tmp_path, "one", seed=1)
    other_head = _stage(tmp_path, "two", seed=2, nc=3)
    with pytest.raises(ConfigError, match="at least two"):
        average_checkpoints([one], tmp_path / "o.pt")
    with pytest.raises(ConfigError, match="no such checkpoint"):
        average_checkpoints([one, tmp_path / "gone.pt"], tmp_path / "o.pt")
    with pytest.raises(ConfigError, match="one of the inputs"):
        average_checkpoints([one, one], one)
    with pytest.raises(ConfigError, match="training run's record"):
        average_checkpoints([one, one], tmp_path / "one" / "soup.pt")
    with pytest.raises(ModelLoadError, match="not the architecture"):
        average_checkpoints([one, other_head], tmp_path / "o.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="cannot read checkpoint"):
        average_checkpoints([one, junk], tmp_path / "o.pt")
    assert not (tmp_path / "o.pt").exists()  # nothing written on refusal
