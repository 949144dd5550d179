"""The inference engine shared by the service and archive re-scoring: images in, `Detections` out.

No torch here: onnxruntime only. On CUDA the input and output stay bound to the device (IO binding).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shipdet.detections import Detections
from shipdet.errors import ModelLoadError
from shipdet.inference.decode import decode_image
from shipdet.inference.model import ModelInfo, file_sha256, load_model_info, resolve_providers, session_options
from shipdet.inference.operating_point import is_upsampled
from shipdet.inference.postprocess import DEFAULT_MAX_DET, Letterbox, decode_yolo, letterbox_into

log = logging.getLogger(__name__)

def cpu_count() -> int:
    """Cores this process may use (its affinity mask, e.g. a container's or a Ray worker's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


ImageInput = NDArray[np.uint8] | bytes  # decoded pixels (H, W, 3) or an encoded JPEG / PNG / TIFF


class Engine:
    """An ONNX YOLO detector. `detect()` runs any number of images (pixels or encoded bytes).

    Decoding and letterboxing are single-threaded numpy / Pillow work that releases the GIL. In batched mode
    (CUDA, or one stream) they run on `prep_threads` threads and the next batch is prepared while the current
    one is in the session, so the network, not the preparation, sets the pace.

    On a CPU one session spreading each convolution over all cores leaves them partly idle; `streams` instead
    runs that many single-threaded inferences side by side, each taking one tile from bytes to detections (as
    Triton's CPU instance groups do): 1.3x the throughput on 2 cores (docs/benchmarks.md). A lone tile still
    goes to the all-cores session, so latency at low load does not suffer. On CUDA there is one stream.
    """

    def __init__(self, model: Path, providers: Sequence[str] = ("cuda", "cpu"), max_batch: int = 16,
                 threads: int = 0, verify: bool = True, trt_cache: Path | None = None,
                 prep_threads: int = 0, streams: int = 0, companion: bool = True) -> None:
        """`verify`: refuse a model whose sha256 differs from its card's, or a companion graph whose sha256 differs
        from the one the model names; `companion`: load the model's graph for upsampled imagery where it names one
        (`for_factor`)."""
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
        self.upsampled: Engine | None = None  # the companion graph scoring imagery the scale path upsampled
        if companion and self.info.upsampled_graph is not None:
            self.upsampled = self._load_companion(verify, providers=providers, max_batch=max_batch, threads=threads,
                                                  trt_cache=trt_cache, prep_threads=prep_threads, streams=streams)
        self.on_cuda = self.providers[0] in ("CUDAExecutionProvider", "TensorrtExecutionProvider")
        # An operator who pins `threads` gets exactly that many; streams then default to one.
        self.streams = streams or (cpu_count() if threads == 0 else 1)
        if self.on_cuda or self.fixed_batch not in (None, 1):
            self.streams = 1
        self._lock = threading.Lock()  # IO binding objects are not shared between threads
        self._prep_pool = ThreadPoolExecutor(prep_threads or min(4, cpu_count()), thread_name_prefix="shipdet-prep")
        self._stage = ThreadPoolExecutor(1, thread_name_prefix="shipdet-next-batch")
        # Input buffers are reused: a fresh 20 MB array costs its page faults again on every batch.
        self._spare_batches: queue.SimpleQueue[NDArray[np.float32]] = queue.SimpleQueue()
        self._tile_buffer = threading.local()
        self._stream_session: Any = None
        self._stream_pool: ThreadPoolExecutor | None = None
        if self.streams > 1:
            self._stream_session = ort.InferenceSession(str(model), sess_options=session_options(1),
                                                        providers=["CPUExecutionProvider"])
            self._stream_pool = ThreadPoolExecutor(self.streams, thread_name_prefix="shipdet-stream")
        log.info("model %s (%s, %s) on %s, %d stream(s)%s", self.info.path.name, self.info.task,
                 self.info.sha256[:12], ", ".join(self.providers), self.streams,
                 f"; upsampled imagery: {self.upsampled.info.path.name}" if self.upsampled is not None else "")

    def _load_companion(self, verify: bool, **engine_args: Any) -> Engine:
        ref = self.info.upsampled_graph
        assert ref is not None
        path, model = ref.beside(self.info.path), self.info.path
        if not path.is_file():
            raise ModelLoadError(f"{model} names {ref.file} as its graph for upsampled imagery; it is not beside it",
                                 "copy it beside the model (`shipdet export --upsampled-weights` writes both)")
        if verify and (sha := file_sha256(path)) != ref.sha256:
            raise ModelLoadError(f"{path} has sha256 {sha[:12]}..., {model.name} names {ref.sha256[:12]}...",
                                 "the file was changed or corrupted: re-export the pair")
        other = Engine(path, verify=False, companion=False, **engine_args)
        a, b = self.info, other.info
        pairs = (("task", a.task, b.task), ("classes", a.names, b.names), ("input size", a.imgsz, b.imgsz),
                 ("batch size", self.fixed_batch, other.fixed_batch))
        differ = [what for what, mine, theirs in pairs if mine != theirs]
        if differ:
            other.close()
            raise ModelLoadError(f"{path.name} differs from {model.name} in its {', '.join(differ)}",
                                 "the two graphs of a model must take the same input and give the same classes")
        return other

    def for_factor(self, factor: float) -> Engine:
        """The graph that scores imagery resampled by `factor` before scoring (1: as posted): the companion for
        upsampled imagery where the model has one, else this one."""
        return self.upsampled if self.upsampled is not None and is_upsampled(factor) else self

    @property
    def input_size(self) -> tuple[int, int]:
        return self.info.imgsz

    def _place(self, image: ImageInput, out: NDArray[np.float32]) -> Letterbox:
        pixels = decode_image(image).pixels if isinstance(image, bytes) else image
        return letterbox_into(pixels, out, self.input_size)

    def preprocess(self, images: Sequence[ImageInput]) -> tuple[NDArray[np.float32], list[Letterbox]]:
        """Decode (when given bytes) and letterbox each image into one input batch, in parallel."""
        n = self.fixed_batch or len(images)
        batch = self._batch_buffer((n, 3, *self.input_size))
        boxes = list(self._prep_pool.map(self._place, images, batch))
        if n > len(images):
            batch[len(images):] = 0.0
        return batch, boxes

    def _batch_buffer(self, shape: tuple[int, ...]) -> NDArray[np.float32]:
        try:
            spare = self._spare_batches.get_nowait()
        except queue.Empty:
            return np.empty(shape, dtype=np.float32)
        return spare if spare.shape == shape else np.empty(shape, dtype=np.float32)

    def _recycle(self, batch: NDArray[np.float32]) -> None:
        if self._spare_batches.qsize() < 2:  # one in the session, one being prepared
            self._spare_batches.put(batch)

    def infer(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        """Raw model output for a preprocessed batch (on CPU with streams, one tile per stream)."""
        if self._stream_pool is not None and len(batch) > 1:
            return np.concatenate(list(self._stream_pool.map(self._infer_stream, np.split(batch, len(batch)))))
        if not self.on_cuda:
            return np.asarray(self.session.run([self.output_name], {self.input_name: batch})[0])
        import onnxruntime as ort

        with self._lock:
            binding = self.session.io_binding()
            binding.bind_ortvalue_input(self.input_name, ort.OrtValue.ortvalue_from_numpy(batch, "cuda", 0))
            binding.bind_output(self.output_name, "cuda", 0)
            self.session.run_with_iobinding(binding)
            return np.asarray(binding.copy_outputs_to_cpu()[0])

    def _infer_stream(self, tile: NDArray[np.float32]) -> NDArray[np.float32]:
        return np.asarray(self._stream_session.run([self.output_name], {self.input_name: tile})[0])

    def postprocess(self, raw: NDArray[np.float32], boxes: list[Letterbox], conf: float = 0.25, iou: float = 0.45,
                    classes: list[int] | None = None, max_det: int = DEFAULT_MAX_DET) -> list[Detections]:
        return [decode_yolo(raw[i], box, self.info.task, self.info.names, conf, iou, classes, max_det)
                for i, box in enumerate(boxes)]

    def detect(self, images: Sequence[ImageInput], conf: float = 0.25, iou: float = 0.45,
               classes: list[int] | None = None, max_det: int = DEFAULT_MAX_DET) -> list[Detections]:
        """Detections for each image (pixels or encoded bytes), in the image's own pixels."""
        if self._stream_pool is not None and len(images) > 1:
            return list(self._stream_pool.map(lambda image: self._detect_stream(image, conf, iou, classes, max_det),
                                              images))
        chunks = [images[start:start + self.max_batch] for start in range(0, len(images), self.max_batch)]
        results: list[Detections] = []
        upcoming: Future[tuple[NDArray[np.float32], list[Letterbox]]] | None = None
        for k, chunk in enumerate(chunks):
            batch, boxes = upcoming.result() if upcoming is not None else self.preprocess(chunk)
            upcoming = self._stage.submit(self.preprocess, chunks[k + 1]) if k + 1 < len(chunks) else None
            raw = self.infer(batch)
            self._recycle(batch)
            results += self.postprocess(raw, boxes, conf, iou, classes, max_det)
        return results

    def _detect_stream(self, image: ImageInput, conf: float, iou: float, classes: list[int] | None,
                       max_det: int) -> Detections:
        """One tile from bytes or pixels to detections on this stream's thread and single-threaded session."""
        tile = getattr(self._tile_buffer, "array", None)
        if tile is None:
            tile = self._tile_buffer.array = np.empty((1, 3, *self.input_size), dtype=np.float32)
        box = self._place(image, tile[0])
        return self.postprocess(self._infer_stream(tile), [box], conf, iou, classes, max_det)[0]

    def close(self) -> None:
        if self.upsampled is not None:
            self.upsampled.close()
        for pool in (self._stream_pool, self._stage, self._prep_pool):
            if pool is not None:
                pool.shutdown(wait=True)

    def warmup(self) -> None:
        h, w = self.input_size
        blank = np.zeros((h, w, 3), dtype=np.uint8)
        self.detect([blank])
        if self._stream_pool is not None:
            self.detect([blank] * self.streams)
        if self.upsampled is not None:
            self.upsampled.warmup()
