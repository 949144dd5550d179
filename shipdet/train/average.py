"""Uniform weight averaging of checkpoints of one lineage (a "model soup", Wortsman et al. 2022).

Stages fine-tuned one from another stay in one basin of the loss, so the mean of their weights is a model too,
and often a better one than each (the same reason ultralytics keeps an EMA of the weights within a run), at no
cost in inference. Batch-norm running statistics are averaged like the weights: an approximation that the
measured figures of the exported model decide on, as for any stage.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shipdet.errors import ConfigError, ModelLoadError
from shipdet.train.records import git_commit, read_run_record


def load_network(path: Path) -> tuple[dict[str, Any], Any]:
    """The checkpoint and the network in it (the EMA where the checkpoint still holds one, as ultralytics
    validates and exports the EMA)."""
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        raise ModelLoadError(f"cannot read checkpoint {path}: {exc}") from exc
    network = None
    if isinstance(checkpoint, dict):
        network = checkpoint["ema"] if checkpoint.get("ema") is not None else checkpoint.get("model")
    if network is None or not hasattr(network, "state_dict"):
        raise ModelLoadError(f"{path} holds no ultralytics model", "give <run>/weights/best.pt or last.pt files")
    return checkpoint, network


def _mean_state(states: Sequence[dict[str, Any]], names: Sequence[Path]) -> dict[str, Any]:
    first = states[0]
    for state, name in zip(states[1:], names[1:], strict=True):
        if state.keys() != first.keys() or any(state[k].shape != first[k].shape for k in first):
            raise ModelLoadError(f"{name} is not the architecture of {names[0]}",
                                 "average checkpoints of one lineage (stages trained one from another)")
    return {k: (sum(s[k].float() for s in states) / len(states)) if v.is_floating_point() else states[-1][k]
            for k, v in first.items()}


def average_checkpoints(weights: Sequence[Path], out: Path, command: str = "shipdet average"
                        ) -> dict[str, Any]:
    """Write the mean of `weights` to `out` as an ultralytics checkpoint that `shipdet export` and `shipdet
    train --model` take, with a run record beside it: the last input's record (its configuration and lineage,
    which the card lists) and the list of what was averaged."""
    import copy

    import torch

    if len(weights) < 2:
        raise ConfigError("averaging needs at least two checkpoints", "e.g. stage10/weights/best.pt "
                                                                     "stage11/weights/best.pt")
    missing = [str(w) for w in weights if not w.is_file()]
    if missing:
        raise ConfigError(f"no such checkpoint: {', '.join(missing)}")
    if out.resolve() in {w.resolve() for w in weights}:
        raise ConfigError(f"--out {out} is one of the inputs", "write the average to a new file")
    existing = out.parent / "shipdet_run.json"
    if existing.is_file() and "averaged" not in json.loads(existing.read_text()):
        raise ConfigError(f"{out.parent} holds a training run's record", "write the average to a folder of its own")
    loaded = [load_network(w) for w in weights]
    mean = _mean_state([network.float().state_dict() for _, network in loaded], weights)
    checkpoint, network = loaded[-1]
    model = copy.deepcopy(network).float()
    model.load_state_dict(mean)
    checkpoint = {**checkpoint, "model": model.half(), "ema": None, "optimizer": None, "updates": None,
                  "scaler": None, "epoch": -1}  # epoch -1: a finished model, not a run to resume
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, out)
    records = [read_run_record(w) for w in weights]
    record = {**records[-1], "command": command, "git_commit": git_commit(),
              "averaged": [{"weights": str(w), "command": r.get("command", "unknown"),
                            "git_commit": r.get("git_commit", "unknown")}
                           for w, r in zip(weights, records, strict=True)]}
    sources = sorted({str(s) for r in records for s in r.get("sources", [])})
    if sources:
        record["sources"] = sources
    if records[-1]:
        record["parent"] = records[-1]
    existing.write_text(json.dumps(record, indent=2, default=str))
    return record
