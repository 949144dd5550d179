"""Every error the service returns has one JSON shape: {"error": {"code", "message", "detail"}}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shipdet.errors import (
    GeoreferenceError,
    ImageDecodeError,
    ImageTooLargeError,
    ShipdetError,
    UnsupportedImageError,
)

# The one mapping from typed errors to (HTTP status, code); each protocol formats it in its own shape. Order
# matters: a subclass before its base.
ERROR_TABLE: tuple[tuple[type[ShipdetError], int, str], ...] = (
    (ImageTooLargeError, 413, "image_too_large"),
    (UnsupportedImageError, 415, "unsupported_image"),
    (ImageDecodeError, 422, "corrupt_image"),
    (GeoreferenceError, 422, "bad_georeference"),
)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, detail: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.detail = detail or {}
        self.headers = headers


def classify(exc: BaseException) -> tuple[int, str, str, dict[str, Any]] | None:
    """(status, code, message, detail) of an error a request caused, or None for a fault of the service."""
    if isinstance(exc, ApiError):
        return exc.status, exc.code, exc.message, exc.detail
    for kind, status, code in ERROR_TABLE:
        if isinstance(exc, kind):
            return status, code, exc.message, {"hint": exc.hint} if exc.hint else {}
    return None


class BodyTooLargeError(ApiError):
    """Raised from the request stream once the body passes the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, "body_too_large", f"request body exceeds {limit} bytes", {"limit_bytes": limit},
                         {"Connection": "close"})


class BodyTimeoutError(ApiError):
    """Raised from the request stream when the body has not arrived whole within its deadline."""

    def __init__(self, seconds: float) -> None:
        super().__init__(408, "body_timeout", f"the request body did not arrive within {seconds:g} s",
                         {"body_timeout_s": seconds}, {"Connection": "close"})


def error_response(status: int, code: str, message: str, detail: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "detail": detail or {}}}, status_code=status,
                        headers=headers)


def speaks_v2(path: str) -> bool:
    """Whether a request is the Open Inference Protocol's, whose errors are `{"error": message}`."""
    return path.startswith("/v2")


def _shaped(request: Request, status: int, code: str, message: str, detail: dict[str, Any] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    """The error in the shape of the protocol the request spoke: the Open Inference Protocol's under /v2."""
    if speaks_v2(request.url.path):
        return JSONResponse({"error": message}, status_code=status, headers=headers)
    return error_response(status, code, message, detail, headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return _shaped(request, exc.status, exc.code, exc.message, exc.detail, exc.headers)

    @app.exception_handler(ShipdetError)
    async def _typed(request: Request, exc: ShipdetError) -> JSONResponse:
        known = classify(exc)
        if known is None:
            return _shaped(request, 500, "internal_error", "internal error", {"type": type(exc).__name__})
        status, code, message, detail = known
        return _shaped(request, status, code, message, detail)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in exc.errors()]
        return _shaped(request, 422, "invalid_request", "invalid request parameters", {"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(exc.status_code, "http_error")
        return _shaped(request, exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _shaped(request, 500, "internal_error", "internal error", {"type": type(exc).__name__})
