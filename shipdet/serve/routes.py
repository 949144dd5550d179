"""The native API: /v1/detect, /v1/detect/batch, /v1/models, health and metrics."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from numpy.typing import NDArray
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shipdet.errors import ShipdetError
from shipdet.formats import detection_records, to_geojson
from shipdet.georef import GeoReference, georeference
from shipdet.inference.decode import DecodedImage, decode_image
from shipdet.inference.postprocess import Letterbox, letterbox_into
from shipdet.scale import ScaleRange, resample, resampled_size
from shipdet.serve.auth import require_api_key
from shipdet.serve.batcher import QueueFullError
from shipdet.serve.errors import ApiError, classify
from shipdet.serve.params import DetectParameters, parse_parameters
from shipdet.serve.schemas import BATCH_BODY, ERRORS, IMAGE_BODY, BatchResponse, DetectResponse, ErrorResponse
from shipdet.serve.state import ServiceState
from shipdet.tiling import Window, merge_windows, tile_windows

IMAGE_TYPES = {"image/jpeg", "image/jpg", "image/png", "image/tiff", "application/octet-stream"}
DETECT_PARAMS = {"conf", "iou", "classes", "transform", "crs", "geometry", "max_det", "gsd"}
SEAM_OVERLAP = 64  # pixels shared by neighbouring windows of a resampled tile

router = APIRouter()


def state(request: Request) -> ServiceState:
    svc: ServiceState = request.app.state.service
    return svc


def known_params(allowed: set[str]) -> Callable[[Request], Coroutine[Any, Any, None]]:
    async def check(request: Request) -> None:
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            raise ApiError(422, "unknown_parameter", f"unknown query parameter(s): {', '.join(unknown)}",
                           {"allowed": sorted(allowed)})
    return check


class DetectQuery:
    """`/v1`'s query string: the shared `DetectParameters` (limits declared there, once) and a georeference."""

    def __init__(
        self,
        conf: Annotated[float | None, Query(description="Confidence threshold, 0-1.")] = None,
        iou: Annotated[float | None, Query(description="NMS IoU threshold, 0-1.")] = None,
        classes: Annotated[str | None, Query(description="Class ids, e.g. 0,2")] = None,
        transform: Annotated[str | None, Query(pattern=r"^\s*-?[\d.eE+-]+(\s*,\s*-?[\d.eE+-]+){5}\s*$",
                                               description="Affine a,b,c,d,e,f (pixel -> CRS); needs crs.")] = None,
        crs: Annotated[str | None, Query(description="CRS of the transform, e.g. EPSG:32653.")] = None,
        geometry: Annotated[str, Query(description="GeoJSON geometry: point or box.")] = "point",
        max_det: Annotated[int, Query(description="Most detections per tile, 1-3000.")] = 300,
        gsd: Annotated[float | None, Query(description=DetectParameters.model_fields["gsd"].description)] = None,
    ) -> None:
        given = {"conf": conf, "iou": iou, "classes": classes, "geometry": geometry, "max_det": max_det, "gsd": gsd}
        self.params = parse_parameters({k: v for k, v in given.items() if v is not None})
        self.geometry = self.params.geometry
        self.ref: GeoReference | None = None
        if (transform is None) != (crs is None):
            raise ApiError(422, "bad_georeference", "give both `transform` and `crs`, or neither")
        if transform is not None and crs is not None:
            try:
                coeffs = [float(v) for v in transform.split(",")]
            except ValueError:
                raise ApiError(422, "bad_georeference", "transform must be six numbers a,b,c,d,e,f") from None
            if not all(math.isfinite(c) for c in coeffs):
                raise ApiError(422, "bad_georeference", "transform coefficients must be finite numbers")
            self.ref = GeoReference.from_parts(coeffs, crs)


async def read_tiles(request: Request, max_tiles: int) -> list[tuple[str, bytes]]:
    """The image(s) of a request: a raw image body, or the files of a multipart form."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        try:
            form = await request.form(max_files=max_tiles + 1, max_fields=max_tiles + 8)
        except Exception as exc:  # starlette's multipart errors: malformed, too many parts
            if "Too many files" in str(exc):
                raise ApiError(413, "too_many_tiles", f"at most {max_tiles} tiles per request") from None
            raise ApiError(422, "bad_multipart", f"malformed multipart body: {exc}") from None
        files = [(str(getattr(v, "filename", "") or k), await v.read()) for k, v in form.multi_items()
                 if hasattr(v, "read")]
        await form.close()
        if not files:
            raise ApiError(422, "no_image", "the multipart form holds no file")
        if len(files) > max_tiles:
            raise ApiError(413, "too_many_tiles", f"{len(files)} tiles sent, at most {max_tiles} per request",
                           {"max_tiles": max_tiles})
        return files
    if ctype and ctype not in IMAGE_TYPES:
        raise ApiError(415, "unsupported_media_type", f"content type {ctype!r} is not supported",
                       {"supported": sorted(IMAGE_TYPES | {"multipart/form-data"})})
    body = await request.body()
    if not body:
        raise ApiError(422, "empty_body", "the request body is empty", {"hint": "send the tile's bytes"})
    return [("body", body)]


def plan_windows(pixels: NDArray[np.uint8], input_size: tuple[int, int], resampled: bool) -> list[Window]:
    """The tile whole (letterboxed, as it always was), or model-sized windows where resampling made it larger
    than the model's input (letterboxing it would undo the resampling)."""
    height, width = pixels.shape[:2]
    side = min(input_size)
    if not resampled or (width <= input_size[1] and height <= input_size[0]):
        return [Window(0, 0, width, height)]
    return tile_windows(width, height, side, min(SEAM_OVERLAP, side // 4))


def prepare_tile(data: bytes, params: DetectParameters, given_ref: GeoReference | None, max_pixels: int,
                 input_size: tuple[int, int], scale_range: ScaleRange | None) -> PreparedTile:
    """Decode, resample into the model's scale range where the GSD is known, and letterbox each window: all of a
    tile's CPU work before it joins a batch (in a decode thread)."""
    decoded = decode_image(data, max_pixels)
    ref = given_ref or decoded.georef
    height, width = decoded.pixels.shape[:2]
    if ref is not None:
        lon, lat = ref.pixel_to_lonlat([0, width, 0, width], [0, 0, height, height])
        if not (np.isfinite(lon).all() and np.isfinite(lat).all() and (np.abs(lat) <= 90).all()):
            raise ApiError(422, "bad_georeference", "the georeference places the tile outside the Earth",
                           {"hint": "check the transform's units against the CRS"})
    gsd = params.gsd if params.gsd is not None else (ref.gsd_m(width / 2, height / 2) if ref is not None else None)
    factor = scale_range.factor_for(gsd) if scale_range is not None else 1.0
    pixels = decoded.pixels
    if factor != 1.0:
        new_w, new_h = resampled_size(width, height, factor)
        if new_w * new_h > max_pixels:
            raise ApiError(413, "image_too_large", f"resampled x{factor:.2f} for its GSD ({gsd:g} m), the tile "
                           f"would be {new_w}x{new_h} pixels, over the limit of {max_pixels}",
                           {"max_pixels": max_pixels, "scale_factor": factor})
        pixels = resample(pixels, factor)
    windows = plan_windows(pixels, input_size, factor != 1.0)
    tensors = []
    for win in windows:
        crop = pixels[win.row:win.row + win.height, win.col:win.col + win.width]
        tensor = np.empty((3, *input_size), dtype=np.float32)
        tensors.append((tensor, letterbox_into(crop, tensor, input_size)))
    return PreparedTile(decoded, ref, gsd, factor, (pixels.shape[1], pixels.shape[0]), windows, tensors)


@dataclass
class PreparedTile:
    decoded: DecodedImage
    ref: GeoReference | None
    gsd_m: float | None
    factor: float
    scored_size: tuple[int, int]  # width, height after resampling
    windows: list[Window]
    tensors: list[tuple[NDArray[np.float32], Letterbox]]


async def detect_tile(svc: ServiceState, data: bytes, q: DetectParameters, given_ref: GeoReference | None = None
                      ) -> dict[str, Any]:
    """One tile through the one request path every protocol shares: decode, resample, letterbox, batch."""
    started = time.perf_counter()
    engine = svc.engine_or_503()
    batcher = svc.batcher
    assert batcher is not None  # engine_or_503 guarantees it
    loop = asyncio.get_running_loop()
    with batcher.announce():
        tile = await loop.run_in_executor(svc.decode_pool, prepare_tile, data, q, given_ref,
                                          svc.settings.max_pixels, engine.input_size, engine.info.scale_range)
    params = q.batch_params(svc.settings.conf, svc.settings.iou)
    try:
        results = await asyncio.wait_for(asyncio.gather(*(batcher.submit(t, box, params) for t, box in tile.tensors)),
                                         svc.settings.request_timeout_s)
    except QueueFullError:
        svc.metrics.reject("queue_full")
        raise ApiError(503, "queue_full", "the model's queue is full, retry shortly",
                       {"queue_size": svc.settings.queue_size}, headers={"Retry-After": "1"}) from None
    except TimeoutError:
        svc.metrics.reject("deadline")
        raise ApiError(504, "deadline_exceeded", f"no result within {svc.settings.request_timeout_s} s") from None
    dets, timing = results[0]
    if len(tile.windows) > 1:
        per_window = [(win, d.shifted(win.col, win.row)) for win, (d, _) in zip(tile.windows, results, strict=True)]
        dets = merge_windows(per_window, tile.scored_size, iou_threshold=params.iou)
        timing = {k: max(t[k] for _, t in results) for k in timing}
    height, width = tile.decoded.pixels.shape[:2]
    if tile.factor != 1.0:
        dets = dets.scaled(width / tile.scored_size[0], height / tile.scored_size[1])
    if tile.ref is not None:
        dets = georeference(dets, tile.ref)
    timing["total"] = (time.perf_counter() - started) * 1000
    decoded = tile.decoded
    return {"image": {"width": int(width), "height": int(height),
                      "bands": decoded.bands, "dtype": decoded.source_dtype, "georeferenced": tile.ref is not None},
            "scale": {"gsd_m": tile.gsd_m, "factor": round(tile.factor, 6), "windows": len(tile.windows)},
            "_dets": dets, "_ref": tile.ref, "timing_ms": {k: round(v, 3) for k, v in timing.items()}}


def render(result: dict[str, Any], svc: ServiceState, request: Request, geometry: str) -> dict[str, Any]:
    dets, ref = result.pop("_dets"), result.pop("_ref")
    if "application/geo+json" in request.headers.get("accept", ""):
        if ref is None:
            raise ApiError(422, "not_georeferenced", "GeoJSON needs a georeferenced tile",
                           {"hint": "pass transform= and crs=, or send a GeoTIFF"})
        collection = to_geojson(dets, ref, geometry)
        return {**collection, "model": svc.model_summary(), **result}
    return {"model": svc.model_summary(), **result, "detections": detection_records(dets)}


def _respond(payload: dict[str, Any], request: Request) -> JSONResponse:
    geo = payload.get("type") == "FeatureCollection" or (
        "application/geo+json" in request.headers.get("accept", "") and "results" in payload)
    return JSONResponse(payload, media_type="application/geo+json" if geo else "application/json")


@router.post("/v1/detect", dependencies=[Depends(require_api_key), Depends(known_params(DETECT_PARAMS))],
             summary="Detect ships in one tile (raw image body or multipart)", response_model=DetectResponse,
             responses=ERRORS, openapi_extra=IMAGE_BODY)
async def detect(request: Request, q: Annotated[DetectQuery, Depends()]) -> JSONResponse:
    svc = state(request)
    svc.refuse_if_draining()
    tiles = await read_tiles(request, 1)
    result = await detect_tile(svc, tiles[0][1], q.params, q.ref)
    return _respond(render(result, svc, request, q.geometry), request)


@router.post("/v1/detect/batch", dependencies=[Depends(require_api_key), Depends(known_params(DETECT_PARAMS))],
             summary="Detect ships in several tiles of one multipart request; results in order",
             response_model=BatchResponse, responses=ERRORS, openapi_extra=BATCH_BODY)
async def detect_batch(request: Request, q: Annotated[DetectQuery, Depends()]) -> JSONResponse:
    svc = state(request)
    svc.refuse_if_draining()
    tiles = await read_tiles(request, svc.settings.max_tiles)

    async def one(name: str, data: bytes) -> dict[str, Any]:
        try:
            return {"name": name, **render(await detect_tile(svc, data, q.params, q.ref), svc, request, q.geometry)}
        except (ApiError, ShipdetError) as exc:
            known = classify(exc)
            if known is None or known[0] >= 500:  # overload and deadlines concern the whole request
                raise
            status, code, message, _ = known
            return {"name": name, "error": {"code": code, "message": message, "status": status}}

    results = await asyncio.gather(*(one(n, d) for n, d in tiles))
    return JSONResponse({"model": svc.model_summary(), "results": list(results)})


@router.get("/v1/models", dependencies=[Depends(require_api_key)], summary="The loaded model and its card")
async def models(request: Request) -> dict[str, Any]:
    svc = state(request)
    engine = svc.engine_or_503()
    info = engine.info
    return {"models": [{**svc.model_summary(), "task": info.task, "names": info.names,
                        "input_size": list(info.imgsz), "providers": engine.providers, "card": info.card}]}


@router.get("/healthz", summary="Alive")
async def healthz() -> dict[str, str]:
    return {"status": "alive"}


@router.get("/readyz", summary="Ready: model loaded and warmed up, not shutting down",
            responses={503: {"model": ErrorResponse, "description": "not ready"}})
async def readyz(request: Request) -> JSONResponse:
    svc = state(request)
    if svc.ready and not svc.draining:
        return JSONResponse({"status": "ready"})
    reason = "shutting down" if svc.draining else (svc.load_error or "model loading")
    return JSONResponse({"error": {"code": "not_ready", "message": reason, "detail": {}}}, status_code=503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus text exposition format"}})
async def metrics(request: Request) -> Response:
    svc = state(request)
    svc.metrics.queue_depth.set(svc.batcher.depth if svc.batcher else 0)
    return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)
