"""Static INT8 quantisation (onnxruntime), calibrated on real training tiles, with its speed and mAP50 cost."""

from __future__ import annotations

import statistics
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from shipdet.errors import ShipdetError


def _tiles(data: Path, split: str, count: int, upsampled: bool | None = None) -> list[np.ndarray]:
    """`count` images spread over a split; `upsampled`: only those its sets upsampled to the working scale (True) or
    only the others (False), where the split has such images."""
    from shipdet.datasets.images import read_rgb8
    from shipdet.inference.operating_point import is_upsampled
    from shipdet.train.evaluate import image_sources, split_images

    images = split_images(data, split)
    if upsampled is not None:
        _, _, scales = image_sources(images)
        chosen = [p for p, scale in zip(images, scales, strict=True) if is_upsampled(scale) == upsampled]
        images = chosen or images
    step = max(1, len(images) // count)
    return [read_rgb8(p) for p in images[::step][:count]]


def bare_throughputs(models: list[Path], batch: np.ndarray, repeats: int = 7) -> list[float]:
    """Inference only, in the layout the engine runs it here (on a CPU: single-threaded streams side by side), in
    tiles a second for each model (its main graph): timed in turns, one call of each per round, so that load which
    comes and goes on a shared machine falls on all of them alike (medians)."""
    from shipdet.inference.engine import Engine
    from shipdet.timing import timed_interleaved

    engines = [Engine(model, providers=["cpu"], verify=False, companion=False) for model in models]
    try:
        times = timed_interleaved({str(i): partial(e.infer, batch) for i, e in enumerate(engines)}, repeats)
    finally:
        for engine in engines:
            engine.close()
    return [len(batch) / statistics.median(times[str(i)]) for i in range(len(engines))]


def _quantize_graph(fp32: Path, int8: Path, calibration: list[np.ndarray]) -> int:
    """Write the INT8 twin of one graph, calibrated on `calibration` tiles; returns how many calibrated it."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from shipdet.inference.engine import Engine

    engine = Engine(fp32, providers=["cpu"], verify=False, companion=False)
    calib = [engine.preprocess([t])[0] for t in calibration]
    engine.close()

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(calib)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.items, None)
            return None if batch is None else {engine.input_name: batch}

    prepared = fp32.with_suffix(".prep.onnx")
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    # Convolutions only: the head concatenates box coordinates (hundreds of pixels) with scores (0-1) in one
    # tensor, and one 8-bit scale for both rounds every score to zero.
    quantize_static(str(prepared), str(int8), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"])
    prepared.unlink(missing_ok=True)
    return len(calib)


def quantize_int8(fp32: Path, data: Path | None, imgsz: int, calibration_tiles: int = 64) -> dict[str, Any]:
    """Write `<stem>.int8.onnx` beside `fp32` (and, for a model with a graph for upsampled imagery, that graph's twin,
    calibrated on the upsampled training tiles, named in the twin's metadata); return its throughput ratio and
    mAP50 change on val."""
    if data is None:
        raise ShipdetError("--int8 needs --data: calibration uses real training tiles", "pass the data YAML")
    from shipdet.inference.companion import CompanionGraph, companion_path
    from shipdet.inference.engine import Engine
    from shipdet.inference.model import file_sha256, load_model_info
    from shipdet.train.thresholds import write_metadata

    int8 = fp32.with_suffix(".int8.onnx")
    companion = load_model_info(fp32, verify=False).upsampled_graph
    calibrated = _quantize_graph(fp32, int8, _tiles(data, "train", calibration_tiles,
                                                    None if companion is None else False))
    result: dict[str, Any] = {"file": int8.name}
    if companion is not None:
        twin = companion_path(int8)
        count = _quantize_graph(companion.beside(fp32), twin, _tiles(data, "train", calibration_tiles, True))
        write_metadata(int8, CompanionGraph(twin.name, file_sha256(twin)).to_metadata())
        result["upsampled_graph"] = {"file": twin.name, "sha256": file_sha256(twin), "calibration_tiles": count}
    engine = Engine(fp32, providers=["cpu"], verify=False, companion=False)
    batch = np.concatenate([engine.preprocess([t])[0] for t in _tiles(data, "val", 8)])
    engine.close()
    fp32_tps, int8_tps = bare_throughputs([fp32, int8], batch)
    from shipdet.train.evaluate import evaluate_model

    work = fp32.parent.parent / "work"  # keep evaluation files out of weights/ when a work folder exists
    out = work / "int8_eval" if work.is_dir() else fp32.parent / "int8_eval"
    for model, folder in ((fp32, "fp32"), (int8, "int8")):  # as served: each image by its graph, in its views
        evaluate_model(model, data, out / folder)
    import json

    m32 = json.loads((out / "fp32" / "metrics.json").read_text())["mAP50"]
    m8 = json.loads((out / "int8" / "metrics.json").read_text())["mAP50"]
    return {**result, "fp32_tiles_per_s": fp32_tps, "int8_tiles_per_s": int8_tps,
            "speedup": int8_tps / fp32_tps, "mAP50_fp32": m32, "mAP50_int8": m8, "mAP50_change": m8 - m32,
            "calibration_tiles": calibrated}
