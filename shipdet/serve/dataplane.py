"""The one request path every protocol shares (KServe's data plane): a tile's bytes and validated parameters in,
a typed `TileResult` out. `/v1` and `/v2` only parse their protocol into `DetectParameters` and render the result."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shipdet.detections import Detections
from shipdet.errors import ShipdetError
from shipdet.georef import GeoReference, georeference
from shipdet.inference.decode import DecodedImage, decode_image
from shipdet.inference.postprocess import Letterbox, letterbox_into
from shipdet.inference.views import fuse_views, keep_best, unview, view_conf, view_pixels, views_for
from shipdet.scale import ScaleRange, plausible_gsd, resample, resampled_size
from shipdet.serve.batcher import DetectParams, DynamicBatcher, QueueFullError
from shipdet.serve.errors import ApiError, classify
from shipdet.serve.params import DetectParameters
from shipdet.serve.state import ServiceState
from shipdet.tiling import Window, merge_windows, tile_windows

SEAM_OVERLAP = 128  # pixels shared by neighbouring windows of a resampled tile: as `shipdet rescore`'s (why: there)


@dataclass
class TileResult:
    """One tile's answer: detections in the tile's own pixels (georeferenced where it is), and what was done."""

    detections: Detections
    ref: GeoReference | None
    width: int
    height: int
    bands: int
    source_dtype: str
    gsd_m: float | None
    factor: float
    windows: int
    params: DetectParams
    max_det_reached: bool = False
    timing_ms: dict[str, float] = field(default_factory=dict)
    graph: str = "main"  # "upsampled": the model's graph for upsampled imagery scored it

    def summary(self) -> dict[str, Any]:
        """The JSON fields every protocol may report beside the detections."""
        return {"image": {"width": self.width, "height": self.height, "bands": self.bands,
                          "dtype": self.source_dtype, "georeferenced": self.ref is not None},
                "scale": {"gsd_m": self.gsd_m, "factor": round(self.factor, 6), "windows": self.windows,
                          "graph": self.graph},
                "thresholds": {"conf": self.params.conf, "iou": self.params.iou, "max_det": self.params.max_det,
                               "max_det_reached": self.max_det_reached, "views": self.params.views},
                "timing_ms": {k: round(v, 3) for k, v in self.timing_ms.items()}}


@dataclass(frozen=True)
class TileError:
    """One tile's own fault (bad bytes, too large, ...): the status and code every protocol renders its way."""

    status: int
    code: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)

    def as_exception(self) -> ApiError:
        return ApiError(self.status, self.code, self.message, self.detail)


def plan_windows(pixels: NDArray[np.uint8], input_size: tuple[int, int], resampled: bool,
                 scored_gsd_m: float | None = None, coarsest_m: float | None = None) -> list[Window]:
    """The tile whole (letterboxed, as it always was), or model-sized windows where letterboxing would undo the
    scale path: a resampled tile larger than the model's input, or a tile of known GSD that shrinking to the
    input would make coarser than the model's range (a large aerial scene at 0.3 m letterboxed whole to 512 px
    is scored at several metres a pixel, where cars pass for ships)."""
    height, width = pixels.shape[:2]
    shrink = max(height / input_size[0], width / input_size[1])
    coarsened = scored_gsd_m is not None and coarsest_m is not None and scored_gsd_m * shrink > coarsest_m
    if shrink <= 1 or not (resampled or coarsened):
        return [Window(0, 0, width, height)]
    side = min(input_size)
    return tile_windows(width, height, side, min(SEAM_OVERLAP, side // 4))


def prepare_tile(data: bytes, params: DetectParameters, given_ref: GeoReference | None, max_pixels: int,
                 input_size: tuple[int, int], scale_range: ScaleRange | None,
                 view_count: Callable[[float], int],
                 max_inferences: int | None = None, first_inputs: int = 1) -> PreparedTile:
    """Decode, resample into the model's scale range where the GSD is known, plan the windows, and make the first
    `first_inputs` model inputs (each window letterboxed in each of its views, `view_count` of the resampling factor):
    a tile's CPU work before it joins a batch (in a decode thread). The rest are made a batch at a time as the tile
    takes its turns."""
    decoded = decode_image(data, max_pixels)
    ref = given_ref or decoded.georef
    height, width = decoded.pixels.shape[:2]
    if ref is not None:
        lon, lat = ref.pixel_to_lonlat([0, width, 0, width], [0, 0, height, height])
        if not (np.isfinite(lon).all() and np.isfinite(lat).all() and (np.abs(lat) <= 90).all()):
            raise ApiError(422, "bad_georeference", "the georeference places the tile outside the Earth",
                           {"hint": "check the transform's units against the CRS"})
    gsd = params.gsd if params.gsd is not None else (ref.gsd_m(width / 2, height / 2) if ref is not None else None)
    if gsd is not None and not plausible_gsd(gsd):  # only a georeference can get here: `gsd=` is validated
        raise ApiError(422, "bad_georeference", f"the georeference implies {gsd:g} m per pixel",
                       {"hint": "check the transform's units against the CRS, or pass gsd="})
    factor = scale_range.factor_for(gsd) if scale_range is not None else 1.0
    pixels = decoded.pixels
    if factor != 1.0:
        new_w, new_h = resampled_size(width, height, factor)
        if new_w * new_h > max_pixels:
            raise ApiError(413, "image_too_large", f"resampled x{factor:.2f} for its GSD ({gsd:g} m), the tile "
                           f"would be {new_w}x{new_h} pixels, over the limit of {max_pixels}",
                           {"max_pixels": max_pixels, "scale_factor": factor})
        pixels = resample(pixels, factor)
    windows = plan_windows(pixels, input_size, factor != 1.0, None if gsd is None else gsd / factor,
                           None if scale_range is None else scale_range.coarsest_m)
    views = view_count(factor)
    if max_inferences is not None and len(windows) * views > max_inferences:
        raise ApiError(413, "image_too_large", f"scored in {views} views, the tile's {len(windows)} windows would "
                       f"need {len(windows) * views} model inputs, over the limit of {max_inferences}",
                       {"windows": len(windows), "views": views, "max_tile_inferences": max_inferences,
                        "hint": "ask for fewer views, or send smaller tiles"})
    tile = PreparedTile(decoded, ref, gsd, factor, pixels, windows, input_size, views)
    tile.first = tile.inputs(0, min(first_inputs, tile.count))
    return tile


@dataclass
class PreparedTile:
    decoded: DecodedImage
    ref: GeoReference | None
    gsd_m: float | None
    factor: float
    pixels: NDArray[np.uint8]  # resampled into the model's scale range
    windows: list[Window]
    input_size: tuple[int, int]
    views: int = 1
    first: list[tuple[NDArray[np.float32], Letterbox]] = field(default_factory=list)  # made before queueing

    @property
    def scored_size(self) -> tuple[int, int]:
        """Width, height after resampling."""
        return self.pixels.shape[1], self.pixels.shape[0]

    @property
    def count(self) -> int:
        """Model inputs in all: each window in each view."""
        return len(self.windows) * self.views

    def inputs(self, start: int, stop: int) -> list[tuple[NDArray[np.float32], Letterbox]]:
        """Model inputs `start` to `stop` (window by window, each in its views in order). Made on demand: a tile
        resampled to the size limit has hundreds of windows, 3 MiB each at 512 px, and holding them all from the
        start would let one request take the memory of every other."""
        made = []
        for k in range(start, stop):
            win = self.windows[k // self.views]
            crop = self.pixels[win.row:win.row + win.height, win.col:win.col + win.width]
            tensor = np.empty((3, *self.input_size), dtype=np.float32)
            view = views_for(self.views)[k % self.views]
            made.append((tensor, letterbox_into(view_pixels(crop, view), tensor, self.input_size)))
        return made

    def fused(self, found: list[Detections], params: DetectParams) -> tuple[list[Detections], bool]:
        """Each window's detections, its views fused and cut at the request's threshold and cap, and whether any
        view or window reached the cap."""
        reached = any(len(d) >= params.max_det for d in found)
        if self.views == 1:
            return found, reached
        out = []
        for k, win in enumerate(self.windows):
            per_view = [unview(found[k * self.views + j], view, win.width, win.height)
                        for j, view in enumerate(views_for(self.views))]
            fused, more = keep_best(fuse_views(per_view), params.conf, params.max_det)
            reached = reached or more
            out.append(fused)
        return out, reached


async def _await_in_batches(batcher: DynamicBatcher, tile: PreparedTile, pool: Executor | None,
                            queued: list[asyncio.Future[tuple[Detections, dict[str, float]]]], params: DetectParams
                            ) -> list[tuple[Detections, dict[str, float]]]:
    """A tile's inputs, a batch's worth at a time (the first already `queued`): a large resampled tile takes
    its turns in the queue instead of filling it (and turning other clients away), and waits for room instead
    of failing when other clients filled it meanwhile. Each batch's inputs are made (in `pool`) while the one
    before is scored, so a tile holds about two batches of inputs, not all of them."""
    loop = asyncio.get_running_loop()
    starts = range(len(queued), tile.count, batcher.max_batch)

    def make(start: int) -> asyncio.Future[list[tuple[NDArray[np.float32], Letterbox]]]:
        stop = min(start + batcher.max_batch, tile.count)
        if stop <= len(tile.first):  # made with the tile, in its decode thread
            made = loop.create_future()
            made.set_result(tile.first[start:stop])
            return made
        return loop.run_in_executor(pool, tile.inputs, start, stop)

    coming = make(starts[0]) if starts else None
    tile.first = []  # the batcher and `coming` hold what is still to score
    results = list(await asyncio.gather(*queued))
    for k in range(len(starts)):
        assert coming is not None
        later = await batcher.enqueue_in_turn(await coming, params)
        coming = make(starts[k + 1]) if k + 1 < len(starts) else None
        results += await asyncio.gather(*later)
    return results


def _always(views: int) -> Callable[[float], int]:
    return lambda factor: views


async def detect_tile(svc: ServiceState, data: bytes, q: DetectParameters, given_ref: GeoReference | None = None
                      ) -> TileResult:
    """One tile through the one request path every protocol shares: decode, resample, letterbox, batch."""
    started = time.perf_counter()
    engine = svc.engine_or_503()
    batcher = svc.batcher
    assert batcher is not None  # engine_or_503 guarantees it
    loop = asyncio.get_running_loop()
    deadline = started + svc.settings.request_timeout_s  # one deadline for decoding and inference together
    svc.check_capacity()
    queued: list[asyncio.Future[tuple[Detections, dict[str, float]]]] = []
    try:
        with batcher.announce():  # the tile counts against the queue from its capacity check until it is in it
            params = q.batch_params(svc.default_conf(), svc.default_iou(), svc.default_views())
            if params.views > svc.settings.max_views:
                raise ApiError(422, "invalid_request", f"views={params.views} is over this service's limit of "
                               f"{svc.settings.max_views}", {"max_views": svc.settings.max_views})
            tile = await asyncio.wait_for(
                loop.run_in_executor(svc.decode_pool, prepare_tile, data, q, given_ref, svc.settings.max_pixels,
                                     engine.input_size, engine.info.scale_range,
                                     svc.default_views if q.views is None else _always(q.views),
                                     svc.settings.max_tile_inferences, 1 + batcher.max_batch),
                max(deadline - time.perf_counter(), 0.001))
            # The model's threshold and views for what the scale path made of the tile, unless the request set them.
            params = replace(params, conf=svc.default_conf(tile.factor, tile.views) if q.conf is None else params.conf,
                             views=tile.views, factor=tile.factor)
            # A view is decoded at conf / views: a ship no view scores that high cannot reach conf fused.
            per_view = replace(params, conf=view_conf(params.conf, params.views))
            queued = batcher.enqueue(tile.first[:1], per_view)  # the one place its capacity check held for it
        results = await asyncio.wait_for(_await_in_batches(batcher, tile, svc.decode_pool, queued, per_view),
                                         max(deadline - time.perf_counter(), 0.001))
    except QueueFullError:
        raise svc.queue_full() from None
    except TimeoutError:
        svc.metrics.reject("deadline")
        raise ApiError(504, "deadline_exceeded", f"no result within {svc.settings.request_timeout_s} s") from None
    finally:
        for future in queued:  # timed out or abandoned: the batcher skips what nobody waits for any more
            future.cancel()
    # A window that hit the cap may hold more ships than it reported: the answer says so instead of a silent count.
    found, reached = tile.fused([d for d, _ in results], params)
    dets = found[0]
    timing = {k: max(t[k] for _, t in results) for k in results[0][1]}
    if len(tile.windows) > 1:
        per_window = [(win, d.shifted(win.col, win.row)) for win, d in zip(tile.windows, found, strict=True)]
        dets = merge_windows(per_window, tile.scored_size, iou_threshold=params.iou)
        if len(dets) > params.max_det:  # the cap is per tile, however many windows scored it
            dets, reached = dets[np.argsort(-dets.score, kind="stable")[:params.max_det]], True
    height, width = tile.decoded.pixels.shape[:2]
    if tile.factor != 1.0:
        dets = dets.scaled(width / tile.scored_size[0], height / tile.scored_size[1])
    if tile.ref is not None:
        dets = georeference(dets, tile.ref)
    timing["total"] = (time.perf_counter() - started) * 1000
    decoded = tile.decoded
    graph = "main" if engine.for_factor(tile.factor) is engine else "upsampled"
    return TileResult(dets, tile.ref, int(width), int(height), decoded.bands, decoded.source_dtype, tile.gsd_m,
                      tile.factor, len(tile.windows), params, reached, timing, graph)


async def detect_tiles(svc: ServiceState, tiles: list[bytes], params: DetectParameters,
                       given_ref: GeoReference | None = None) -> list[TileResult | TileError]:
    """Every tile of one request through `detect_tile`, results in order. A tile's own fault is its `TileError`;
    what concerns the whole request (overload, deadline, shutdown, a fault of the service) raises."""

    async def one(data: bytes) -> TileResult | TileError:
        try:
            return await detect_tile(svc, data, params, given_ref)
        except (ApiError, ShipdetError) as exc:
            known = classify(exc)
            if known is None or known[0] >= 500:
                raise
            return TileError(*known)

    started = time.perf_counter()
    try:
        results = list(await asyncio.gather(*(one(t) for t in tiles)))
    except BaseException:
        svc.stats.request(len(tiles), time.perf_counter() - started, ok=False)
        raise
    ok = not any(isinstance(r, TileError) for r in results)
    svc.stats.request(len(tiles), time.perf_counter() - started, ok=ok)
    return results
