"""`shipdet train`, `shipdet evaluate`, `shipdet export`."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        data: Path = typer.Argument(None, help="Data YAML from `shipdet datasets` (data.yaml / data-obb.yaml)."),
        task: str = typer.Option("obb", help="obb (oriented boxes: length and heading) or detect."),
        model: str = typer.Option("", help="Model YAML (from scratch, e.g. yolo11s-obb.yaml) or your .pt."),
        epochs: int = typer.Option(100), imgsz: int = typer.Option(640), batch: int = typer.Option(16),
        device: str = typer.Option("", help="cpu, 0, or 0,1,2,3 (multi-GPU DDP)."),
        workers: int = typer.Option(2), threads: int = typer.Option(0, help="CPU threads (0: all)."),
        project: Path = typer.Option(Path("runs/train")), name: str = typer.Option("shipdet"),
        patience: int = typer.Option(50, help="Early stopping patience (epochs)."),
        close_mosaic: int = typer.Option(10), seed: int = typer.Option(0),
        amp: bool = typer.Option(True, help="Mixed precision on CUDA."),
        augment: bool = typer.Option(True, help="The satellite augmentation pipeline."),
        fraction: float = typer.Option(1.0, help="Use this share of the training images."),
        resume: Path = typer.Option(None, help="Resume an interrupted run from its weights/last.pt."),
    ) -> None:
        """Train a YOLO ship detector (oriented or axis-aligned) from a data YAML, offline, resumable."""
        from shipdet.train.train import TrainSettings
        from shipdet.train.train import train as run_training

        from shipdet.errors import ConfigError

        if data is None and resume is None:
            raise ConfigError("give a data YAML, or --resume <run>/weights/last.pt")
        settings = TrainSettings(
            data=data or Path("-"), task=task, model=model, epochs=epochs, imgsz=imgsz,
            batch=batch, device=device, workers=workers, threads=threads, project=project, name=name,
            patience=patience, close_mosaic=close_mosaic, seed=seed, amp=amp, augment=augment,
            fraction=fraction, resume=resume)
        run = run_training(settings)
        typer.echo(f"run folder: {run}")

    @app.command()
    def evaluate(
        model: Path = typer.Argument(..., help="An exported .onnx (or a .pt with the train extra)."),
        data: Path = typer.Argument(..., help="Data YAML; its val split is evaluated."),
        out: Path = typer.Option(Path("eval"), help="Folder for metrics.json, report.md, pr_curve.png."),
        conf: float = typer.Option(0.25, help="Confidence for precision/recall/F1 and counts."),
        iou: float = typer.Option(0.5, help="IoU for a match in P/R/F1."),
        split: str = typer.Option("val", help="val or train."),
        gsd: float = typer.Option(None, help="Metres per pixel, for recall by size in metres."),
        draw: int = typer.Option(0, help="Draw this many validation images with truth and detections."),
        imgsz: int = typer.Option(640, help="Input size for a .pt model (an ONNX model carries its own)."),
    ) -> None:
        """Evaluate on a YOLO-format set: mAP50/50-95, Airbus F2, P/R/F1, recall by size, count error."""
        from shipdet.train.evaluate import evaluate_model

        report = evaluate_model(model, data, out, conf=conf, iou=iou, split=split, gsd_m=gsd, draw=draw, imgsz=imgsz)
        typer.echo(report)

    @app.command()
    def export(
        weights: Path = typer.Argument(..., help="Trained weights (<run>/weights/best.pt)."),
        out: Path = typer.Option(None, help="ONNX file to write (default: beside the weights)."),
        imgsz: int = typer.Option(640), dynamic: bool = typer.Option(True, help="Dynamic batch axis."),
        batch: int = typer.Option(1, help="Fixed batch size when --no-dynamic."),
        half: bool = typer.Option(False, help="FP16 weights (for GPU serving)."),
        int8: bool = typer.Option(False, help="Also write a static INT8 model calibrated on training tiles."),
        data: Path = typer.Option(None, help="Data YAML for calibration, parity images and the INT8 check."),
        name: str = typer.Option("shipdet", help="Model name in the card."),
        notes: Path = typer.Option(None, help="Markdown appended to the model card (e.g. its limitations)."),
    ) -> None:
        """Export to ONNX with metadata, a model card (JSON + Markdown) and a parity check against PyTorch."""
        from shipdet.train.export import export_model

        card = export_model(weights, out, imgsz=imgsz, dynamic=dynamic, batch=batch, half=half, int8=int8,
                            data=data, name=name, notes=notes)
        typer.echo(f"exported {card['file']} (sha256 {card['sha256'][:12]}...)")
