"""Static INT8 quantisation (onnxruntime), calibrated on real training tiles, with its speed and mAP50 cost."""

from __future__ import annotations

import statistics
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from shipdet.errors import ShipdetError


def _tiles(data: Path, split: str, count: int) -> list[np.ndarray]:
    from shipdet.datasets.images import read_rgb8
    from shipdet.train.evaluate import split_images

    images = split_images(data, split)
    step = max(1, len(images) // count)
    return [read_rgb8(p) for p in images[::step][:count]]


def bare_throughputs(models: list[Path], batch: np.ndarray, repeats: int = 7) -> list[float]:
    """Inference only, in the layout the engine runs it here (on a CPU: single-threaded streams side by side), in
    tiles a second for each model: timed in turns, one call of each per round, so that load which comes and goes on
    a shared machine falls on all of them alike (medians)."""
    from shipdet.inference.engine import Engine
    from shipdet.timing import timed_interleaved

    engines = [Engine(model, providers=["cpu"], verify=False) for model in models]
    try:
        times = timed_interleaved({str(i): partial(e.infer, batch) for i, e in enumerate(engines)}, repeats)
    finally:
        for engine in engines:
            engine.close()
    return [len(batch) / statistics.median(times[str(i)]) for i in range(len(engines))]


def quantize_int8(fp32: Path, data: Path | None, imgsz: int, calibration_tiles: int = 64) -> dict[str, Any]:
    """Write `<stem>.int8.onnx` beside `fp32`; return its throughput ratio and mAP50 change on val."""
    if data is None:
        raise ShipdetError("--int8 needs --data: calibration uses real training tiles", "pass the data YAML")
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from shipdet.inference.engine import Engine

    engine = Engine(fp32, providers=["cpu"], verify=False)
    calib = [engine.preprocess([t])[0] for t in _tiles(data, "train", calibration_tiles)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(calib)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.items, None)
            return None if batch is None else {engine.input_name: batch}

    prepared = fp32.with_suffix(".prep.onnx")
    int8 = fp32.with_suffix(".int8.onnx")
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    # Convolutions only: the head concatenates box coordinates (hundreds of pixels) with scores (0-1) in one
    # tensor, and one 8-bit scale for both rounds every score to zero.
    quantize_static(str(prepared), str(int8), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"])
    prepared.unlink(missing_ok=True)
    batch = np.concatenate([engine.preprocess([t])[0] for t in _tiles(data, "val", 8)])
    fp32_tps, int8_tps = bare_throughputs([fp32, int8], batch)
    from shipdet.train.evaluate import evaluate_model, onnx_predictor

    work = fp32.parent.parent / "work"  # keep evaluation files out of weights/ when a work folder exists
    out = work / "int8_eval" if work.is_dir() else fp32.parent / "int8_eval"
    evaluate_model(fp32, data, out / "fp32", predictor=onnx_predictor(fp32, ("cpu",)))
    evaluate_model(int8, data, out / "int8", predictor=onnx_predictor(int8, ("cpu",)))
    import json

    m32 = json.loads((out / "fp32" / "metrics.json").read_text())["mAP50"]
    m8 = json.loads((out / "int8" / "metrics.json").read_text())["mAP50"]
    return {"file": int8.name, "fp32_tiles_per_s": fp32_tps, "int8_tiles_per_s": int8_tps,
            "speedup": int8_tps / fp32_tps, "mAP50_fp32": m32, "mAP50_int8": m8, "mAP50_change": m8 - m32,
            "calibration_tiles": len(calib)}
