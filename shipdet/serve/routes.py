"""The native API: /v1/detect, /v1/detect/batch, /v1/models, health and metrics."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shipdet.formats import detection_records, to_geojson
from shipdet.georef import GeoReference
from shipdet.serve.auth import require_api_key, require_key_for_operations
from shipdet.serve.dataplane import TileError, TileResult, detect_tiles
from shipdet.serve.errors import ApiError
from shipdet.serve.params import DetectParameters, parse_parameters
from shipdet.serve.schemas import (
    BATCH_BODY,
    DETECT_RESPONSES,
    ERRORS,
    IMAGE_BODY,
    BatchResponse,
    DetectResponse,
    ErrorResponse,
)
from shipdet.serve.state import Service, ServiceState

BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.I)
MAX_FORM_FIELDS = 8  # non-file parts a multipart request may carry beside its tiles
IMAGE_TYPES = {"image/jpeg", "image/jpg", "image/png", "image/tiff", "application/octet-stream"}
DETECT_PARAMS = {"conf", "iou", "classes", "transform", "crs", "geometry", "max_det", "gsd", "views"}

router = APIRouter()


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
        views: Annotated[str | None, Query(description=DetectParameters.model_fields["views"].description)] = None,
    ) -> None:
        given = {"conf": conf, "iou": iou, "classes": classes, "geometry": geometry, "max_det": max_det, "gsd": gsd,
                 "views": views}
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
    header = request.headers.get("content-type", "")
    ctype = header.split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        # Parts are counted before parsing (the body is already bounded), so that the parser's own limits are
        # never what refuses a request: any error it raises is a malformed body.
        found = BOUNDARY.search(header)
        parts = (await request.body()).count(b"--" + found.group(1).encode()) - 1 if found else 0
        if parts > max_tiles + MAX_FORM_FIELDS:
            raise ApiError(413, "too_many_tiles", f"{parts} parts sent, at most {max_tiles} tiles per request",
                           {"max_tiles": max_tiles})
        try:
            form = await request.form(max_files=max_tiles + MAX_FORM_FIELDS, max_fields=max_tiles + MAX_FORM_FIELDS)
        except Exception as exc:  # starlette's multipart errors
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


def render(result: TileResult, svc: ServiceState, request: Request, geometry: str) -> dict[str, Any]:
    """`/v1`'s JSON (or GeoJSON) for one tile's typed result."""
    about = result.summary()
    if "application/geo+json" in request.headers.get("accept", ""):
        if result.ref is None:
            raise ApiError(422, "not_georeferenced", "GeoJSON needs a georeferenced tile",
                           {"hint": "pass transform= and crs=, or send a GeoTIFF"})
        collection = to_geojson(result.detections, result.ref, geometry)
        return {**collection, "model": svc.model_summary(), **about}
    return {"model": svc.model_summary(), **about, "detections": detection_records(result.detections)}


def _respond(payload: dict[str, Any], request: Request) -> JSONResponse:
    geo = payload.get("type") == "FeatureCollection" or (
        "application/geo+json" in request.headers.get("accept", "") and "results" in payload)
    return JSONResponse(payload, media_type="application/geo+json" if geo else "application/json")


@router.post("/v1/detect", dependencies=[Depends(require_api_key), Depends(known_params(DETECT_PARAMS))],
             summary="Detect ships in one tile (raw image body or multipart)", response_model=DetectResponse,
             responses=DETECT_RESPONSES, openapi_extra=IMAGE_BODY)
async def detect(request: Request, svc: Service, q: Annotated[DetectQuery, Depends()]) -> JSONResponse:
    svc.admit()
    tiles = await read_tiles(request, 1)
    result = (await detect_tiles(svc, [tiles[0][1]], q.params, q.ref))[0]
    if isinstance(result, TileError):
        raise result.as_exception()
    return _respond(render(result, svc, request, q.geometry), request)


@router.post("/v1/detect/batch", dependencies=[Depends(require_api_key), Depends(known_params(DETECT_PARAMS))],
             summary="Detect ships in several tiles of one multipart request; results in order",
             response_model=BatchResponse, responses=ERRORS, openapi_extra=BATCH_BODY)
async def detect_batch(request: Request, svc: Service, q: Annotated[DetectQuery, Depends()]) -> JSONResponse:
    svc.admit()
    tiles = await read_tiles(request, svc.settings.max_tiles)
    results = await detect_tiles(svc, [data for _, data in tiles], q.params, q.ref)

    def one(name: str, result: TileResult | TileError) -> dict[str, Any]:
        if isinstance(result, TileError):
            return {"name": name, "error": {"code": result.code, "message": result.message, "status": result.status}}
        try:
            return {"name": name, **render(result, svc, request, q.geometry)}
        except ApiError as exc:  # e.g. GeoJSON asked for a tile that is not georeferenced
            return {"name": name, "error": {"code": exc.code, "message": exc.message, "status": exc.status}}

    return JSONResponse({"model": svc.model_summary(),
                         "results": [one(name, r) for (name, _), r in zip(tiles, results, strict=True)]})


@router.get("/v1/models", dependencies=[Depends(require_api_key)], summary="The loaded model and its card")
async def models(request: Request, svc: Service) -> dict[str, Any]:
    engine = svc.engine_or_503()
    info = engine.info
    return {"models": [{**svc.model_summary(), "task": info.task, "names": info.names,
                        "input_size": list(info.imgsz), "providers": engine.providers,
                        **svc.operating_point(), "card": public_card(info.card)}]}


def public_card(card: dict[str, Any]) -> dict[str, Any]:
    """The model card as key holders see it: data, metrics, scale range, lineage commits; not the training
    commands and local paths of the machines it was made on (its graph for upsampled imagery likewise)."""
    public = _without_training(card)
    if isinstance(card.get("upsampled_graph"), dict):
        public["upsampled_graph"] = _without_training(card["upsampled_graph"])
    return public


def _without_training(entry: dict[str, Any]) -> dict[str, Any]:
    """`entry` with its training record replaced by the commits and dataset hashes of its stages."""
    stages, record = [], entry.get("training") or {}
    while record:
        stages.append({"git_commit": record.get("git_commit"), "dataset_sha256": record.get("dataset_sha256")})
        record = record.get("parent") or {}
    return {**{k: v for k, v in entry.items() if k != "training"}, "training_stages": stages}


@router.get("/healthz", summary="Alive")
async def healthz() -> dict[str, str]:
    return {"status": "alive"}


@router.get("/readyz", summary="Ready: model loaded and warmed up, not shutting down",
            responses={503: {"model": ErrorResponse, "description": "not ready"}})
async def readyz(request: Request, svc: Service) -> JSONResponse:
    if svc.ready and not svc.draining:
        return JSONResponse({"status": "ready"})
    reason = "shutting down" if svc.draining else (svc.load_error or "model loading")
    return JSONResponse({"error": {"code": "not_ready", "message": reason, "detail": {}}}, status_code=503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            dependencies=[Depends(require_key_for_operations)],
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus text exposition format"}})
async def metrics(request: Request, svc: Service) -> Response:
    svc.metrics.queue_depth.set(svc.batcher.depth if svc.batcher else 0)
    return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)
