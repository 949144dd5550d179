"""Every error the service returns has one JSON shape: {"error": {"code", "message", "detail"}}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shipdet.errors import GeoreferenceError, ImageDecodeError, ImageTooLargeError


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, detail: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.detail = detail or {}
        self.headers = headers


class BodyTooLargeError(Exception):
    """Raised from the request stream once the body passes the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"body larger than {limit} bytes")
        self.limit = limit


def error_response(status: int, code: str, message: str, detail: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "detail": detail or {}}}, status_code=status,
                        headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.detail, exc.headers)

    @app.exception_handler(BodyTooLargeError)
    async def _too_big(_: Request, exc: BodyTooLargeError) -> JSONResponse:
        return error_response(413, "body_too_large", f"request body exceeds {exc.limit} bytes",
                              {"limit_bytes": exc.limit})

    @app.exception_handler(ImageTooLargeError)
    async def _pixels(_: Request, exc: ImageTooLargeError) -> JSONResponse:
        return error_response(413, "image_too_large", exc.message, {"hint": exc.hint})

    @app.exception_handler(ImageDecodeError)
    async def _decode(_: Request, exc: ImageDecodeError) -> JSONResponse:
        unsupported = "not a JPEG, PNG or TIFF" in exc.message or "bands" in exc.message
        return error_response(415 if unsupported else 422, "unsupported_image" if unsupported else "corrupt_image",
                              exc.message, {"hint": exc.hint})

    @app.exception_handler(GeoreferenceError)
    async def _geo(_: Request, exc: GeoreferenceError) -> JSONResponse:
        return error_response(422, "bad_georeference", exc.message, {"hint": exc.hint})

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in exc.errors()]
        return error_response(422, "invalid_request", "invalid request parameters", {"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return error_response(500, "internal_error", "internal error", {"type": type(exc).__name__})
