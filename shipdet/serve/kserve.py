"""The Open Inference Protocol (KServe v2 / Triton HTTP), beside the native API.

Input `images`: BYTES, shape [B], each element one encoded image (JPEG, PNG or TIFF). In the binary tensor
data extension each element is a 4-byte little-endian length and the bytes; in plain JSON each element is the
image base64-encoded. Request parameters are those of `/v1/detect` (`conf`, `iou`, `classes`, `max_det`, `gsd`),
validated by the same model before anything is decoded; at most `max_tiles` images a request.
Outputs, one row per detection over the whole request (ragged, so indexed by image):
`boxes` FP32 [N, 4] (x1, y1, x2, y2, image pixels), `scores` FP32 [N], `classes` INT32 [N],
`image_index` INT32 [N], `num_detections` INT32 [B], `scale_factor` FP32 [B] (the resampling applied for the
image's GSD; 1 without one), `max_det_reached` BOOL [B], and `obb` FP32 [N, 5] for oriented models.
Errors follow the protocol: {"error": "<message>"} with a 4xx/5xx status.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from shipdet import __version__
from shipdet.errors import ShipdetError
from shipdet.inference.engine import Engine
from shipdet.serve.auth import require_api_key
from shipdet.serve.dataplane import TileError, TileResult, detect_tiles
from shipdet.serve.errors import ApiError, classify
from shipdet.serve.params import parse_parameters
from shipdet.serve.state import ServiceState, service
from shipdet.serve.v2codec import (
    INPUTS,
    PROTOCOL_PARAMETERS,
    detection_tensors,
    encode_outputs,
    output_metadata,
    parse_request,
)


class ProtocolError(BaseModel):
    error: str


def _doc(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"model": ProtocolError, "description": "protocol error"} for c in codes}


router = APIRouter(prefix="/v2", tags=["Open Inference Protocol"])


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _model_or_404(request: Request, name: str, version: str | None = None) -> Any:
    svc = service(request)
    engine = svc.engine_or_503()
    if name != engine.info.name:
        raise ApiError(404, "not_found", f"model {name!r} is not served (this server serves {engine.info.name!r})")
    if version is not None and version != engine.info.version:
        raise ApiError(404, "not_found", f"model {name!r} has no version {version!r} (it has "
                                         f"{engine.info.version!r})")
    return svc, engine


@router.get("", summary="Server metadata")
async def server_metadata() -> dict[str, Any]:
    return {"name": "shipdet", "version": __version__,
            "extensions": ["binary_tensor_data", "statistics", "model_configuration"]}


@router.post("/repository/index", dependencies=[Depends(require_api_key)], responses=_doc(401, 503),
             summary="The models this server serves (one, always loaded)")
async def repository_index(request: Request) -> list[dict[str, str]]:
    info = service(request).engine_or_503().info
    return [{"name": info.name, "version": info.version, "state": "READY", "reason": ""}]


@router.get("/models/{name}/config", dependencies=[Depends(require_api_key)], responses=_doc(401, 404, 503))
@router.get("/models/{name}/versions/{version}/config", dependencies=[Depends(require_api_key)],
            responses=_doc(401, 404, 503), name="config_version")
async def config(request: Request, name: str, version: str | None = None) -> dict[str, Any]:
    svc, engine = _model_or_404(request, name, version)
    types = {"BYTES": "TYPE_STRING", "FP32": "TYPE_FP32", "INT32": "TYPE_INT32", "BOOL": "TYPE_BOOL"}
    tensors = [{"name": t["name"], "data_type": types[t["datatype"]], "dims": t["shape"]}
               for t in output_metadata(engine.info.task)]
    return {"name": engine.info.name, "platform": "onnxruntime_onnx", "backend": "onnxruntime",
            "max_batch_size": 0, "input": [{"name": "images", "data_type": "TYPE_STRING", "dims": [-1]}],
            "output": tensors, "dynamic_batching": {"max_queue_delay_microseconds":
                                                    int(svc.settings.max_delay_ms * 1000)},
            "parameters": {"max_tiles": {"string_value": str(svc.settings.max_tiles)}}}


@router.get("/models/stats", dependencies=[Depends(require_api_key)], responses=_doc(401, 503))
async def all_stats(request: Request) -> dict[str, Any]:
    svc = service(request)
    return _stats(svc, svc.engine_or_503())


@router.get("/models/{name}/stats", dependencies=[Depends(require_api_key)], responses=_doc(401, 404, 503))
@router.get("/models/{name}/versions/{version}/stats", dependencies=[Depends(require_api_key)],
            responses=_doc(401, 404, 503), name="stats_version")
async def stats(request: Request, name: str, version: str | None = None) -> dict[str, Any]:
    return _stats(*_model_or_404(request, name, version))


def _stats(svc: ServiceState, engine: Engine) -> dict[str, Any]:
    s = svc.stats
    return {"model_stats": [{
        "name": engine.info.name, "version": engine.info.version, "last_inference": s.last_inference_ms,
        "inference_count": s.inference_count, "execution_count": s.execution_count,
        "inference_stats": {"success": {"count": s.success_count, "ns": s.success_ns},
                            "fail": {"count": s.fail_count, "ns": s.fail_ns}}}]}


@router.get("/health/live")
async def live() -> dict[str, bool]:
    return {"live": True}


@router.get("/health/ready", responses=_doc(503))
async def ready(request: Request) -> JSONResponse:
    svc = service(request)
    ok = svc.ready and not svc.draining
    return JSONResponse({"ready": ok}, status_code=200 if ok else 503)


@router.get("/models/{name}", dependencies=[Depends(require_api_key)], responses=_doc(401, 404, 503))
@router.get("/models/{name}/versions/{version}", dependencies=[Depends(require_api_key)],
            responses=_doc(401, 404, 503), name="metadata_version")
async def metadata(request: Request, name: str, version: str | None = None) -> JSONResponse:
    svc, engine = _model_or_404(request, name, version)  # errors: the app's handler, in the protocol's shape
    return JSONResponse({"name": engine.info.name, "versions": [engine.info.version], "platform": "onnxruntime_onnx",
                         "inputs": INPUTS, "outputs": output_metadata(engine.info.task),
                         "parameters": {"classes": engine.info.names, "task": engine.info.task,
                                        **svc.operating_point()}})


@router.get("/models/{name}/ready", dependencies=[Depends(require_api_key)], responses=_doc(401, 404, 503))
@router.get("/models/{name}/versions/{version}/ready", dependencies=[Depends(require_api_key)],
            responses=_doc(401, 404, 503), name="model_ready_version")
async def model_ready(request: Request, name: str, version: str | None = None) -> JSONResponse:
    svc, _ = _model_or_404(request, name, version)
    return JSONResponse({"name": name, "ready": svc.ready and not svc.draining},
                        status_code=200 if svc.ready and not svc.draining else 503)


INFER_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "object"}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


@router.post("/models/{name}/infer", dependencies=[Depends(require_api_key)],
             responses=_doc(400, 401, 404, 413, 503, 504), openapi_extra=INFER_BODY)
@router.post("/models/{name}/versions/{version}/infer", dependencies=[Depends(require_api_key)],
             responses=_doc(400, 401, 404, 413, 503, 504), openapi_extra=INFER_BODY, name="infer_version")
async def infer(request: Request, name: str, version: str | None = None) -> Response:
    try:
        svc, engine = _model_or_404(request, name, version)
        svc.admit()
        header, images = parse_request(await request.body(), request.headers.get("inference-header-content-length"))
        # Validated before anything is decoded or batched: a bad parameter is this request's 400, no one else's.
        raw = header.get("parameters") or {}
        if isinstance(raw, dict):
            raw = {k: v for k, v in raw.items() if k not in PROTOCOL_PARAMETERS}
        params = parse_parameters(raw, status=400)
        if len(images) > svc.settings.max_tiles:
            raise ApiError(413, "too_many_tiles", f"{len(images)} images sent, at most {svc.settings.max_tiles} "
                                                  "per request")
        results = await detect_tiles(svc, images, params)
        for result in results:  # the protocol fails the whole request for one bad input
            if isinstance(result, TileError):
                raise result.as_exception()
        tensors = detection_tensors([r for r in results if isinstance(r, TileResult)], engine.info.task)
        binary = bool((header.get("parameters") or {}).get("binary_data_output", False))
        body, blob = encode_outputs(tensors, header.get("outputs") or [], binary)
    except (ApiError, ShipdetError) as exc:
        known = classify(exc)
        if known is None:
            raise
        status, _, message, _ = known
        return _error(400 if status in (415, 422) else status, message)  # the protocol's 400 for a bad input
    except (ValueError, KeyError, TypeError, RecursionError) as exc:  # json's errors are ValueErrors
        return _error(400, f"bad inference request: {exc}")
    body.update({"model_name": engine.info.name, "model_version": engine.info.version, "id": header.get("id", "")})
    text = json.dumps(body).encode()
    if not blob:
        return Response(text, media_type="application/json")
    return Response(text + blob, media_type="application/octet-stream",
                    headers={"Inference-Header-Content-Length": str(len(text))})
