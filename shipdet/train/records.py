"""What a training run records so its model can be trusted later: data hash, code commit, configuration."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml


def _image_lists(data_yaml: Path) -> list[Path]:
    data = yaml.safe_load(data_yaml.read_text())
    root = Path(data.get("path") or data_yaml.parent)
    images: list[Path] = []
    for key in ("train", "val"):
        entries = data[key] if isinstance(data[key], list) else [data[key]]
        for entry in entries:
            p = Path(entry) if Path(entry).is_absolute() else root / entry
            if p.suffix == ".txt":
                # Relative entries are relative to the list's folder, as ultralytics reads them.
                images += [Path(x) if Path(x).is_absolute() else p.parent / x for x in p.read_text().split()]
            else:
                images += sorted(q for q in p.rglob("*")
                                 if q.suffix.lower() in (".jpg", ".jpeg", ".png", ".tif", ".webp"))
    return images


def dataset_hash(data_yaml: Path) -> str:
    """sha256 over every train/val image's name, bytes and label text: changes when any of them changes."""
    digest = hashlib.sha256()
    for image in sorted(_image_lists(data_yaml)):
        digest.update(image.name.encode())
        digest.update(hashlib.sha256(image.read_bytes()).digest())
        label = Path(str(image).replace("/images/", "/labels/")).with_suffix(".txt")
        digest.update(label.read_bytes() if label.is_file() else b"-")
    return digest.hexdigest()


def dataset_sources(data_yaml: Path) -> list[str]:
    """The sources a merged set's split holds (its `split.csv` beside the data YAML); none for other sets."""
    from shipdet.datasets.merge import read_split

    if not (data_yaml.parent / "split.csv").is_file():
        return []
    return sorted({source for source, *_ in read_split(data_yaml.parent)})


def git_commit(start: Path | None = None) -> str:
    """The code's commit, with `+dirty` when the working tree has changes; `unknown` outside git."""
    cwd = start or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def write_run_record(save_dir: Path, config: dict[str, Any], data_yaml: Path) -> dict[str, Any]:
    import torch
    import ultralytics

    record = {
        "config": config,
        "dataset": str(data_yaml),
        "dataset_sha256": dataset_hash(data_yaml),
        "sources": dataset_sources(data_yaml),  # the card's licences: the lists may be remade after training
        "git_commit": git_commit(),
        "command": " ".join(sys.argv),
        "versions": {"ultralytics": ultralytics.__version__, "torch": torch.__version__},
    }
    save_dir.mkdir(parents=True, exist_ok=True)
    (save_dir / "shipdet_run.json").write_text(json.dumps(record, indent=2, default=str))
    return record


def trim_logs_to_checkpoint(run_dir: Path, completed_epochs: int) -> None:
    """Drop log rows of epochs the checkpoint does not contain.

    A run killed after ultralytics wrote an epoch's metrics but before it saved that epoch's checkpoint would
    otherwise, on resume, record the epoch twice (once from the lost attempt).
    """
    for name in ("results.csv", "augment_log.csv"):
        path = run_dir / name
        if not path.is_file():
            continue
        lines = path.read_text().splitlines()
        kept = [lines[0]] + [ln for ln in lines[1:] if ln and int(float(ln.split(",")[0])) <= completed_epochs]
        path.write_text("\n".join(kept) + "\n")


def read_run_record(weights: Path) -> dict[str, Any]:
    """The record of the run a checkpoint came from (`<run>/weights/best.pt` -> `<run>/shipdet_run.json`).

    A run that started from another run's checkpoint carries that run's record as `parent`, and so on: the
    model card can then say every stage the weights went through.
    """
    for folder in (weights.parent, weights.parent.parent):
        path = folder / "shipdet_run.json"
        if path.is_file():
            record = dict(json.loads(path.read_text()))
            start = str(record.get("config", {}).get("model") or "")
            if start.endswith(".pt") and "parent" not in record and Path(start).resolve() != weights.resolve():
                parent = read_run_record(Path(start))
                if parent:
                    record["parent"] = parent
            return record
    return {}
