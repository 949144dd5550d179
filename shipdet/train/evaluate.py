"""`shipdet evaluate`: run a model over a split and write metrics.json, report.md and pr_curve.png."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from numpy.typing import NDArray

from shipdet.datasets.images import read_rgb8
from shipdet.datasets.writer import read_manifest
from shipdet.detections import Detections
from shipdet.errors import DatasetNotFoundError
from shipdet.formats import from_yolo_lines
from shipdet.inference.model import load_model_info
from shipdet.inference.operating_point import FALLBACK_CONF, FALLBACK_NMS_IOU, is_upsampled
from shipdet.inference.postprocess import DEFAULT_MAX_DET
from shipdet.metrics import (
    COCO_MAX_DETS,
    airbus_f2,
    average_precision,
    false_alarms,
    match_at,
    recall_by_crowding,
    recall_by_size,
)
from shipdet.train.eval_report import markdown_report
from shipdet.train.operating_points import above, operating_point, served_thresholds, thresholds_for_false_alarms

SIZE_EDGES_PX = (8, 16, 32, 64, 128)
SIZE_EDGES_M = (25, 50, 100, 200)
CROWDING_EDGES = (2, 5, 10, 50)  # ships per image
OPERATING_CONFS = (0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)
Predictor = Callable[[Sequence[NDArray[np.uint8]]], list[Detections]]


def split_images(data_yaml: Path, split: str) -> list[Path]:
    if not data_yaml.is_file():
        raise DatasetNotFoundError(f"data YAML not found at {data_yaml}")
    data = yaml.safe_load(data_yaml.read_text())
    root = Path(data.get("path") or data_yaml.parent)
    entry = Path(data[split])
    entry = entry if entry.is_absolute() else root / entry
    if entry.suffix == ".txt":  # relative entries are relative to the list's folder, as ultralytics reads them
        return [Path(p) if Path(p).is_absolute() else entry.parent / p for p in entry.read_text().split()]
    return sorted(p for p in entry.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))


def load_truth(image: Path, width: int, height: int, names: dict[int, str]) -> Detections:
    label = Path(str(image).replace("/images/", "/labels/")).with_suffix(".txt")
    lines = label.read_text().splitlines() if label.is_file() else []
    return from_yolo_lines(lines, width, height, names, str(label))


def image_sources(images: Sequence[Path]) -> tuple[list[str], list[float], list[float]]:
    """Each image's source dataset, ground sample distance (NaN where unknown) and the resampling its set applied
    to the source image (1: none), from set manifests."""
    info: dict[str, tuple[str, float, float]] = {}
    for manifest in {Path(str(p).replace("/obb/images/", "/images/")).parent.parent / "manifest.csv" for p in images}:
        if manifest.is_file():
            for r in read_manifest(manifest):
                key = str(manifest.parent / "images" / f"{r['name']}.jpg")
                info[key] = (r["source"], float(r["gsd_m"]) if r["gsd_m"] else float("nan"),
                             float(r.get("scale") or 1.0))
    rows = [info.get(str(p).replace("/obb/images/", "/images/"), ("unknown", float("nan"), 1.0)) for p in images]
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def onnx_predictor(model: Path, providers: Sequence[str] = ("cuda", "cpu"), conf: float = 0.001,
                   views: int | None = None, nms_iou: float | None = None, factor: float = 1.0) -> Predictor:
    """`views`: the views each image is scored in and fused; `nms_iou`: the NMS IoU (default: the model's own,
    what the service and `shipdet rescore` score with); `factor`: the resampling the images went through, which
    chooses the model's graph (its graph for upsampled imagery where it has one), as served."""
    from shipdet.inference.engine import Engine
    from shipdet.inference.views import detect_in_views

    engine = Engine(model, providers=providers, companion=is_upsampled(factor))  # only the graph it will use
    graph = engine.for_factor(factor)
    count = engine.info.default_views if views is None else views
    iou = engine.info.default_iou if nms_iou is None else nms_iou
    return lambda images: detect_in_views(graph, images, count, conf=conf, iou=iou)


def torch_predictor(weights: Path, imgsz: int, conf: float = 0.001, iou: float = FALLBACK_NMS_IOU) -> Predictor:
    from shipdet.train.offline import ensure_offline

    ensure_offline()
    from ultralytics import YOLO

    model = YOLO(str(weights))

    def predict(images: Sequence[NDArray[np.uint8]]) -> list[Detections]:
        out = []
        results: list[Any] = list(model.predict([im[..., ::-1] for im in images], imgsz=imgsz, conf=conf, iou=iou,
                                                verbose=False, device="cpu"))
        for r in results:
            names = {int(k): str(v) for k, v in r.names.items()}
            if r.obb is not None:
                out.append(Detections.from_obb(r.obb.xywhr.numpy(), r.obb.conf.numpy(), r.obb.cls.numpy(), names))
            else:
                out.append(Detections(r.boxes.xyxy.numpy(), r.boxes.conf.numpy(), r.boxes.cls.numpy().astype(int),
                                      class_names=names))
        return out

    return predict


def evaluate_predictions(preds: list[Detections], truths: list[Detections], sources: list[str], gsd: list[float],
                         conf: float, iou: float, sizes: Sequence[tuple[int, int]] | None = None,
                         scales: Sequence[float] | None = None, max_false_alarms: float | None = None,
                         conf_upsampled: float | None = None) -> dict[str, Any]:
    """`sizes`: (width, height) of each image, for false alarms per km2; `scales`: the resampling each image went
    through (recall by size at native scale, e.g. Sentinel-2 ships below 16 native pixels); `max_false_alarms`: a
    budget per ship-free image, for the lowest threshold (0.01 steps) that meets it and what it gives there, over
    all images and, where some were upsampled, for the upsampled and the other images each on its own;
    `conf_upsampled`: the threshold of the upsampled images, as served (None: `conf`)."""
    sizes = sizes or [(0, 0)] * len(truths)
    scales = scales or [1.0] * len(truths)
    areas = [w * h * g * g / 1e6 if np.isfinite(g) else float("nan") for (w, h), g in zip(sizes, gsd, strict=True)]
    # Scored as served: a tile answers with up to DEFAULT_MAX_DET ships, and a crowded marina holds over 300, where
    # COCO's cap of 100 would deny the hits the service returns. COCO's figure stays beside it, for comparison.
    aps = average_precision(preds, truths, max_dets=DEFAULT_MAX_DET)
    coco = average_precision(preds, truths, max_dets=COCO_MAX_DETS)
    thresholds = served_thresholds(scales, conf, conf_upsampled)
    kept = above(preds, thresholds)
    counts, found = match_at(kept, truths, 0.0, iou)
    count_err = np.array([len(k) - len(t) for k, t in zip(kept, truths, strict=True)])
    airbus = [i for i, s in enumerate(sources) if s == "airbus"]
    result: dict[str, Any] = {
        "images": len(truths), "ships": int(sum(len(t) for t in truths)),
        "mAP50": aps[0.5], "mAP50-95": float(np.mean(list(aps.values()))), "max_dets": DEFAULT_MAX_DET,
        "coco_max_dets": {"max_dets": COCO_MAX_DETS, "mAP50": coco[0.5],
                          "mAP50-95": float(np.mean(list(coco.values())))},
        "conf": conf, "conf_upsampled": conf_upsampled, "iou": iou,
        "precision": counts.precision, "recall": counts.recall, "f1": counts.f1,
        "tp": counts.tp, "fp": counts.fp, "fn": counts.fn,
        "airbus_f2_all_images": float(np.mean([airbus_f2(k, t) for k, t in zip(kept, truths, strict=True)])),
        "airbus_f2_airbus_images": (float(np.mean([airbus_f2(kept[i], truths[i]) for i in airbus]))
                                    if airbus else None),
        "airbus_images": len(airbus),
        "count_error": {"mean_abs": float(np.abs(count_err).mean()) if len(count_err) else 0.0,
                        "mean_signed": float(count_err.mean()) if len(count_err) else 0.0},
        "recall_by_size_px": recall_by_size(truths, found, SIZE_EDGES_PX),
        "recall_by_size_m": recall_by_size(truths, found, SIZE_EDGES_M, scale=gsd),
        "recall_by_size_native_px": recall_by_size(truths, found, SIZE_EDGES_PX,
                                                   scale=[1 / f for f in scales]),
        "recall_by_crowding": recall_by_crowding(truths, found, CROWDING_EDGES),
        "false_alarms": false_alarms(kept, truths, areas),
        "operating_points": [operating_point(preds, truths, t, iou, areas)  # the threshold used among them
                             for t in sorted({*OPERATING_CONFS, conf})],
        "by_source": {},
    }
    result.update(threshold_for_false_alarms=None, thresholds_for_false_alarms_by_scale=None)
    if max_false_alarms is not None:
        result.update(thresholds_for_false_alarms(preds, truths, scales, max_false_alarms, iou, areas))
    for source in sorted(set(sources)):
        idx = [i for i, s in enumerate(sources) if s == source]
        c, _ = match_at([kept[i] for i in idx], [truths[i] for i in idx], 0.0, iou)
        ap = average_precision([preds[i] for i in idx], [truths[i] for i in idx], [0.5], DEFAULT_MAX_DET)[0.5]
        result["by_source"][source] = {"images": len(idx), "ships": int(sum(len(truths[i]) for i in idx)),
                                       "mAP50": ap, "precision": c.precision, "recall": c.recall, "f1": c.f1,
                                       "false_alarms": false_alarms([kept[i] for i in idx], [truths[i] for i in idx],
                                                                    [areas[i] for i in idx])}
    return result


def pr_curve(preds: list[Detections], truths: list[Detections], iou: float, path: Path) -> dict[str, float]:
    """Plot precision against recall over confidence thresholds; return the F1-maximising point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    thresholds = np.linspace(0.01, 0.95, 60)
    points = [match_at(preds, truths, t, iou)[0] for t in thresholds]
    best = int(np.argmax([p.f1 for p in points]))
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot([p.recall for p in points], [p.precision for p in points], marker=".")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(f"precision-recall at IoU {iou}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return {"conf": round(float(thresholds[best]), 3), "precision": points[best].precision,
            "recall": points[best].recall, "f1": points[best].f1}


def evaluate_model(model: Path, data: Path, out: Path, conf: float | None = None, iou: float = 0.5, split: str = "val",
                   gsd_m: float | None = None, predictor: Predictor | None = None, imgsz: int = 640,
                   batch: int = 8, draw: int = 0, views: int | None = None, nms_iou: float | None = None,
                   max_false_alarms: float | None = None, conf_upsampled: float | None = None,
                   views_upsampled: int | None = None) -> str:
    """Evaluate `model` (.onnx via the serving engine, .pt via ultralytics) on a split; returns the Markdown.
    `conf` (P/R/F1, counts, false alarms): default, the threshold the model is served at; `views` (an .onnx
    model): the views each image is scored in, default the model's own; `nms_iou`: default the model's own (0.45
    for a .pt or a model that records none), as served. `iou` is the IoU a match needs, not NMS's;
    `max_false_alarms`: the false-alarm budget per ship-free image a threshold is sought for; `conf_upsampled`:
    the threshold of images upsampled to the working scale (default: the model's own if `conf` is not given, else
    `conf`); `views_upsampled`: their views, likewise with `views`. A model's own threshold is the one it records
    for the views scored in, where it records one."""
    info = load_model_info(model, verify=False) if model.suffix == ".onnx" else None  # its operating point
    if info is not None and views is None:
        views = info.default_views
        views_upsampled = info.upsampled_views if views_upsampled is None else views_upsampled
    if conf is None and info is not None:  # the model's own thresholds for the views each domain is scored in
        conf = info.conf_for(1.0, views)
        if conf_upsampled is None:
            upsampled = info.conf_for(math.inf, views_upsampled or views)
            conf_upsampled = None if upsampled == conf else upsampled
    conf = FALLBACK_CONF if conf is None else conf
    if nms_iou is None:
        nms_iou = info.default_iou if info is not None else FALLBACK_NMS_IOU
    images = split_images(data, split)
    names = {int(k): str(v) for k, v in (yaml.safe_load(data.read_text())["names"]).items()}
    predict = predictor or (onnx_predictor(model, views=views, nms_iou=nms_iou) if info is not None
                            else torch_predictor(model, imgsz, iou=nms_iou))
    predict_upsampled = predict
    if predictor is None and info is not None and (views_upsampled not in (None, views)
                                                   or info.upsampled_graph is not None):
        predict_upsampled = onnx_predictor(model, views=views_upsampled or views, nms_iou=nms_iou, factor=math.inf)
    preds: list[Detections] = []
    truths: list[Detections] = []
    shown: list[NDArray[np.uint8]] = []
    sizes: list[tuple[int, int]] = []
    sources_all, gsd, scales = image_sources(images)
    # Drawn examples: spread over the sources, images with ships first.
    wanted = set(_examples(images, sources_all, draw)) if draw else set()
    for start in range(0, len(images), batch):
        pixels = [read_rgb8(p) for p in images[start:start + batch]]
        shown += [im for k, im in enumerate(pixels, start) if k in wanted]
        preds += _predict_by_scale(pixels, scales[start:start + batch], predict, predict_upsampled)
        sizes += [(im.shape[1], im.shape[0]) for im in pixels]
        truths += [load_truth(p, im.shape[1], im.shape[0], names) for p, im in
                   zip(images[start:start + batch], pixels, strict=True)]
    oriented = all(p.obb is not None for p in preds) and any(t.obb is not None for t in truths)
    if not oriented:  # an axis-aligned model is scored on axis-aligned boxes
        preds = [Detections(p.xyxy, p.score, p.class_id, class_names=p.class_names) for p in preds]
        truths = [Detections(t.xyxy, t.score, t.class_id, class_names=t.class_names) for t in truths]
    if gsd_m is not None:
        gsd = [gsd_m] * len(images)
    metrics = evaluate_predictions(preds, truths, sources_all, gsd, conf, iou, sizes, scales, max_false_alarms,
                                   conf_upsampled)
    if predictor is None:
        metrics["nms_iou"] = nms_iou
        if info is not None and info.upsampled_graph is not None:  # it scored the upsampled images
            metrics["upsampled_graph"] = {"file": info.upsampled_graph.file, "sha256": info.upsampled_graph.sha256}
        if views is not None:
            metrics["views"] = views
            metrics["views_upsampled"] = views if views_upsampled is None else views_upsampled
    out.mkdir(parents=True, exist_ok=True)
    metrics["best_f1"] = pr_curve(preds, truths, iou, out / "pr_curve.png")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    report = markdown_report(metrics, model, data, split)
    if draw:
        from shipdet.train.visualize import contact_sheet

        order = sorted(wanted)
        contact_sheet(shown, [truths[k] for k in order], [preds[k] for k in order], conf, out / "examples.png")
        report += "\n![detections (green: truth, orange: model)](examples.png)\n"
    (out / "report.md").write_text(report)
    return report


def _predict_by_scale(pixels: list[NDArray[np.uint8]], scales: Sequence[float], native: Predictor,
                      upsampled: Predictor) -> list[Detections]:
    """Each image scored as served: those its set upsampled to the working scale in the views for them."""
    if upsampled is native:
        return native(pixels)
    found: dict[int, Detections] = {}
    for predict, wanted in ((native, False), (upsampled, True)):
        indices = [i for i, scale in enumerate(scales) if is_upsampled(scale) == wanted]
        if indices:
            found.update(zip(indices, predict([pixels[i] for i in indices]), strict=True))
    return [found[i] for i in range(len(pixels))]


def _examples(images: Sequence[Path], sources: list[str], count: int) -> list[int]:
    labelled = [i for i, p in enumerate(images)
                if Path(str(p).replace("/images/", "/labels/")).with_suffix(".txt").is_file()
                and Path(str(p).replace("/images/", "/labels/")).with_suffix(".txt").stat().st_size > 0]
    by_source: dict[str, list[int]] = {}
    for i in labelled:
        by_source.setdefault(sources[i], []).append(i)
    picked: list[int] = []
    while len(picked) < count and any(by_source.values()):
        for source in sorted(by_source):
            if by_source[source] and len(picked) < count:
                picked.append(by_source[source].pop(0))
    return picked
