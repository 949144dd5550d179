"""The inference engine shared by the service and archive re-scoring: images in, `Detections` out.

No torch here: onnxruntime only. On CUDA the input and output stay bound to the device (IO binding).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from shipdet.serve.model import ModelInfo, load_model_info, resolve_providers, session_options
from shipdet.serve.postprocess import Letterbox, decode_yolo, letterbox_into

from shipdet.detections import Detections

log = logging.getLogger(__name__)


class Engine:
    """An ONNX YOLO detector. `detect()` runs any number of images in batches of `max_batch`."""

    def __init__(self, model: Path, providers: Sequence[str] = ("cuda", "cpu"), max_batch: int = 16,
                 threads: int = 0, verify: bool = True, trt_cache: Path | None = None) -> None:
        import onnxruntime as ort

        self.info: ModelInfo = load_model_info(Path(model), verify=verify)
        self.session = ort.InferenceSession(str(model), sess_options=session_options(threads),
                                            providers=resolve_providers(list(providers), trt_cache))
        self.providers: list[str] = self.session.get_providers()  # the ones in use, not merely available
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        batch_dim = self.session.get_inputs()[0].shape[0]
        self.fixed_batch = batch_dim if isinstance(batch_dim, int) else None
        self.max_batch = self.fixed_batch or max_batch
        self.on_cuda = self.providers[0] in ("CUDAExecutionProvider", "TensorrtExecutionProvider")
        self._lock = threading.Lock()  # IO binding objects are not shared between threads
        log.info("model %s (%s, %s) on %s", self.info.path.name, self.info.task, self.info.sha256[:12],
                 ", ".join(self.providers))

    @property
    def input_size(self) -> tuple[int, int]:
        return self.info.imgsz

    def preprocess(self, images: Sequence[NDArray[np.uint8]]) -> tuple[NDArray[np.float32], list[Letterbox]]:
        h, w = self.input_size
        n = self.fixed_batch or len(images)
        batch = np.empty((n, 3, h, w), dtype=np.float32)
        boxes = [letterbox_into(img, batch[i], (h, w)) for i, img in enumerate(images)]
        if n > len(images):
            batch[len(images):] = 0.0
        return batch, boxes

    def infer(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        if not self.on_cuda:
            return np.asarray(self.session.run([self.output_name], {self.input_name: batch})[0])
        import onnxruntime as ort

        with self._lock:
            binding = self.session.io_binding()
            binding.bind_ortvalue_input(self.input_name, ort.OrtValue.ortvalue_from_numpy(batch, "cuda", 0))
            binding.bind_output(self.output_name, "cuda", 0)
            self.session.run_with_iobinding(binding)
            return np.asarray(binding.copy_outputs_to_cpu()[0])

    def postprocess(self, raw: NDArray[np.float32], boxes: list[Letterbox], conf: float = 0.25, iou: float = 0.45,
                    classes: list[int] | None = None, max_det: int = 300) -> list[Detections]:
        return [decode_yolo(raw[i], box, self.info.task, self.info.names, conf, iou, classes, max_det)
                for i, box in enumerate(boxes)]

    def detect(self, images: Sequence[NDArray[np.uint8]], conf: float = 0.25, iou: float = 0.45,
               classes: list[int] | None = None, max_det: int = 300) -> list[Detections]:
        """Detections for each image, in the image's own pixels."""
        results: list[Detections] = []
        for start in range(0, len(images), self.max_batch):
            chunk = images[start:start + self.max_batch]
            batch, boxes = self.preprocess(chunk)
            results += self.postprocess(self.infer(batch), boxes, conf, iou, classes, max_det)
        return results

    def warmup(self) -> None:
        h, w = self.input_size
        self.detect([np.zeros((h, w, 3), dtype=np.uint8)])
