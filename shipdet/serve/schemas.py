"""OpenAPI shapes of the native API (docs/contracts.md, section 2). Responses are built as dicts; these
models document them and let schema-based fuzzing check every response."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ModelRef(BaseModel):
    name: str
    version: str
    sha256: str
    upsampled_graph_sha256: str | None = None  # the graph scoring upsampled imagery, where the model has one


class ImageInfo(BaseModel):
    width: int
    height: int
    bands: int
    dtype: str
    georeferenced: bool


class OrientedBox(BaseModel):
    cx: float
    cy: float
    length: float
    width: float
    angle_deg: float


class Detection(BaseModel):
    xyxy: list[float] = Field(min_length=4, max_length=4)
    score: float
    class_id: int
    class_name: str
    obb: OrientedBox | None = None
    lon: float | None = None
    lat: float | None = None
    length_m: float | None = None
    width_m: float | None = None
    heading_deg: float | None = None


class Timing(BaseModel):
    queue: float
    inference: float
    total: float


class Thresholds(BaseModel):
    conf: float
    iou: float
    max_det: int
    max_det_reached: bool  # the tile (or a window of it) gave as many detections as max_det: there may be more
    views: int  # the views the tile was scored in and fused; conf is a threshold on the fused score


class DetectResponse(BaseModel):
    model: ModelRef
    image: ImageInfo
    thresholds: Thresholds
    detections: list[Detection]
    timing_ms: Timing


class TileError(BaseModel):
    code: str
    message: str
    status: int


class TileResult(BaseModel):
    name: str
    model: ModelRef | None = None
    image: ImageInfo | None = None
    thresholds: Thresholds | None = None
    detections: list[Detection] | None = None
    timing_ms: Timing | None = None
    error: TileError | None = None


class BatchResponse(BaseModel):
    model: ModelRef
    results: list[TileResult]


class ErrorBody(BaseModel):
    code: str
    message: str
    detail: dict[str, Any]


class ErrorResponse(BaseModel):
    error: ErrorBody


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {401: "missing or wrong API key", 408: "request body not received in time",
                         429: "too many wrong or missing API keys from this address (Retry-After)",
                         413: "body, pixel count or tile count over the limit",
                         415: "unsupported media type or image format", 422: "invalid parameters or corrupt image",
                         503: "not ready, shutting down, or queue full (Retry-After)", 504: "deadline exceeded",
                         500: "internal error (never expected)"}.items()
}

# `Accept: application/geo+json` gets an RFC 7946 FeatureCollection (georeferenced tiles only).
DETECT_RESPONSES: dict[int | str, dict[str, Any]] = {**ERRORS, 200: {
    "description": "detections (JSON), or a GeoJSON FeatureCollection with `Accept: application/geo+json`",
    "content": {"application/geo+json": {"schema": {"type": "object", "required": ["type", "features"],
                                                    "properties": {"type": {"const": "FeatureCollection"},
                                                                   "features": {"type": "array"}}}}}}}

_BINARY = {"schema": {"type": "string", "format": "binary"}}
IMAGE_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "image/jpeg": _BINARY, "image/png": _BINARY, "image/tiff": _BINARY,
    "multipart/form-data": {"schema": {"type": "object", "properties": {"image": {"type": "string",
                                                                                  "format": "binary"}}}}}}}
BATCH_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "tiles": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}}}
