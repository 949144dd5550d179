"""Ultralytics trainers with the satellite augmentation and shipdet's run records.

Importable by module path, so ultralytics' multi-GPU (DDP) launcher can rebuild them in each worker.
"""

from __future__ import annotations

import csv
from copy import copy
from pathlib import Path
from typing import Any

import torch
from ultralytics.data.dataset import YOLODataset
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.models.yolo.obb import OBBTrainer

from shipdet.train.augment import AugmentConfig, SatelliteAugment


class SatelliteYOLODataset(YOLODataset):
    """A YOLODataset whose training transforms always include `SatelliteAugment`, also after close_mosaic."""

    satellite: SatelliteAugment | None = None

    def build_transforms(self, hyp: Any = None) -> Any:
        transforms = super().build_transforms(hyp)
        cfg = AugmentConfig.from_env()
        if self.augment and cfg.enabled:
            if self.satellite is None:
                self.satellite = SatelliteAugment(cfg)
            transforms.insert(-1, self.satellite)  # before Format, which turns labels into tensors
        return transforms


def _with_satellite(dataset: YOLODataset, mode: str, hyp: Any) -> YOLODataset:
    """Turn the dataset ultralytics built into a `SatelliteYOLODataset` (same state, transforms rebuilt)."""
    if mode == "train" and isinstance(dataset, YOLODataset):
        dataset.__class__ = SatelliteYOLODataset
        dataset.transforms = dataset.build_transforms(hyp=copy(hyp))
    return dataset


def _log_augment_calls(trainer: DetectionTrainer) -> None:
    """After each epoch, append the augmentation's cumulative call count, and the torch threads the epoch ran on,
    to the run's augment_log.csv."""
    dataset = getattr(trainer.train_loader, "dataset", None)
    satellite = getattr(dataset, "satellite", None)
    if satellite is None or getattr(trainer.args, "rank", -1) not in (-1, 0):
        return
    path = Path(trainer.save_dir) / "augment_log.csv"
    columns = ["epoch", "augment_calls_total", "mosaic_closed", "torch_threads"]
    if path.exists():  # a run begun before the threads were logged keeps its three columns
        with open(path, newline="") as fh:
            columns = next(csv.reader(fh), columns)
    closed = trainer.epoch >= trainer.epochs - trainer.args.close_mosaic
    row = {"epoch": trainer.epoch + 1, "augment_calls_total": satellite.calls.value, "mosaic_closed": int(closed),
           "torch_threads": torch.get_num_threads()}
    with open(path, "a", newline="") as fh:
        writer = csv.writer(fh)
        if fh.tell() == 0:
            writer.writerow(columns)
        writer.writerow([row[c] for c in columns])


class ShipDetectionTrainer(DetectionTrainer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_callback("on_train_epoch_end", _log_augment_calls)

    def build_dataset(self, img_path: str, mode: str = "train", batch: int | None = None) -> YOLODataset:
        return _with_satellite(super().build_dataset(img_path, mode, batch), mode, self.args)


class ShipOBBTrainer(OBBTrainer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_callback("on_train_epoch_end", _log_augment_calls)

    def build_dataset(self, img_path: str, mode: str = "train", batch: int | None = None) -> YOLODataset:
        return _with_satellite(super().build_dataset(img_path, mode, batch), mode, self.args)
