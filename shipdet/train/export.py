"""`shipdet export`: ONNX with metadata inside, a model card beside it, and a parity check that must pass.

Parity compares the serving engine (onnxruntime + our decode and NMS) with PyTorch (ultralytics predict) on the
same input pixels: sample tiles are letterboxed to the model size first, so both see identical tensors.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from shipdet.errors import ShipdetError
from shipdet.inference.model import file_sha256
from shipdet.inference.operating_point import (
    CONF_METADATA_KEY,
    CONF_UPSAMPLED_METADATA_KEY,
    FALLBACK_CONF,
    FALLBACK_NMS_IOU,
    NMS_IOU_METADATA_KEY,
    VIEWS_METADATA_KEY,
    VIEWS_UPSAMPLED_METADATA_KEY,
)
from shipdet.inference.views import check_view_option
from shipdet.scale import METADATA_KEY as SCALE_METADATA_KEY
from shipdet.scale import ScaleRange
from shipdet.train.card import write_card
from shipdet.train.offline import ensure_offline
from shipdet.train.records import read_run_record
from shipdet.train.thresholds import card_entries, conf_at_views_entries, write_metadata


class ExportParityError(ShipdetError):
    """The exported model's detections differ from PyTorch's."""


def _sample_tiles(data: Path | None, imgsz: int, count: int = 8, upsampled: bool = False) -> list[np.ndarray]:
    """Letterboxed sample tiles (uint8, imgsz x imgsz): from the data's val split (`upsampled`: those its sets
    upsampled to the working scale, where it has some), else synthetic scenes."""
    from shipdet.datasets.images import read_rgb8
    from shipdet.inference.operating_point import is_upsampled
    from shipdet.inference.postprocess import letterbox_into

    if data is not None:
        from shipdet.train.evaluate import image_sources, split_images

        paths = split_images(data, "val")
        if upsampled:
            paths = [p for p, s in zip(paths, image_sources(paths)[2], strict=True) if is_upsampled(s)] or paths
        images = [read_rgb8(p) for p in paths[:count]]
    else:
        from shipdet.datasets.synth import SynthConfig, make_scene

        images = [make_scene(i, SynthConfig(width=imgsz, height=imgsz, empty_fraction=0))[0] for i in range(count)]
    tiles = []
    for image in images:
        buf = np.empty((3, imgsz, imgsz), dtype=np.float32)
        letterbox_into(image, buf, (imgsz, imgsz))
        tiles.append(np.clip(np.rint(buf.transpose(1, 2, 0) * 255), 0, 255).astype(np.uint8))
    return tiles


def parity_check(onnx_path: Path, weights: Path, tiles: list[np.ndarray], imgsz: int, conf: float = 0.25,
                 iou: float = 0.45, min_iou: float = 0.99, max_score_diff: float = 1e-3) -> dict[str, Any]:
    from shipdet.inference.engine import Engine
    from shipdet.metrics import pairwise_iou
    from shipdet.train.evaluate import torch_predictor

    ours = Engine(onnx_path, providers=["cpu"], verify=False, companion=False).detect(tiles, conf=conf, iou=iou)
    theirs = torch_predictor(weights, imgsz, conf=conf, iou=iou)(tiles)
    worst_iou, worst_score, n = 1.0, 0.0, 0
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if len(a) != len(b):
            raise ExportParityError(f"parity: tile {i}: engine found {len(a)} ships, PyTorch {len(b)}",
                                    "the export or the engine's decoding is wrong; do not ship this model")
        if not len(a):
            continue
        ious = pairwise_iou(a, b)
        best = ious.argmax(axis=1)
        worst_iou = min(worst_iou, float(ious[np.arange(len(a)), best].min()))
        worst_score = max(worst_score, float(np.abs(a.score - b.score[best]).max()))
        n += len(a)
    result = {"tiles": len(tiles), "detections": n, "min_matched_iou": worst_iou, "max_score_diff": worst_score,
              "conf": conf}
    if worst_iou < min_iou or worst_score > max_score_diff:
        raise ExportParityError(f"parity: matched IoU {worst_iou:.4f} (need {min_iou}), score difference "
                                f"{worst_score:.2e} (need <= {max_score_diff})", "do not ship this model")
    return result


def parity_at_some_conf(onnx_path: Path, weights: Path, tiles: list[np.ndarray], imgsz: int) -> dict[str, Any]:
    """Parity where the model finds something: a young model finds little at 0.25."""
    for parity_conf in (0.25, 0.1, 0.05, 0.02):
        parity = parity_check(onnx_path, weights, tiles, imgsz, conf=parity_conf)
        if parity["detections"] >= 5:
            break
    return parity


def _onnx_export(weights: Path, target: Path, imgsz: int, dynamic: bool, batch: int, half: bool) -> Any:
    """`weights` exported to `target` by ultralytics; returns the loaded YOLO model."""
    from ultralytics import YOLO

    model = YOLO(str(weights))
    exported = Path(model.export(format="onnx", imgsz=imgsz, dynamic=dynamic, batch=batch, half=half,
                                 simplify=True, device=0 if half else "cpu", verbose=False))
    target.parent.mkdir(parents=True, exist_ok=True)
    if exported.resolve() != target.resolve():
        shutil.move(str(exported), target)
    return model


def export_companion(weights: Path, main: Path, imgsz: int, dynamic: bool, batch: int, half: bool,
                     tiles: list[np.ndarray], name: str, version: str) -> tuple[dict[str, str], dict[str, Any]]:
    """The graph for upsampled imagery, from `weights`, beside `main` (`<stem>.upsampled.onnx`) with its parity
    check: the metadata that names it in the main model, and the card's entry for it."""
    from shipdet.inference.companion import CompanionGraph, companion_path

    target = companion_path(main)
    model = _onnx_export(weights, target, imgsz, dynamic, batch, half)
    record = read_run_record(weights)
    write_metadata(target, {"shipdet_name": f"{name} (upsampled imagery)", "shipdet_version": version,
                            "dataset_sha256": str(record.get("dataset_sha256", "unknown")),
                            "training_commit": str(record.get("git_commit", "unknown"))})
    parity = parity_at_some_conf(target, weights, tiles, imgsz)
    ref = CompanionGraph(target.name, file_sha256(target))
    return ref.to_metadata(), {"file": ref.file, "sha256": ref.sha256, "task": model.task, "parity": parity,
                               "training": record}


def check_pair(weights: Path, upsampled_weights: Path) -> None:
    """Before anything is written: the two graphs of a model must be of one task with the same classes."""
    from ultralytics import YOLO

    if not upsampled_weights.is_file():
        raise ShipdetError(f"--upsampled-weights not found at {upsampled_weights}", "pass <run>/weights/best.pt")
    main, other = YOLO(str(weights)), YOLO(str(upsampled_weights))
    if main.task != other.task:
        raise ShipdetError(f"--upsampled-weights is a {other.task} model, the model a {main.task} one",
                           "both graphs must be of one task")
    if dict(main.names) != dict(other.names):
        raise ShipdetError(f"--upsampled-weights names its classes {dict(other.names)}, the model "
                           f"{dict(main.names)}", "train both on one class list (an unfolded checkpoint from before "
                           "commit ba609b5 names its class '0': set its names to the model's)")


def training_gsd_range(data: Path | None) -> ScaleRange | None:
    """The ground sample distances of the training images whose GSD is recorded (their sets' manifests)."""
    if data is None:
        return None
    from shipdet.train.evaluate import image_sources, split_images

    _, gsd, _ = image_sources(split_images(data, "train"))
    known = [g for g in gsd if np.isfinite(g)]
    return ScaleRange(min(known), max(known)) if known else None


def export_model(weights: Path, out: Path | None = None, imgsz: int = 640, dynamic: bool = True, batch: int = 1,
                 half: bool = False, int8: bool = False, data: Path | None = None, name: str = "shipdet",
                 version: str | None = None, notes: Path | None = None,
                 gsd_range: ScaleRange | None = None, conf: float | None = None, views: int = 1,
                 nms_iou: float | None = None, conf_upsampled: float | None = None,
                 views_upsampled: int | None = None, conf_at_views: dict[int, float] | None = None,
                 conf_upsampled_at_views: dict[int, float] | None = None,
                 upsampled_weights: Path | None = None) -> dict[str, Any]:
    """`gsd_range`: the scale range the model declares (the service and re-scoring resample imagery into it);
    default: the range of the training images' recorded GSDs. `conf`: the operating threshold the model is served
    at by default (none recorded: 0.25); `views`: the views each tile is scored in and fused, by default
    (`shipdet.inference.views`; `conf` is then a threshold on the fused score); `nms_iou`: the NMS IoU it is
    served and measured at (none recorded: 0.45); `conf_upsampled`: the threshold for imagery the scale path
    upsamples (coarser than the range), chosen from `shipdet evaluate`'s operating points of those images (none
    recorded: `conf` for all imagery); `views_upsampled`: the views for that imagery (none recorded: `views`);
    `conf_at_views`, `conf_upsampled_at_views`: thresholds measured for other view counts ({views: conf}), served
    to a request asking for those views without a threshold; `upsampled_weights`: the weights of a second graph
    that scores the imagery the scale path upsamples (`shipdet.inference.companion`), exported beside the model."""
    ensure_offline()
    import torch

    if half and not torch.cuda.is_available():
        raise ShipdetError("FP16 export needs a CUDA device", "export FP32 here, or run on a GPU machine")
    if not weights.is_file():
        raise ShipdetError(f"weights not found at {weights}", "pass <run>/weights/best.pt")
    for option, value in (("--conf", conf), ("--conf-upsampled", conf_upsampled)):
        if value is not None and not 0.0 < value < 1.0:
            raise ShipdetError(f"{option} {value} is not a confidence in (0, 1)", f"e.g. {option} 0.3")
    if nms_iou is not None and not 0.0 < nms_iou < 1.0:
        raise ShipdetError(f"--nms-iou {nms_iou} is not an IoU in (0, 1)", "e.g. --nms-iou 0.45")
    check_view_option(views)
    check_view_option(views_upsampled, "--views-upsampled")
    served_conf = FALLBACK_CONF if conf is None else conf
    at_views = conf_at_views_entries(conf_at_views or {}, conf_upsampled_at_views or {}, views, served_conf,
                                     views if views_upsampled is None else views_upsampled,
                                     served_conf if conf_upsampled is None else conf_upsampled)
    if notes is not None and not notes.is_file():
        raise ShipdetError(f"notes file not found at {notes}", "pass a Markdown file (e.g. the limitations)")
    if upsampled_weights is not None:
        check_pair(weights, upsampled_weights)
    target = out or weights.with_suffix(".onnx")
    model = _onnx_export(weights, target, imgsz, dynamic, batch, half)
    for stale in (target.with_suffix(".card.json"), target.with_suffix(".card.md")):
        stale.unlink(missing_ok=True)  # it describes the file just replaced; the new card comes at the end
    record = read_run_record(weights)
    version = version or datetime.now(UTC).strftime("%Y.%m.%d")
    scale_range = gsd_range or training_gsd_range(data)
    extra = {"shipdet_name": name, "shipdet_version": version,
             "dataset_sha256": str(record.get("dataset_sha256", "unknown")),
             "training_commit": str(record.get("git_commit", "unknown"))}
    if scale_range is not None:
        extra[SCALE_METADATA_KEY] = scale_range.to_metadata()
    if conf is not None:
        extra[CONF_METADATA_KEY] = repr(float(conf))
    if conf_upsampled is not None:
        extra[CONF_UPSAMPLED_METADATA_KEY] = repr(float(conf_upsampled))
    if views != 1:
        extra[VIEWS_METADATA_KEY] = str(views)
    if views_upsampled is not None and views_upsampled != views:
        extra[VIEWS_UPSAMPLED_METADATA_KEY] = str(views_upsampled)
    if nms_iou is not None:
        extra[NMS_IOU_METADATA_KEY] = repr(float(nms_iou))
    extra.update(at_views)
    tiles = _sample_tiles(data, imgsz)
    companion: dict[str, Any] | None = None
    if upsampled_weights is not None:
        names, companion = export_companion(upsampled_weights, target, imgsz, dynamic, batch, half,
                                            _sample_tiles(data, imgsz, upsampled=True), name, version)
        extra.update(names)
    write_metadata(target, extra)
    parity = parity_at_some_conf(target, weights, tiles, imgsz)
    card: dict[str, Any] = {"name": name, "version": version, "file": target.name, "sha256": file_sha256(target),
                            "task": model.task, "imgsz": imgsz, "dynamic_batch": dynamic, "fp16": half,
                            "names": {int(k): v for k, v in model.names.items()}, "parity": parity,
                            "training": record, "exported": datetime.now(UTC).isoformat(timespec="seconds"),
                            "gsd_range_m": None if scale_range is None else [scale_range.finest_m,
                                                                              scale_range.coarsest_m],
                            "default_conf": FALLBACK_CONF if conf is None else float(conf), "default_views": views,
                            "default_nms_iou": FALLBACK_NMS_IOU if nms_iou is None else float(nms_iou),
                            "default_conf_upsampled": None if conf_upsampled is None else float(conf_upsampled),
                            "default_views_upsampled": views if views_upsampled is None else views_upsampled,
                            **card_entries(at_views), "upsampled_graph": companion}
    if notes is not None:
        card["notes"] = notes.read_text()
    if int8:
        from shipdet.train.quantize import quantize_int8

        card["int8"] = quantize_int8(target, data, imgsz)
    write_card(target, card, weights)
    return card
