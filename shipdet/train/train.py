"""`shipdet train`: ultralytics YOLO (axis-aligned or oriented) with the satellite augmentation, offline.

Read top to bottom: settings -> offline switches -> model from YAML (or the user's .pt) -> trainer with the
augmentation -> run record (config, dataset hash, commit) -> ultralytics' own metrics per epoch and weights.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shipdet.errors import ConfigError, DatasetNotFoundError
from shipdet.train.augment import AugmentConfig
from shipdet.train.offline import ensure_offline


class TrainSettings(BaseSettings):
    """Every training option; each can also come from the environment as SHIPDET_TRAIN_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="SHIPDET_TRAIN_", extra="forbid")

    data: Path = Field(description="Data YAML written by `shipdet datasets` (data.yaml or data-obb.yaml).")
    task: Literal["detect", "obb"] = "obb"
    model: str = Field("", description="Model YAML (built from scratch) or a .pt of yours; default yolo11n.")
    epochs: int = 100
    imgsz: int = 640
    batch: int = 16
    device: str = Field("", description="'cpu', '0', or '0,1,2,3' for multi-GPU DDP; empty: GPU 0 if any.")
    workers: int = 2
    threads: int = Field(0, description="torch CPU threads (0: all cores).")
    project: Path = Path("runs/train")
    name: str = "shipdet"
    patience: int = Field(50, description="Early stopping: epochs without improvement.")
    close_mosaic: int = 10
    seed: int = 0
    amp: bool = Field(True, description="Mixed precision on CUDA (ignored on CPU).")
    cache: bool = False
    fraction: float = 1.0
    hours: float | None = Field(None, gt=0, description="Stop after this long (ultralytics' `time`; the learning "
                                                          "rate schedule is fitted to it), whatever `epochs` says.")
    augment: bool = True
    resume: Path | None = Field(None, description="Resume from this last.pt.")
    extra: dict[str, Any] = Field(default_factory=dict, description="Further ultralytics train arguments.")

    def model_yaml(self) -> str:
        if self.model:
            return self.model
        return "yolo11n-obb.yaml" if self.task == "obb" else "yolo11n.yaml"


def _cuda_requested(device: str) -> bool:
    import torch

    return device != "cpu" and torch.cuda.is_available()


def train(settings: TrainSettings) -> Path:
    """Train; returns the run folder (weights/best.pt, results.csv, shipdet_run.json, augment_log.csv)."""
    ensure_offline()
    if not settings.resume and not settings.data.is_file():
        raise DatasetNotFoundError(f"data YAML not found at {settings.data}",
                                   "convert a set first: `shipdet datasets ... --out DIR`, then DIR/data.yaml")
    if settings.resume and not settings.resume.is_file():
        raise ConfigError(f"checkpoint to resume not found at {settings.resume}", "pass <run>/weights/last.pt")
    import torch
    from ultralytics import YOLO
    from ultralytics.engine import trainer as trainer_module

    from shipdet.train.records import read_run_record, trim_logs_to_checkpoint, write_run_record
    from shipdet.train.trainer import ShipDetectionTrainer, ShipOBBTrainer

    threads = settings.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))

    def keep_threads(trainer: Any) -> None:
        # ultralytics' select_device (in the trainer's constructor) resets torch to cpu_count - 1 threads: one on
        # a 2-core machine, where a batch's forward and backward then take twice as long. Set again once the
        # trainer exists, before the first batch.
        torch.set_num_threads(threads)
    AugmentConfig(enabled=settings.augment).to_env()
    cuda = _cuda_requested(settings.device)
    if cuda and settings.amp:
        # The AMP check downloads reference weights; offline we trust AMP on CUDA instead of failing.
        trainer_module.check_amp = lambda model: True

    if settings.resume:
        previous = read_run_record(settings.resume).get("config", {})
        if previous.get("augment") is False:
            AugmentConfig(enabled=False).to_env()
        task = previous.get("task", settings.task)
        from ultralytics.nn.tasks import torch_safe_load

        checkpoint, _ = torch_safe_load(str(settings.resume))  # ultralytics' own loader, as its resume uses
        epoch = int(checkpoint.get("epoch", -1))
        if epoch < 0:
            # A finished run's checkpoints are stripped to epoch -1: trimming its logs to that would erase them.
            raise ConfigError(f"{settings.resume} is from a finished run (all its epochs done): nothing to resume",
                              "train on from it as a new stage: shipdet train DATA --model <run>/weights/best.pt")
        trim_logs_to_checkpoint(settings.resume.parent.parent, epoch + 1)
        trainer_cls = ShipOBBTrainer if task == "obb" else ShipDetectionTrainer
        model = YOLO(str(settings.resume), task=task)
        model.add_callback("on_pretrain_routine_start", keep_threads)
        model.train(resume=True, trainer=trainer_cls)
        return _save_dir(model)

    trainer_cls = ShipOBBTrainer if settings.task == "obb" else ShipDetectionTrainer
    model = YOLO(settings.model_yaml(), task=settings.task)
    config = settings.model_dump(mode="json") | {"augment_config": asdict(AugmentConfig(enabled=settings.augment))}

    def record(trainer: Any) -> None:
        if getattr(trainer.args, "rank", -1) in (-1, 0):
            write_run_record(Path(trainer.save_dir), config, settings.data)

    model.add_callback("on_pretrain_routine_start", record)
    model.add_callback("on_pretrain_routine_start", keep_threads)
    arguments: dict[str, Any] = dict(
        trainer=trainer_cls, data=str(settings.data), epochs=settings.epochs, imgsz=settings.imgsz,
        batch=settings.batch, device=settings.device or None, workers=settings.workers,
        project=str(settings.project.resolve()), name=settings.name, exist_ok=False,
        patience=settings.patience, close_mosaic=settings.close_mosaic, seed=settings.seed,
        amp=bool(cuda and settings.amp), cache=settings.cache, fraction=settings.fraction,
        pretrained=settings.model.endswith(".pt"), plots=True,
    )
    if settings.hours:
        arguments["time"] = settings.hours
    model.train(**(arguments | settings.extra))  # e.g. SHIPDET_TRAIN_EXTRA='{"plots": false}' where polars is absent
    return _save_dir(model)


def _save_dir(model: Any) -> Path:
    if model.trainer is None:
        raise RuntimeError("ultralytics finished without a trainer")
    return Path(model.trainer.save_dir)
