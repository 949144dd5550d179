"""The dynamic batcher on its own: requests batched together when several are on their way, a lone one not held."""

import asyncio
import time

import numpy as np
import pytest

from shipdet.inference.engine import Engine
from shipdet.serve.batcher import DetectParams, DynamicBatcher, QueueFullError
from tests.fake_model import detect_model


def _run(engine: Engine, tiles: list[np.ndarray], max_delay_ms: float, stagger_s: float = 0.0
         ) -> tuple[list[int], list[float], list[float]]:
    """Submit each tile as its own request (announced while 'decoding'); return batch sizes, each request's
    latency and each result's box centre x."""
    sizes: list[int] = []

    async def main() -> tuple[list[float], list[float]]:
        batcher = DynamicBatcher(engine, max_batch=8, max_delay_ms=max_delay_ms, queue_size=16,
                                 on_batch=lambda n, _s: sizes.append(n))
        batcher.start()

        async def request(tile: np.ndarray, delay: float) -> tuple[float, float]:
            with batcher.announce():
                await asyncio.sleep(delay)  # stands for decoding in a worker thread
                batch, boxes = engine.preprocess([tile])
            start = time.perf_counter()
            dets, _ = await batcher.submit(batch[0].copy(), boxes[0], DetectParams(conf=0.5, iou=0.45))
            return time.perf_counter() - start, float(dets.xyxy[0, [0, 2]].mean())

        results = await asyncio.gather(*(request(t, i * stagger_s) for i, t in enumerate(tiles)))
        await batcher.stop()
        return [r[0] for r in results], [r[1] for r in results]

    latencies, centres = asyncio.run(main())
    return sizes, latencies, centres


def test_announced_requests_share_a_batch_and_keep_their_own_results(tmp_path):
    engine = Engine(detect_model(tmp_path / "fake.onnx"), providers=["cpu"], streams=1)
    tiles = [np.full((64, 64, 3), v, dtype=np.uint8) for v in (0, 255, 128, 64)]
    sizes, _, centres = _run(engine, tiles, max_delay_ms=2000, stagger_s=0.05)
    assert sizes == [4]  # the first waited for the three still being decoded
    for tile, cx in zip(tiles, centres, strict=True):  # the fake model moves its box with the image's mean
        assert cx == pytest.approx(20 + 20 * float(tile[0, 0, 0]) / 255.0, abs=1e-3)


def test_a_lone_request_is_not_held_for_the_batch_delay(tmp_path):
    engine = Engine(detect_model(tmp_path / "fake.onnx"), providers=["cpu"], streams=1)
    sizes, latencies, _ = _run(engine, [np.zeros((64, 64, 3), np.uint8)], max_delay_ms=2000)
    assert sizes == [1] and latencies[0] < 1.0  # not the 2 s it would wait for company


def test_enqueue_is_all_or_nothing_and_takes_its_places_at_once(tmp_path):
    engine = Engine(detect_model(tmp_path / "fake.onnx"), providers=["cpu"], streams=1)
    batch, boxes = engine.preprocess([np.zeros((64, 64, 3), np.uint8)] * 3)
    tiles = [(batch[i].copy(), boxes[i]) for i in range(3)]
    params = DetectParams(conf=0.5, iou=0.45)

    async def main() -> tuple[int, int]:
        batcher = DynamicBatcher(engine, max_batch=8, max_delay_ms=0, queue_size=3)  # not started: nothing taken
        batcher.enqueue(tiles[:2], params)
        depth = batcher.depth  # counted before anything awaits: no other request can slip in between
        with pytest.raises(QueueFullError):
            batcher.enqueue(tiles[:2], params)  # one place left, two asked: none taken
        return depth, batcher.depth

    assert asyncio.run(main()) == (2, 2)


def test_later_windows_wait_for_room_and_never_take_a_place_held_for_decoding(tmp_path):
    """An admitted tile's later windows go in as places free up; a place held by a tile being decoded stays its."""
    engine = Engine(detect_model(tmp_path / "fake.onnx"), providers=["cpu"], streams=1)
    batch, boxes = engine.preprocess([np.zeros((64, 64, 3), np.uint8)] * 3)
    tiles = [(batch[i].copy(), boxes[i]) for i in range(3)]
    params = DetectParams(conf=0.5, iou=0.45)

    async def main() -> tuple[list[int], int]:
        batcher = DynamicBatcher(engine, max_batch=8, max_delay_ms=0, queue_size=3)  # not started yet
        batcher.enqueue(tiles[:1], params)  # another request's tile
        depths = []
        with batcher.announce():  # a tile being decoded holds one of the two places left
            later = asyncio.create_task(batcher.enqueue_in_turn(tiles, params))
            await asyncio.sleep(0.05)
            depths.append(batcher.depth)  # one window took the one free place, then waited
            assert not later.done()
        await asyncio.sleep(0.05)  # that tile failed to decode: its place is free again
        depths.append(batcher.depth)
        assert not later.done()
        batcher.start()  # the batcher takes the queue: the last window goes in
        futures = await asyncio.wait_for(later, 5)
        results = await asyncio.wait_for(asyncio.gather(*futures), 5)
        await batcher.stop()
        return depths, len(results)

    assert asyncio.run(main()) == ([2, 3], 3)


def test_a_request_that_gives_up_while_waiting_for_room_withdraws_its_windows(tmp_path):
    engine = Engine(detect_model(tmp_path / "fake.onnx"), providers=["cpu"], streams=1)
    batch, boxes = engine.preprocess([np.zeros((64, 64, 3), np.uint8)] * 3)
    tiles = [(batch[i].copy(), boxes[i]) for i in range(3)]

    async def main() -> list[bool]:
        batcher = DynamicBatcher(engine, max_batch=8, max_delay_ms=0, queue_size=2)  # never started: no room
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(batcher.enqueue_in_turn(tiles, DetectParams(conf=0.5, iou=0.45)), 0.1)
        return [batcher.queue.get_nowait().future.cancelled() for _ in range(batcher.depth)]

    assert asyncio.run(main()) == [True, True]  # the two it had queued are skipped by the batcher
