"""Loading an exported model: sha256 against its card, metadata from the file, execution providers."""

from __future__ import annotations

import ast
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from shipdet.errors import ModelLoadError
from shipdet.scale import ScaleRange

# The confidence a model is served at unless a request asks for another: chosen at export from the measured
# operating points (`shipdet evaluate`) and recorded in the ONNX metadata; models exported before carry none.
CONF_METADATA_KEY = "shipdet_conf"
FALLBACK_CONF = 0.25
# The threshold for imagery the scale path upsamples (coarser than the model's range, e.g. Sentinel-2 at 10 m):
# there the model's scores are calibrated differently (most false alarms on the validation split fall on ship-free
# Sentinel-2 tiles), so each domain gets the threshold that keeps its own false alarms within the target. Models
# exported before carry none: one threshold for all imagery.
CONF_UPSAMPLED_METADATA_KEY = "shipdet_conf_upsampled"


def is_upsampled(factor: float) -> bool:
    """Whether the scale path enlarged a tile or scene by `factor` before scoring (imagery coarser than the range)."""
    return factor > 1.0


T = TypeVar("T", float, int)


def for_imagery(factor: float, value: T, upsampled: T | None) -> T:
    """The part of the operating point (threshold, views) for imagery resampled by `factor`: `upsampled` where it was
    upsampled and one is set, else `value`."""
    return upsampled if upsampled is not None and is_upsampled(factor) else value


# The views (flips) each tile is scored in and fused (`shipdet.inference.views`): part of the operating point, as
# the threshold is, since fused scores are means over the views. Models exported before carry none: one view.
VIEWS_METADATA_KEY = "shipdet_views"
# The views for imagery the scale path upsamples: more views rank aerial imagery better, while on Sentinel-2 tiles
# upsampled 4x (16 times the pixels already) they found no more ships. Models exported before carry none: the
# same views for all imagery.
VIEWS_UPSAMPLED_METADATA_KEY = "shipdet_views_upsampled"
# The NMS IoU (and the IoU that merges boxes across window seams): part of the operating point as well, so that
# `shipdet evaluate` measures what the service and `shipdet rescore` serve. Models exported before carry none: the
# 0.45 both served at (evaluation used 0.6 until then).
NMS_IOU_METADATA_KEY = "shipdet_nms_iou"
FALLBACK_NMS_IOU = 0.45

PROVIDER_NAMES = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider",
                  "cpu": "CPUExecutionProvider"}


@dataclass
class ModelInfo:
    path: Path
    sha256: str
    task: str                   # detect or obb
    names: dict[int, str]
    imgsz: tuple[int, int]      # height, width
    stride: int
    metadata: dict[str, str]
    card: dict[str, Any] = field(default_factory=dict)
    default_conf: float = FALLBACK_CONF  # the threshold it is served at unless a request asks for another
    default_views: int = 1  # the views it is scored in unless a request asks for others
    default_iou: float = FALLBACK_NMS_IOU  # its NMS IoU unless a request asks for another
    upsampled_conf: float | None = None  # the threshold for imagery the scale path upsampled (None: default_conf)
    upsampled_views: int | None = None  # the views for imagery the scale path upsampled (None: default_views)

    def conf_for(self, factor: float) -> float:
        """The threshold a tile resampled by `factor` before scoring is served at (1: as posted)."""
        return for_imagery(factor, self.default_conf, self.upsampled_conf)

    def views_for(self, factor: float) -> int:
        """The views a tile resampled by `factor` before scoring is scored in (1: as posted)."""
        return for_imagery(factor, self.default_views, self.upsampled_views)

    @property
    def name(self) -> str:
        return str(self.card.get("name") or self.metadata.get("shipdet_name") or self.path.stem)

    @property
    def scale_range(self) -> ScaleRange | None:
        """The ground sample distances the model was trained for (None: exported before scale was recorded)."""
        return ScaleRange.from_metadata(self.metadata)

    @property
    def version(self) -> str:
        return str(self.card.get("version") or self.metadata.get("shipdet_version") or self.sha256[:12])


def _recorded_fraction(metadata: dict[str, str], key: str, fallback: float, what: str, option: str) -> float:
    """A value in (0, 1) recorded at export (`option`), else `fallback`; anything else stops the load."""
    raw = metadata.get(key)
    if raw is None:
        return fallback
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0.0 < value < 1.0:
        raise ModelLoadError(f"model metadata {key}={raw!r} is not {what} in (0, 1)",
                             f"re-export with `shipdet export {option}` (or without {option.split()[0]})")
    return value


def operating_conf(metadata: dict[str, str]) -> float:
    return _recorded_fraction(metadata, CONF_METADATA_KEY, FALLBACK_CONF, "a confidence", "--conf 0.3")


def operating_upsampled_conf(metadata: dict[str, str]) -> float | None:
    if CONF_UPSAMPLED_METADATA_KEY not in metadata:
        return None
    return _recorded_fraction(metadata, CONF_UPSAMPLED_METADATA_KEY, FALLBACK_CONF, "a confidence",
                              "--conf-upsampled 0.3")


def operating_iou(metadata: dict[str, str]) -> float:
    return _recorded_fraction(metadata, NMS_IOU_METADATA_KEY, FALLBACK_NMS_IOU, "an IoU", "--nms-iou 0.45")


def operating_views(metadata: dict[str, str], key: str = VIEWS_METADATA_KEY, option: str = "--views") -> int:
    from shipdet.inference.views import VIEW_COUNTS

    raw = metadata.get(key, "1")
    if raw.strip() not in {str(n) for n in VIEW_COUNTS}:
        raise ModelLoadError(f"model metadata {key}={raw!r} is not one of {VIEW_COUNTS}",
                             f"re-export with `shipdet export {option} 4` (or without {option})")
    return int(raw)


def operating_upsampled_views(metadata: dict[str, str]) -> int | None:
    if VIEWS_UPSAMPLED_METADATA_KEY not in metadata:
        return None
    return operating_views(metadata, VIEWS_UPSAMPLED_METADATA_KEY, "--views-upsampled")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def card_path(model: Path) -> Path | None:
    """The model card beside a model: `<stem>.card.json`, or `MODEL_CARD.json` in its folder."""
    for candidate in (model.with_suffix(".card.json"), model.parent / "MODEL_CARD.json"):
        if candidate.is_file():
            return candidate
    return None


def load_model_info(path: Path, verify: bool = True) -> ModelInfo:
    """Read an ONNX model's metadata and card; refuse a file whose sha256 differs from its card's."""
    import onnxruntime as ort

    if not path.is_file():
        raise ModelLoadError(f"model not found at {path}", "export one with `shipdet export`, or use weights/")
    sha = file_sha256(path)
    card: dict[str, Any] = {}
    cpath = card_path(path)
    if cpath is not None:
        try:
            card = json.loads(cpath.read_text())
        except ValueError as exc:
            raise ModelLoadError(f"model card {cpath} is not valid JSON ({exc})") from exc
        expected = card.get("sha256")
        if verify and expected and expected != sha and card.get("file", path.name) == path.name:
            raise ModelLoadError(f"{path} has sha256 {sha[:12]}..., its card {cpath} says {str(expected)[:12]}...",
                                 "the file was changed or corrupted: re-export it, or fix the card")
    try:
        meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta()
    except Exception as exc:  # onnxruntime raises its own exception types for corrupt files
        raise ModelLoadError(f"cannot load ONNX model {path}: {exc}") from exc
    props = dict(meta.custom_metadata_map)
    try:
        names = {int(k): str(v) for k, v in ast.literal_eval(props.get("names", "{0: 'ship'}")).items()}
        imgsz_raw = ast.literal_eval(props.get("imgsz", "[640, 640]"))
    except (ValueError, SyntaxError) as exc:
        raise ModelLoadError(f"{path}: unreadable metadata ({exc})", "export with `shipdet export`") from exc
    imgsz = (int(imgsz_raw[0]), int(imgsz_raw[1])) if isinstance(imgsz_raw, list) else (int(imgsz_raw),) * 2
    task = props.get("task", "detect")
    if task not in ("detect", "obb"):
        raise ModelLoadError(f"{path}: task {task!r} is not a detection task", "export a detect or obb model")
    return ModelInfo(path, sha, task, names, imgsz, int(props.get("stride", 32)), props, card, operating_conf(props),
                     operating_views(props), operating_iou(props), operating_upsampled_conf(props),
                     operating_upsampled_views(props))


def session_options(threads: int = 0) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = threads
    return opts


def resolve_providers(wanted: list[str], trt_cache: Path | None = None) -> list[Any]:
    """Map `tensorrt`, `cuda`, `cpu` to onnxruntime providers available here, in order, with options."""
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    providers: list[Any] = []
    for name in wanted:
        ort_name = PROVIDER_NAMES.get(name.lower(), name)
        if ort_name not in available:
            continue
        if ort_name == "TensorrtExecutionProvider":
            cache = str(trt_cache or Path(os.environ.get("SHIPDET_CACHE_DIR", ".cache")) / "trt")
            Path(cache).mkdir(parents=True, exist_ok=True)
            providers.append((ort_name, {"trt_fp16_enable": True, "trt_engine_cache_enable": True,
                                         "trt_engine_cache_path": cache}))
        else:
            providers.append(ort_name)
    if "CPUExecutionProvider" not in [p if isinstance(p, str) else p[0] for p in providers]:
        providers.append("CPUExecutionProvider")
    return providers
