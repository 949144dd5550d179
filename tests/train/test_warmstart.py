"""Unfolding an exported model whose convolutions share tensors: the exporter keeps one copy of equal tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ultralytics")
pytestmark = pytest.mark.train


def test_a_model_whose_biases_are_equal_unfolds_to_the_same_network(tmp_path: Path) -> None:
    """An untrained model folds every batch norm into the same bias, which the exporter stores once."""
    from ultralytics.nn.tasks import DetectionModel

    from shipdet.datasets.synth import SynthConfig
    from shipdet.datasets.synth_set import write_synth_set
    from shipdet.train.export import export_model
    from shipdet.train.warmstart import unfold_model, write_checkpoint

    write_synth_set(tmp_path / "synth", 12, seed=3, cfg=SynthConfig(width=64, height=64, gsd_m=4.0))
    data = tmp_path / "synth" / "data.yaml"
    fresh = write_checkpoint(DetectionModel("yolo11n.yaml", nc=1, verbose=False), tmp_path / "fresh" / "fresh.pt",
                             tmp_path / "none.onnx", "yolo11n.yaml", 64)
    export_model(fresh, tmp_path / "fresh.onnx", imgsz=64, data=data, name="fresh")
    record = unfold_model(tmp_path / "fresh.onnx", tmp_path / "warm.pt", data, "yolo11n.yaml", images=8)
    assert record["max_output_difference"] < 1e-2  # every shared bias found its convolution


def test_convolutions_naming_one_shared_initializer_each_get_it(tmp_path: Path) -> None:
    """After graph slimming convolutions may name one shared initializer; without slimming they name an Identity
    of it. Each module still gets its weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from shipdet.train.warmstart import _onnx_weights

    weight = np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)
    bias = np.ones(1, dtype=np.float32)
    inits = [numpy_helper.from_array(weight, "model.0.conv.weight"),
             numpy_helper.from_array(bias, "model.0.conv.bias"),
             numpy_helper.from_array(weight * 2, "model.23.cv2.2.2.weight")]
    nodes = [helper.make_node("Conv", ["x", "model.0.conv.weight", "model.0.conv.bias"], ["a"],
                              name="/model.0/conv/Conv"),
             helper.make_node("Conv", ["a", "model.23.cv2.2.2.weight", "model.0.conv.bias"], ["b"],
                              name="/model.23/cv2.2/cv2.2.2/Conv"),
             helper.make_node("Identity", ["model.0.conv.bias"], ["model.23.cv3.2.2.bias"]),
             helper.make_node("Conv", ["b", "model.23.cv2.2.2.weight", "model.23.cv3.2.2.bias"], ["y"],
                              name="/model.23/cv3.2/cv3.2.2/Conv")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    onnx.save(helper.make_model(graph), tmp_path / "shared.onnx")
    weights = _onnx_weights(tmp_path / "shared.onnx")
    assert np.array_equal(weights["model.23.cv2.2.2.bias"], bias)
    assert np.array_equal(weights["model.23.cv2.2.2.weight"], weight * 2)
    assert np.array_equal(weights["model.23.cv3.2.2.bias"], bias)
    weights["model.23.cv2.2.2.bias"] += 1  # writable, and not the other module's array
    assert np.array_equal(weights["model.0.conv.bias"], bias)
