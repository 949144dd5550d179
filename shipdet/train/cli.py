"""`shipdet train`, `average`, `grow`, `evaluate`, `evaluate-scenes`, `export`, `unfold`, `card`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

NMS_IOU_HELP = "NMS IoU (default: the model's own, what the service and `shipdet rescore` score with; else 0.45)."
CONF_AT_VIEWS_HELP = ("Thresholds measured for view counts other than --views, VIEWS=CONF,... (e.g. 1=0.30,2=0.28, "
                      "from `shipdet evaluate --views N`): a request asking for those views without a threshold "
                      "gets them (default: the one threshold whatever the views).")
CONF_UPSAMPLED_AT_VIEWS_HELP = ("The same for imagery the scale path upsamples, beside --conf-upsampled and "
                                "--views-upsampled (e.g. 1=0.33,4=0.31).")


def check_nms_iou_option(nms_iou: float | None) -> None:
    """An NMS IoU outside (0, 1) on a command line: one usage line, before any work."""
    from shipdet.errors import ConfigError

    if nms_iou is not None and not 0.0 < nms_iou < 1.0:
        raise ConfigError(f"--nms-iou {nms_iou} is not an IoU in (0, 1)", "e.g. --nms-iou 0.45")


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
        hours: float = typer.Option(None, help="Stop after this many hours (the schedule fits the time)."),
    ) -> None:
        """Train a YOLO ship detector (oriented or axis-aligned) from a data YAML, offline, resumable."""
        from shipdet.errors import ConfigError
        from shipdet.train.train import TrainSettings
        from shipdet.train.train import train as run_training

        if data is None and resume is None:
            raise ConfigError("give a data YAML, or --resume <run>/weights/last.pt")
        settings = TrainSettings(
            data=data or Path("-"), task=task, model=model, epochs=epochs, imgsz=imgsz,
            batch=batch, device=device, workers=workers, threads=threads, project=project, name=name,
            patience=patience, close_mosaic=close_mosaic, seed=seed, amp=amp, augment=augment,
            fraction=fraction, resume=resume, hours=hours)
        run = run_training(settings)
        typer.echo(f"run folder: {run}")

    @app.command("evaluate-scenes")
    def evaluate_scenes_command(
        model: Path = typer.Argument(..., help="An exported .onnx."),
        annotations: Path = typer.Option(..., help="COCO file on the scenes' pixel grid (coco_annotations.json)."),
        scenes: list[Path] = typer.Argument(..., help="Scene folders or files (e.g. the validation ports)."),
        factors: str = typer.Option("1,2,3,4", help="Resampling factors to compare; `own`: each scene's own, as the "
                                                    "scale path chooses it from the scene's GSD (`shipdet rescore`)."),
        conf: float = typer.Option(None, help="Confidence (default: the model's operating threshold, else 0.25)."),
        iou: float = typer.Option(0.3, help="IoU for a match."),
        out: Path = typer.Option(None, help="Write scenes.json and scenes.md here."),
        views: int = typer.Option(None, help="Views each window is scored in and fused: 1, 2, 4, 8 (default: the "
                                             "model's own)."),
        nms_iou: float = typer.Option(None, help=NMS_IOU_HELP),
    ) -> None:
        """Score whole scenes as `shipdet rescore` does, at several resampling factors, against their truth."""
        from shipdet.errors import ConfigError
        from shipdet.inference.views import check_view_option
        from shipdet.train.scene_eval import evaluate_scenes, scenes_markdown

        check_view_option(views)
        check_nms_iou_option(nms_iou)

        try:
            chosen = [None if f.strip() == "own" else float(f) for f in factors.split(",")]
        except ValueError:
            raise ConfigError(f"--factors {factors!r} is not a list of numbers (or `own`)",
                              "e.g. --factors 1,2,3,4,own") from None
        rows = evaluate_scenes(model, annotations, scenes, chosen, conf, iou, views=views, nms_iou=nms_iou)
        report = scenes_markdown(rows, model, iou)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / "scenes.json").write_text(json.dumps(rows, indent=2))
            (out / "scenes.md").write_text(report)
        typer.echo(report)

    @app.command()
    def unfold(
        model: Path = typer.Argument(..., help="An exported .onnx (e.g. weights/shipdet-default.onnx)."),
        data: Path = typer.Argument(..., help="Data YAML: a few training images measure the batch statistics."),
        out: Path = typer.Option(..., "--out", "-o", help="Checkpoint to write (.pt); a run record goes beside it."),
        arch: str = typer.Option("yolo11n.yaml", help="The architecture the model was trained with."),
    ) -> None:
        """Rebuild a trainable checkpoint from an exported ONNX model, to continue training a shipped model."""
        from shipdet.train.warmstart import unfold_model

        record = unfold_model(model, out, data, arch)
        typer.echo(f"wrote {out} (largest output difference from the ONNX model: "
                   f"{record['max_output_difference']:.2e}); train from it with --model {out}")

    @app.command()
    def average(
        weights: list[Path] = typer.Argument(..., help="Checkpoints of one lineage (stages trained one from "
                                                       "another); the last one's record and lineage are kept."),
        out: Path = typer.Option(..., "--out", "-o", help="Checkpoint to write (.pt); a run record goes beside it."),
    ) -> None:
        """Average the weights of several checkpoints uniformly (a model soup); export and measure it as a stage."""
        import shlex
        import sys

        from shipdet.train.average import average_checkpoints

        average_checkpoints(weights, out, shlex.join(["shipdet", *sys.argv[1:]]))
        typer.echo(f"wrote {out}, the mean of {len(weights)} checkpoints; measure it: shipdet export {out} ...")

    @app.command()
    def grow(
        weights: Path = typer.Argument(..., help="A trained checkpoint (e.g. <run>/weights/best.pt)."),
        arch: str = typer.Option(..., help="A larger architecture that keeps every layer of the trained one, "
                                           "e.g. train/yolo11n-p2.yaml (a detection level at stride 4)."),
        out: Path = typer.Option(..., "--out", "-o", help="Checkpoint to write (.pt); a run record goes beside it."),
    ) -> None:
        """Move a trained model's weights into a larger architecture; the new layers start afresh."""
        import shlex
        import sys

        from shipdet.train.grow import grow_checkpoint

        record = grow_checkpoint(weights, arch, out, shlex.join(["shipdet", *sys.argv[1:]]))
        typer.echo(f"wrote {out}: {record['grown_from']['new_tensors']} new tensors, the trained levels unchanged "
                   f"(largest difference {record['grown_from']['max_difference_on_old_levels']:.1e}); "
                   f"train from it with --model {out}")

    @app.command()
    def evaluate(
        model: Path = typer.Argument(..., help="An exported .onnx (or a .pt with the train extra)."),
        data: Path = typer.Argument(..., help="Data YAML; its val split is evaluated."),
        out: Path = typer.Option(Path("eval"), help="Folder for metrics.json, report.md, pr_curve.png."),
        conf: float = typer.Option(None, help="Confidence for precision/recall/F1, counts and false alarms "
                                              "(default: the model's operating threshold, else 0.25)."),
        iou: float = typer.Option(0.5, help="IoU for a match in P/R/F1."),
        split: str = typer.Option("val", help="val or train."),
        gsd: float = typer.Option(None, help="Metres per pixel, for recall by size in metres."),
        draw: int = typer.Option(0, help="Draw this many validation images with truth and detections."),
        imgsz: int = typer.Option(640, help="Input size for a .pt model (an ONNX model carries its own)."),
        views: int = typer.Option(None, help="Views each image is scored in and fused, for an .onnx model: 1, 2, 4, "
                                             "8 (default: the model's own)."),
        nms_iou: float = typer.Option(None, help=NMS_IOU_HELP),
        max_false_alarms: float = typer.Option(0.05, min=0.0, help="False-alarm budget per ship-free image: the "
                                               "report gives the lowest threshold (0.01 steps) within it."),
        conf_upsampled: float = typer.Option(None, help="Confidence for the images upsampled to the working scale "
                                                        "(default: the model's own if --conf is not given, else "
                                                        "--conf)."),
        views_upsampled: int = typer.Option(None, help="Views of the images upsampled to the working scale (default: "
                                                       "the model's own if --views is not given, else --views)."),
    ) -> None:
        """Evaluate on a YOLO-format set: mAP50/50-95, Airbus F2, P/R/F1, recall by size, count error."""
        from shipdet.inference.views import check_view_option
        from shipdet.train.evaluate import evaluate_model

        check_view_option(views)
        check_view_option(views_upsampled, "--views-upsampled")
        check_nms_iou_option(nms_iou)

        report = evaluate_model(model, data, out, conf=conf, iou=iou, split=split, gsd_m=gsd, draw=draw, imgsz=imgsz,
                                views=views, nms_iou=nms_iou, max_false_alarms=max_false_alarms,
                                conf_upsampled=conf_upsampled, views_upsampled=views_upsampled)
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
        version: str = typer.Option(None, help="Model version (default: today's date, YYYY.MM.DD)."),
        notes: Path = typer.Option(None, help="Markdown appended to the model card (e.g. its limitations)."),
        gsd_range: str = typer.Option(None, help="finest,coarsest metres per pixel the model declares: imagery "
                                                 "outside is resampled into it (default: the training GSDs)."),
        conf: float = typer.Option(None, help="The operating threshold the model is served at unless a request "
                                              "asks for another, chosen from `shipdet evaluate`'s operating points "
                                              "(default: none recorded, served at 0.25)."),
        views: int = typer.Option(1, help="The views (1, 2, 4, 8) each tile is scored in and fused by default, "
                                          "chosen with --conf from `shipdet evaluate --views` (N views cost N "
                                          "inferences)."),
        nms_iou: float = typer.Option(None, help="The NMS IoU it is served and measured at, chosen from `shipdet "
                                                 "evaluate --nms-iou` (default: none recorded, 0.45)."),
        conf_upsampled: float = typer.Option(None, help="The threshold for imagery the scale path upsamples "
                                                        "(coarser than the model's range, e.g. Sentinel-2), chosen "
                                                        "from `shipdet evaluate`'s figures for those images "
                                                        "(default: --conf for all imagery)."),
        views_upsampled: int = typer.Option(None, help="The views for imagery the scale path upsamples, chosen "
                                                       "with --conf-upsampled (default: --views for all imagery)."),
        conf_at_views: str = typer.Option(None, help=CONF_AT_VIEWS_HELP),
        conf_upsampled_at_views: str = typer.Option(None, help=CONF_UPSAMPLED_AT_VIEWS_HELP),
        upsampled_weights: Path = typer.Option(None, help="Weights of a second graph that scores the imagery the "
                                                          "scale path upsamples (e.g. Sentinel-2), exported beside "
                                                          "the model as <stem>.upsampled.onnx with its own parity "
                                                          "check (default: one graph for all imagery)."),
    ) -> None:
        """Export to ONNX with metadata, a model card (JSON + Markdown) and a parity check against PyTorch."""
        from shipdet.errors import ConfigError
        from shipdet.inference.operating_point import parse_conf_at_views
        from shipdet.scale import ScaleRange
        from shipdet.train.export import export_model

        scale_range = None
        if gsd_range:
            try:
                scale_range = ScaleRange(*(float(v) for v in gsd_range.split(",")))
            except (TypeError, ValueError):
                raise ConfigError(f"--gsd-range {gsd_range!r} is not two numbers", "e.g. --gsd-range 0.3,3.3") from None
        card = export_model(weights, out, imgsz=imgsz, dynamic=dynamic, batch=batch, half=half, int8=int8,
                            data=data, name=name, version=version, notes=notes,
                            gsd_range=scale_range, conf=conf, views=views, nms_iou=nms_iou,
                            conf_upsampled=conf_upsampled, views_upsampled=views_upsampled,
                            conf_at_views=parse_conf_at_views(conf_at_views),
                            conf_upsampled_at_views=parse_conf_at_views(conf_upsampled_at_views,
                                                                        "--conf-upsampled-at-views"),
                            upsampled_weights=upsampled_weights)
        typer.echo(f"exported {card['file']} (sha256 {card['sha256'][:12]}...)")

    @app.command("set-thresholds")
    def set_thresholds(
        model: Path = typer.Argument(..., help="An exported model, its .card.json beside it."),
        conf_at_views: str = typer.Option(None, help=CONF_AT_VIEWS_HELP),
        conf_upsampled_at_views: str = typer.Option(None, help=CONF_UPSAMPLED_AT_VIEWS_HELP),
        version: str = typer.Option(None, help="The model's new version (requests asking for other views without "
                                               "a threshold are answered differently), default: its own."),
    ) -> None:
        """Record thresholds measured for other view counts in an exported model, its INT8 twin and its card (the
        metadata only: the weights are untouched). An option left out removes what was recorded."""
        from shipdet.inference.operating_point import parse_conf_at_views
        from shipdet.train.thresholds import set_conf_at_views

        written = set_conf_at_views(model, parse_conf_at_views(conf_at_views),
                                    parse_conf_at_views(conf_upsampled_at_views, "--conf-upsampled-at-views"),
                                    version)
        typer.echo("rewrote " + ", ".join(str(p) for p in written))

    @app.command()
    def card(
        model: Path = typer.Argument(..., help="An exported model, its .card.json beside it."),
        measured: Path = typer.Option(..., help="Markdown of the figures measured on the exported model."),
        title: str = typer.Option("on the exported model", help="What the Measured heading says (stage, date)."),
        notes: Path = typer.Option(None, help="Markdown that replaces the card's notes (its limitations), where "
                                              "they changed after export."),
    ) -> None:
        """Write what was measured on an exported model (evaluate, evaluate-scenes) into its card."""
        from shipdet.train.card import set_measured

        set_measured(model, measured, title, notes)
        typer.echo(f"card updated: {model.with_suffix('.card.md')}")
