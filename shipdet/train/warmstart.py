"""A training checkpoint rebuilt from an exported ONNX model, so that training continues from a shipped model
when its `.pt` is gone (weights are never downloaded, and `work/` does not survive every session).

Export folds each batch norm into its convolution (W' = W * g / s, b' = beta - g * mean / s). Unfolding keeps the
folded weights and gives each batch norm the statistics its input really has on training images (mean m,
variance v per channel, measured by running the folded network), with gamma = sqrt(v + eps) and beta = m + b':
in eval mode the rebuilt network computes exactly what the ONNX model computes, and in training mode batch
statistics are close to those, so the first steps do not wreck what the model had learned.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from shipdet.errors import ModelLoadError


def _module_of(node_name: str) -> str:
    """`/model.23/cv3.2/cv3.2.2/Conv` -> `model.23.cv3.2.2`: the exporter names a node by its module scopes, each
    scope of a ModuleList or Sequential child repeating its parent's name."""
    scopes: list[str] = []
    for scope in node_name.strip("/").split("/")[:-1]:
        if scopes and scope.startswith(scopes[-1] + "."):
            scopes[-1] = scope
        else:
            scopes.append(scope)
    return ".".join(scopes)


def _onnx_weights(path: Path) -> dict[str, np.ndarray]:
    """Each convolution's weight and bias under its module's parameter names. The exporter keeps one initializer
    for equal tensors (biases folded from untrained batch norms, the detect head's box biases after a short run):
    the others become Identity nodes of it, or, after graph slimming, the convolutions name the shared one. So
    follow Identity and Constant nodes, and key by the Conv nodes rather than by the initializers' names."""
    import onnx
    from onnx import numpy_helper

    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:  # onnx raises DecodeError and friends for a corrupt file
        raise ModelLoadError(f"cannot read ONNX model {path}: {exc}") from exc
    arrays = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:  # topologically sorted: an Identity's input is resolved before it
        if node.op_type == "Identity" and node.input[0] in arrays:
            arrays[node.output[0]] = arrays[node.input[0]]
        elif node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            arrays[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    weights = {name: array.copy() for name, array in arrays.items()}  # writable
    for node in graph.node:
        module = _module_of(node.name)
        if node.op_type != "Conv" or not module:
            continue
        for suffix, name in zip(("weight", "bias"), node.input[1:3], strict=False):
            if name in arrays:
                weights[f"{module}.{suffix}"] = arrays[name].copy()
    return weights


def _calibration_batches(images: Sequence[Path], imgsz: int, batch: int = 8) -> list[Any]:
    """Training images letterboxed as the serving engine does it (CHW floats in [0, 1]), in batches."""
    import torch

    from shipdet.datasets.images import read_rgb8
    from shipdet.inference.postprocess import letterbox_into

    tensors = []
    for path in images:
        out = np.empty((3, imgsz, imgsz), dtype=np.float32)
        letterbox_into(read_rgb8(path), out, (imgsz, imgsz))
        tensors.append(torch.from_numpy(out))
    return [torch.stack(tensors[i:i + batch]) for i in range(0, len(tensors), batch)]


def unfold_onnx(onnx_path: Path, model_yaml: str, nc: int, images: Sequence[Path], imgsz: int,
                task: str = "detect") -> Any:
    """A trainable ultralytics model with the weights of `onnx_path` (same architecture as `model_yaml`)."""
    import torch
    from ultralytics.nn.modules import Conv
    from ultralytics.nn.tasks import DetectionModel, OBBModel

    weights = _onnx_weights(onnx_path)
    model = (OBBModel if task == "obb" else DetectionModel)(model_yaml, nc=nc, verbose=False)
    model.eval()
    convs = {name: m for name, m in model.named_modules() if isinstance(m, Conv)}
    missing = []
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Conv2d) and f"{name}.weight" in weights:
                module.weight.copy_(torch.from_numpy(weights[f"{name}.weight"]))
                if module.bias is not None:
                    if f"{name}.bias" not in weights:
                        missing.append(f"{name}.bias")
                        continue
                    module.bias.copy_(torch.from_numpy(weights[f"{name}.bias"]))
        for name, conv in convs.items():
            key = f"{name}.conv"
            if f"{key}.weight" not in weights or f"{key}.bias" not in weights:
                missing.append(key)
                continue
            conv.conv.weight.copy_(torch.from_numpy(weights[f"{key}.weight"]))
            bn = conv.bn
            assert bn.running_mean is not None and bn.running_var is not None  # ultralytics tracks statistics
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)  # sqrt(var + eps) == 1: bn adds beta only, as the folded conv
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(weights[f"{key}.bias"]))
    if missing:
        raise ModelLoadError(f"{onnx_path} does not match {model_yaml}: no weights for {', '.join(missing[:5])}",
                             "give the architecture the model was trained with (its card names it)")
    sums: dict[str, list[Any]] = {}

    def hook(name: str) -> Any:
        def record(_: Any, __: Any, out: Any) -> None:
            flat = out.transpose(0, 1).reshape(out.shape[1], -1).double()
            acc = sums.setdefault(name, [0.0, 0.0, 0])
            acc[0] = acc[0] + flat.sum(1)
            acc[1] = acc[1] + (flat * flat).sum(1)
            acc[2] += flat.shape[1]
        return record

    handles = [conv.conv.register_forward_hook(hook(name)) for name, conv in convs.items()]
    with torch.no_grad():
        for batch in _calibration_batches(images, imgsz):
            model(batch)
    for h in handles:
        h.remove()
    with torch.no_grad():
        for name, conv in convs.items():
            total, squares, count = sums[name]
            mean = total / count
            var = (squares / count - mean * mean).clamp(min=1e-6)
            bn = conv.bn
            assert bn.running_mean is not None and bn.running_var is not None
            bn.running_mean.copy_(mean.float())
            bn.running_var.copy_(var.float())
            bn.weight.copy_(torch.sqrt(var + bn.eps).float())
            bn.bias.add_(mean.float())
    return model


def write_checkpoint(model: Any, out: Path, source: Path, model_yaml: str, imgsz: int, task: str = "detect"
                     ) -> Path:
    """Save as an ultralytics checkpoint that `shipdet train --model out.pt` starts from."""
    from copy import deepcopy

    import torch
    from ultralytics import __version__

    out.parent.mkdir(parents=True, exist_ok=True)
    ckpt = {"model": deepcopy(model).half(), "ema": None, "epoch": -1, "optimizer": None,
            "train_args": {"model": model_yaml, "imgsz": imgsz, "task": task},
            "date": datetime.now(timezone.utc).isoformat(), "version": __version__,
            "shipdet_unfolded_from": str(source)}
    torch.save(ckpt, out)
    return out


def max_output_difference(model: Any, onnx_path: Path, images: Sequence[Path], imgsz: int) -> float:
    """Largest absolute difference between the rebuilt model's raw output and the ONNX model's (eval mode)."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    batch = _calibration_batches(images, imgsz, batch=len(images))[0]
    with torch.no_grad():
        ours = model.float().eval()(batch)
    ours = ours[0] if isinstance(ours, list | tuple) else ours
    theirs = session.run(None, {session.get_inputs()[0].name: batch.numpy()})[0]
    return float(np.abs(ours.numpy() - theirs).max())


def unfold_model(onnx_path: Path, out: Path, data: Path, model_yaml: str = "yolo11n.yaml", images: int = 64,
                 seed: int = 0) -> dict[str, Any]:
    """`shipdet unfold`: the checkpoint, its parity with the ONNX model, and a run record beside it that carries
    the shipped model's training record, so the card of a model trained from it lists every earlier stage."""
    import json
    import random

    from shipdet.inference.model import card_path, load_model_info
    from shipdet.train.evaluate import split_images

    info = load_model_info(onnx_path)
    train_images = split_images(data, "train")
    if not train_images:
        raise ModelLoadError(f"{data} lists no training images", "unfold needs a few to measure batch statistics")
    random.Random(seed).shuffle(train_images)
    imgsz = int(info.imgsz[0])
    model = unfold_onnx(onnx_path, model_yaml, len(info.names), train_images[:images], imgsz, info.task)
    model.names = dict(info.names)  # else ultralytics names classes by number, and the export records {0: '0'}
    difference = max_output_difference(model, onnx_path, train_images[images:images + 4] or train_images[:4], imgsz)
    write_checkpoint(model, out, onnx_path, model_yaml, imgsz, info.task)
    card_file = card_path(onnx_path)
    card = json.loads(card_file.read_text()) if card_file else {}
    record = {"config": {"model": None}, "command": f"shipdet unfold {onnx_path}",
              "unfolded_from": {"file": onnx_path.name, "sha256": info.sha256, "version": info.version},
              "git_commit": card.get("training", {}).get("git_commit", "unknown"),
              "dataset_sha256": card.get("training", {}).get("dataset_sha256", "unknown"),
              "max_output_difference": difference}
    if card.get("training"):
        record["parent"] = card["training"]
    if card.get("training_metrics"):  # the results.csv they came from stays with the run that trained them
        record["training_metrics"] = card["training_metrics"]
    (out.parent / "shipdet_run.json").write_text(json.dumps(record, indent=2, default=str))
    return record
