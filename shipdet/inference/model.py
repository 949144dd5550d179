"""Loading an exported model: sha256 against its card, metadata from the file, execution providers."""

from __future__ import annotations

import ast
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipdet.errors import ModelLoadError
from shipdet.inference.companion import CompanionGraph, companion_from_metadata
from shipdet.inference.operating_point import (
    FALLBACK_CONF,
    FALLBACK_NMS_IOU,
    for_imagery,
    is_upsampled,
    operating_conf,
    operating_conf_at_views,
    operating_iou,
    operating_upsampled_conf,
    operating_upsampled_views,
    operating_views,
)
from shipdet.scale import ScaleRange

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
    conf_at_views: dict[int, float] = field(default_factory=dict)  # thresholds measured for other view counts
    upsampled_conf_at_views: dict[int, float] = field(default_factory=dict)  # the same, imagery upsampled
    upsampled_graph: CompanionGraph | None = None  # the graph that scores imagery the scale path upsampled

    def conf_for(self, factor: float, views: int | None = None) -> float:
        """The threshold a tile resampled by `factor` before scoring (1: as posted) is served at, scored in `views`
        (None: the model's own for that imagery): the one measured for those views where the model records one,
        else its threshold for that imagery."""
        default = for_imagery(factor, self.default_conf, self.upsampled_conf)
        if views is None or views == self.views_for(factor):
            return default
        own_upsampled = self.upsampled_conf is not None or self.upsampled_views is not None
        table = self.upsampled_conf_at_views if is_upsampled(factor) and own_upsampled else self.conf_at_views
        return table.get(views, default)

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
                     operating_upsampled_views(props), operating_conf_at_views(props),
                     operating_conf_at_views(props, upsampled=True), companion_from_metadata(props, path))


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
