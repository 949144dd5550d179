"""uvicorn as the service runs it: a bounded request head (size and time), keep-alive and graceful drain
settings from `ServeSettings`. Tests start their servers through `server_config` too."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import Any

import uvicorn

from shipdet.serve.settings import ServeSettings


def _raw_error(status: int, reason: str, code: str, message: str, detail: dict[str, float]) -> bytes:
    """A whole HTTP/1.1 error response in the service's JSON shape, written before any request is parsed."""
    body = json.dumps({"error": {"code": code, "message": message, "detail": detail}}).encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\nconnection: close\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


def guarded_protocol(head_timeout_s: float, max_head_bytes: int) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (httptools where installed, else h11) with bounds on every request head. A client
    that connects (or gets its response) and does not send a whole request line and headers within
    `head_timeout_s` gets a 408 and is disconnected, so trickled or unfinished heads cannot hold connections
    open (uvicorn has no such timeout). A head longer than `max_head_bytes` gets a 431 (httptools has no limit,
    and h11's applies only while a head is incomplete: a large head arriving in one read passes it)."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base
    except ImportError:  # uvicorn without its `standard` extra
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base  # type: ignore[assignment]
    too_slow = _raw_error(408, "Request Timeout", "head_timeout", f"request head not received within "
                          f"{head_timeout_s:g} s", {"head_timeout_s": head_timeout_s})
    too_large = _raw_error(431, "Request Header Fields Too Large", "head_too_large", f"request head larger than "
                           f"{max_head_bytes} bytes", {"max_header_bytes": max_head_bytes})

    class GuardedProtocol(Base):
        _head_timer: asyncio.TimerHandle | None = None
        _head_seen: int | None = 0  # bytes of the current head so far; None once it is whole
        _head_tail = b""

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm_head_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._head_seen is not None:
                window = self._head_tail + data  # the end of the head may straddle two reads
                end = window.find(b"\r\n\r\n")
                length = self._head_seen + (end + 4 - len(self._head_tail) if end >= 0 else len(data))
                if length > max_head_bytes:
                    self._refuse(too_large)
                    return
                self._head_seen, self._head_tail = (None, b"") if end >= 0 else (length, window[-3:])
            super().data_received(data)

        def _arm_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_seen, self._head_tail = 0, b""
            self._head_timer = self.loop.call_later(head_timeout_s, self._head_deadline)

        def _head_deadline(self) -> None:
            self._head_timer = None
            if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
                return  # a request is under way (its body has a deadline of its own)
            if self._head_seen:
                self._refuse(too_slow)  # a head was started: tell the client why it is cut off
            else:
                self.transport.close()

        def _refuse(self, response: bytes) -> None:
            self._head_seen = None
            self.transport.write(response)
            self.transport.close()

    return GuardedProtocol


def server_config(app: Any, settings: ServeSettings, log_level: str = "info", port: int | None = None
                  ) -> uvicorn.Config:
    return uvicorn.Config(app, host=settings.host, port=settings.port if port is None else port,
                          log_level=log_level, timeout_graceful_shutdown=round(settings.shutdown_grace_s),
                          access_log=False, proxy_headers=False,
                          http=guarded_protocol(settings.head_timeout_s, settings.max_header_bytes),
                          h11_max_incomplete_event_size=settings.max_header_bytes,
                          timeout_keep_alive=max(1, round(settings.keepalive_timeout_s)))


def run_server(app: Any, settings: ServeSettings, log_level: str = "info") -> None:
    """Serve until SIGTERM/SIGINT, then drain: readiness turns 503, in-flight requests finish within the grace."""

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            app.state.service.draining = True  # /readyz says 503 from this moment
            super().handle_exit(sig, frame)

    # uvicorn drains, restores the previous handler, then re-raises the signal: make that handler a clean exit,
    # so a drained shutdown on SIGTERM ends with status 0 (as orchestrators expect), not "killed by signal".
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    DrainingServer(server_config(app, settings, log_level)).run()
