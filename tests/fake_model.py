"""A tiny ONNX model with YOLO's output layout and a known output: raw = base + mean(image) * shift.

It lets the engine and service be tested exactly, fast, and without torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def write_fake_yolo(path: Path, base: np.ndarray, shift: np.ndarray, imgsz: int = 64, task: str = "detect",
                    names: dict[int, str] | None = None, metadata: dict[str, str] | None = None) -> Path:
    """`base`, `shift`: (channels, anchors) float32; channels = 4 + classes (+ 1 angle for obb)."""
    names = names or {0: "ship"}
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2, 3], keepdims=1),  # (B, 1, 1, 1)
        helper.make_node("Squeeze", ["mean", "axis3"], ["mean3"]),  # (B, 1, 1)
        helper.make_node("Mul", ["mean3", "shift"], ["moved"]),  # (B, C, N)
        helper.make_node("Add", ["moved", "base"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes, "fake_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, imgsz, imgsz])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", base.shape[0], base.shape[1]])],
        initializer=[numpy_helper.from_array(base[None].astype(np.float32), "base"),
                     numpy_helper.from_array(shift[None].astype(np.float32), "shift"),
                     numpy_helper.from_array(np.array([3], dtype=np.int64), "axis3")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    props = {"names": repr(names), "imgsz": f"[{imgsz}, {imgsz}]", "task": task, "stride": "32", **(metadata or {})}
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def detect_model(path: Path, metadata: dict[str, str] | None = None) -> Path:
    """Anchors (input pixels, 64 x 64): a strong box, a duplicate NMS must remove, a weaker one, a faint one.
    The first box's centre x moves by 20 px times the image's mean brightness (0..1)."""
    base = np.array([
        [20, 21, 48, 10],      # cx
        [20, 20, 40, 10],      # cy
        [16, 16, 8, 4],        # w
        [8, 8, 8, 4],          # h
        [0.9, 0.8, 0.6, 0.05],  # ship score
    ], dtype=np.float32)
    shift = np.zeros_like(base)
    shift[0, 0] = 20.0
    return write_fake_yolo(path, base, shift, metadata=metadata)
