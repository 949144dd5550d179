"""A checkpoint grown into a larger architecture that contains it, e.g. yolo11n with a fourth detection level
at stride 4 (train/yolo11n-p2.yaml) from a trained yolo11n.

Every tensor of the trained model moves to the layer of the same name (the detection head, the last layer in
both, keeps its branches in the same order); the layers the larger architecture adds start from ultralytics'
initialisation, whose class bias gives them near-zero scores. The grown model therefore scores as the trained
one did until training teaches the new layers, which is checked before anything is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shipdet.errors import ConfigError, ModelLoadError
from shipdet.train.average import load_network
from shipdet.train.records import git_commit, read_run_record

CHECK_IMGSZ = 256


def _renamed(state: dict[str, Any], old_head: int, new_head: int) -> dict[str, Any]:
    prefix = f"model.{old_head}."
    return {(f"model.{new_head}." + k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}


def grow_network(network: Any, arch: str, seed: int = 0) -> tuple[Any, list[str]]:
    """The larger model with `network`'s weights, and the names of the tensors that start afresh."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    nc, old_head = int(network.model[-1].nc), len(network.model) - 1  # before the check narrows the type
    if type(network) is not DetectionModel:  # an OBB head is a subclass with other branches
        raise ModelLoadError(f"growing needs an axis-aligned detection model, not {type(network).__name__}")
    torch.manual_seed(seed)  # the new layers' initialisation, so that the same command gives the same file
    try:
        grown: Any = DetectionModel(arch, nc=nc, verbose=False)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        raise ConfigError(f"cannot build architecture {arch}: {exc}", "give a model YAML, e.g. "
                                                                        "train/yolo11n-p2.yaml") from exc
    source = _renamed(network.float().state_dict(), old_head, len(grown.model) - 1)
    target = grown.state_dict()
    misfits = [k for k, v in source.items() if k not in target or target[k].shape != v.shape]
    if misfits:
        raise ModelLoadError(f"{arch} does not contain the trained model: no place for {', '.join(misfits[:4])}",
                             "the larger architecture must keep every layer of the trained one, in order")
    target.update(source)
    grown.load_state_dict(target)
    grown.names = network.names
    grown.args = getattr(network, "args", {})
    return grown, sorted(k for k in target if k not in source)


def max_difference_on_old_levels(network: Any, grown: Any, imgsz: int = CHECK_IMGSZ) -> float:
    """Largest absolute difference between the trained model's output and the grown model's on the levels they
    share (eval mode, a random image): zero when the weights moved as they should."""
    import torch

    image = torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = network.float().eval()(image)[0]
        after = grown.float().eval()(image)[0]
    return float((after[..., :before.shape[-1]] - before).abs().max())


def grow_checkpoint(weights: Path, arch: str, out: Path, command: str = "shipdet grow") -> dict[str, Any]:
    """Write `weights` grown into `arch` to `out` (a checkpoint `shipdet train --model` starts from), with a run
    record beside it that keeps the trained model's lineage for the card."""
    import torch

    if not weights.is_file():
        raise ConfigError(f"no such checkpoint: {weights}")
    if out.resolve() == weights.resolve():
        raise ConfigError(f"--out {out} is the input", "write the grown model to a new file")
    existing = out.parent / "shipdet_run.json"
    if existing.is_file() and "grown_from" not in json.loads(existing.read_text()):
        raise ConfigError(f"{out.parent} holds a training run's record", "write the grown model to a folder of "
                                                                         "its own")
    checkpoint, network = load_network(weights)
    grown, fresh = grow_network(network, arch)
    difference = max_difference_on_old_levels(network, grown)
    if difference > 1e-4:
        raise ModelLoadError(f"{arch} changes what the trained levels output (by {difference:.2e})",
                             "list the new detection levels after the trained ones in the head")
    train_args = {**checkpoint.get("train_args", {}), "model": arch}
    checkpoint = {**checkpoint, "model": grown.half(), "ema": None, "optimizer": None, "updates": None,
                  "scaler": None, "epoch": -1, "train_args": train_args}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, out)
    parent = read_run_record(weights)
    record = {**parent, "command": command, "git_commit": git_commit(), "architecture": arch,
              "grown_from": {"weights": str(weights), "new_tensors": len(fresh),
                             "max_difference_on_old_levels": difference}}
    if parent:
        record["parent"] = parent
    existing.write_text(json.dumps(record, indent=2, default=str))
    return record
