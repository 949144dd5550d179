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


def _onnx_weights(path: Path) -> dict[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:  # onnx raises DecodeError and friends for a corrupt file
        raise ModelLoadError(f"cannot read ONNX model {path}: {exc}") from exc
    return {init.name: numpy_helper.to_array(init) for init in graph.initializer}


def _calibration_batches(images: Sequence[Path], imgsz: int, batch: int = 8) -> list[Any]:
    """Letterboxed training images as float tensors in [0, 1], as ultralytics feeds them."""
    import torch
    from PIL import Image

    tensors = []
    for path in images:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
            scale = imgsz / max(rgb.size)
            rgb = rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))))
            canvas = Image.new("RGB", (imgsz, imgsz), (114, 114, 114))
            canvas.paste(rgb, ((imgsz - rgb.width) // 2, (imgsz - rgb.height) // 2))
        tensors.append(torch.from_numpy(np.asarray(canvas).copy()).permute(2, 0, 1).float() / 255)
    return [torch.stack(tensors[i:i + batch]) for i in range(0, len(tensors), batch)]


def unfold_onnx(onnx_path: Path, model_yaml: str, nc: int, images: Sequence[Path], imgsz: int) -> Any:
    """A trainable ultralytics model with the weights of `onnx_path` (same architecture as `model_yaml`)."""
    import torch
    from ultralytics.nn.modules import Conv
    from ultralytics.nn.tasks import DetectionModel

    weights = _onnx_weights(onnx_path)
    model = DetectionModel(model_yaml, nc=nc, verbose=False)
    model.eval()
    convs = {name: m for name, m in model.named_modules() if isinstance(m, Conv)}
    missing = []
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Conv2d) and f"{name}.weight" in weights:
                module.weight.copy_(torch.from_numpy(weights[f"{name}.weight"]))
                if module.bias is not None:
                    module.bias.copy_(torch.from_numpy(weights[f"{name}.bias"]))
        for name, conv in convs.items():
            key = f"{name}.conv"
            if f"{key}.weight" not in weights:
                missing.append(key)
                continue
            conv.conv.weight.copy_(torch.from_numpy(weights[f"{key}.weight"]))
            bn = conv.bn
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
            bn.running_mean.copy_(mean.float())
            bn.running_var.copy_(var.float())
            bn.weight.copy_(torch.sqrt(var + bn.eps).float())
            bn.bias.add_(mean.float())
    return model


def write_checkpoint(model: Any, out: Path, source: Path, model_yaml: str, imgsz: int) -> Path:
    """Save as an ultralytics checkpoint that `shipdet train --model out.pt` starts from."""
    from copy import deepcopy

    import torch
    from ultralytics import __version__

    out.parent.mkdir(parents=True, exist_ok=True)
    ckpt = {"model": deepcopy(model).half(), "ema": None, "epoch": -1, "optimizer": None,
            "train_args": {"model": model_yaml, "imgsz": imgsz, "task": "detect"},
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
