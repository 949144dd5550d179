"""A pure ASGI middleware bounding what one request can cost before any route runs: the body's size (chunked
bodies included) and the time it may take to arrive; a request still running when the shutdown grace ends
gets the service's 503, not the server's plain-text 500; and a request answered before its body was read
(overload, no key, wrong method) has its connection closed after the answer (RFC 9112, 9.6): the rest of that
body would otherwise arrive where the connection's next request head is expected."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipdet.serve.errors import BodyTimeoutError, BodyTooLargeError, speaks_v2


class RequestGuard:
    def __init__(self, app: ASGIApp, max_bytes: int, body_timeout_s: float,
                 on_reject: Callable[[str], None] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout_s = body_timeout_s
        self.on_reject = on_reject

    def _reject(self, reason: str) -> None:
        if self.on_reject is not None:
            self.on_reject(reason)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False
            if too_big:  # answer without reading a byte of it
                self._reject("body_too_large")
                await send_error(send, 413, "body_too_large", f"request body exceeds {self.max_bytes} bytes",
                                 {"limit_bytes": self.max_bytes}, v2=speaks_v2(str(scope.get("path", ""))))
                return
        received = 0
        body_done = declared in (None, b"0") and b"transfer-encoding" not in headers  # no body to read
        loop = asyncio.get_running_loop()
        body_deadline = loop.time() + self.body_timeout_s  # the whole body, however it is trickled in

        async def guarded_receive() -> Message:
            nonlocal received, body_done
            if body_done:  # after the body, receive only waits for a disconnect: no deadline on that
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(body_deadline - loop.time(), 0.001))
            except TimeoutError:
                self._reject("body_timeout")
                raise BodyTimeoutError(self.body_timeout_s) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    self._reject("body_too_large")
                    raise BodyTooLargeError(self.max_bytes)
                body_done = not message.get("more_body", False)
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if not body_done:  # answered before its body was read: close after the answer
                    kept = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
                    message = {**message, "headers": [*kept, (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, guarded_receive, tracking_send)
        except asyncio.CancelledError:
            # uvicorn cancels what is still running when the shutdown grace ends; answer in our own shape
            # (the client may retry elsewhere) and end the task normally, as the server is going away anyway.
            if not started:
                self._reject("shutting_down")
                await send_error(send, 503, "shutting_down", "the service shut down before the request finished",
                                 {}, {"Retry-After": "1"}, v2=speaks_v2(str(scope.get("path", ""))))


async def send_error(send: Send, status: int, code: str, message: str, detail: dict[str, object],
                     headers: dict[str, str] | None = None, v2: bool = False) -> None:
    """An error in the service's shape, or the Open Inference Protocol's (`{"error": message}`) under /v2."""
    shape = {"error": message} if v2 else {"error": {"code": code, "message": message, "detail": detail}}
    body = json.dumps(shape).encode()
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *extra]})
    await send({"type": "http.response.body", "body": body})
