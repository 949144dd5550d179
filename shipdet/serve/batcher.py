"""Dynamic batching across concurrent requests: wait at most `max_delay_ms` to fill up to `max_batch`, and
only while other tiles are being decoded (a lone request is not held back for company that is not coming).

Requests arrive already decoded and letterboxed (in the request's own worker thread); the batcher stacks
them, runs the session in one background thread (off the event loop) and decodes each request's output with
that request's own thresholds. A model with a graph for upsampled imagery (`shipdet.inference.companion`) scores
the tiles the scale path upsampled with that graph: a batch that holds both kinds runs each graph on its own part.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from shipdet.detections import Detections
from shipdet.inference.engine import Engine
from shipdet.inference.postprocess import DEFAULT_MAX_DET, Letterbox, decode_yolo


class QueueFullError(Exception):
    """More requests are waiting than the queue holds."""


@dataclass
class DetectParams:
    conf: float
    iou: float
    classes: list[int] | None = None
    max_det: int = DEFAULT_MAX_DET
    views: int = 1  # each window is scored in this many views and fused (shipdet.inference.views)
    factor: float = 1.0  # the resampling the scale path applied: it chooses the graph (`Engine.for_factor`)


@dataclass
class _Item:
    tensor: NDArray[np.float32]
    box: Letterbox
    params: DetectParams
    future: asyncio.Future[tuple[Detections, dict[str, float]]]
    enqueued: float = field(default_factory=time.perf_counter)


class DynamicBatcher:
    def __init__(self, engine: Engine, max_batch: int, max_delay_ms: float, queue_size: int,
                 on_batch: object = None) -> None:
        self.engine = engine
        self.max_batch = min(max_batch, engine.max_batch)
        self.max_delay = max_delay_ms / 1000.0
        self.queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=queue_size)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shipdet-infer")
        # A batch holding both kinds of tile runs the two graphs side by side: one after the other, the cores one
        # graph's part leaves idle (an odd tile on its streams) would wait for it.
        self._graph_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shipdet-graph")
        self.on_batch = on_batch  # callable(batch_size, seconds) for metrics
        self._task: asyncio.Task[None] | None = None
        self.incoming = 0  # tiles being decoded that will be submitted next (event-loop only)
        self._room_waiters: list[asyncio.Future[None]] = []  # later windows of admitted tiles, waiting for room

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.executor.shutdown(wait=True)
        self._graph_pool.shutdown(wait=True)

    @property
    def depth(self) -> int:
        return self.queue.qsize()

    def enqueue(self, tiles: list[tuple[NDArray[np.float32], Letterbox]], params: DetectParams
                ) -> list[asyncio.Future[tuple[Detections, dict[str, float]]]]:
        """Queue letterboxed tiles now, all or none (QueueFullError): synchronous, so a caller can queue them
        before it yields to the event loop and no other request can take their places in between."""
        if self.queue.maxsize and self.queue.maxsize - self.queue.qsize() < len(tiles):
            raise QueueFullError
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[tuple[Detections, dict[str, float]]]] = []
        for tensor, box in tiles:
            futures.append(loop.create_future())
            self.queue.put_nowait(_Item(tensor, box, params, futures[-1]))
        return futures

    def free_places(self) -> int:
        """Places in the queue that no tile being decoded holds (each holds one from its capacity check)."""
        if not self.queue.maxsize:
            return self.max_batch
        return self.queue.maxsize - self.queue.qsize() - self.incoming

    async def enqueue_in_turn(self, tiles: list[tuple[NDArray[np.float32], Letterbox]], params: DetectParams
                              ) -> list[asyncio.Future[tuple[Detections, dict[str, float]]]]:
        """Queue the later windows of an admitted tile as places free up, never taking the place a tile being
        decoded holds: the tile was let in, so it waits its turn (within its deadline) instead of failing."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[tuple[Detections, dict[str, float]]]] = []
        try:
            while len(futures) < len(tiles):
                free = self.free_places()
                if free <= 0:
                    waiter = loop.create_future()
                    self._room_waiters.append(waiter)
                    await waiter
                    continue
                futures += self.enqueue(tiles[len(futures):len(futures) + free], params)
        except asyncio.CancelledError:
            for future in futures:  # the request gave up: the batcher skips what nobody waits for any more
                future.cancel()
            raise
        return futures

    def _room_changed(self) -> None:
        waiters, self._room_waiters = self._room_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def submit(self, tensor: NDArray[np.float32], box: Letterbox, params: DetectParams
                     ) -> tuple[Detections, dict[str, float]]:
        """Queue one letterboxed tile; returns its detections and timings (queue, inference) in ms."""
        return await self.enqueue([(tensor, box)], params)[0]

    @contextlib.contextmanager
    def announce(self) -> Iterator[None]:
        """Around a request's decoding: tells the batcher a tile is on its way, so it is worth waiting for."""
        self.incoming += 1
        try:
            yield
        finally:
            self.incoming -= 1
            self._room_changed()

    async def _collect(self) -> list[_Item]:
        first = await self.queue.get()
        batch = [first]
        self._room_changed()
        deadline = first.enqueued + self.max_delay
        while len(batch) < self.max_batch:
            if not self.queue.empty():
                batch.append(self.queue.get_nowait())
                self._room_changed()
                continue
            if self.incoming == 0:  # no other tile is on its way: waiting would only add latency
                break
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self.queue.get(), remaining))
                self._room_changed()
            except TimeoutError:
                break
        return [item for item in batch if not item.future.done()]  # drop requests already timed out

    def _infer(self, items: list[_Item]) -> list[Detections | Exception]:
        raw: list[NDArray[np.float32]] = [np.empty(0, np.float32)] * len(items)
        by_graph: dict[int, tuple[Engine, list[int]]] = {}
        for i, item in enumerate(items):
            graph = self.engine.for_factor(item.params.factor)
            by_graph.setdefault(id(graph), (graph, []))[1].append(i)
        parts = list(by_graph.values())
        later = [self._graph_pool.submit(self._run_graph, graph, [items[i].tensor for i in indices])
                 for graph, indices in parts[1:]]
        outputs = [self._run_graph(parts[0][0], [items[i].tensor for i in parts[0][1]])]
        outputs += [future.result() for future in later]
        for (_, indices), output in zip(parts, outputs, strict=True):
            for i, row in zip(indices, output, strict=False):  # zip drops the rows that pad a fixed batch size
                raw[i] = row
        info = self.engine.info
        out: list[Detections | Exception] = []
        for i, item in enumerate(items):
            try:  # each request's thresholds are its own: whatever they do, they fail that request alone
                out.append(decode_yolo(raw[i], item.box, info.task, info.names, item.params.conf, item.params.iou,
                                       item.params.classes, item.params.max_det))
            except Exception as exc:
                out.append(exc)
        return out

    @staticmethod
    def _run_graph(graph: Engine, tensors: list[NDArray[np.float32]]) -> NDArray[np.float32]:
        """One graph's raw output for its tiles of a batch (padded to a fixed batch size where it has one)."""
        batch = np.stack(tensors)
        if graph.fixed_batch and len(tensors) < graph.fixed_batch:
            batch = np.concatenate([batch, np.zeros((graph.fixed_batch - len(tensors), *batch.shape[1:]),
                                                    dtype=batch.dtype)])
        return graph.infer(batch)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = await self._collect()
            if not items:
                continue
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(self.executor, self._infer, items)
            except Exception as exc:  # a failing batch fails its requests, never the batcher
                for item in items:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            seconds = time.perf_counter() - started
            if callable(self.on_batch):
                self.on_batch(len(items), seconds)
            for item, dets in zip(items, results, strict=True):
                if item.future.done():
                    continue
                if isinstance(dets, Exception):
                    item.future.set_exception(dets)
                else:
                    item.future.set_result((dets, {"queue": (started - item.enqueued) * 1000,
                                                   "inference": seconds * 1000}))
