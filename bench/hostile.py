"""Hostile requests for the load bench, one of each class a client can send (the test suite covers the same
classes one at a time, tests/serve/test_hostile.py and test_isolation.py): each with the statuses a correct
server answers. 503 is always allowed: under overload a server may refuse anything before reading it."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from tests.serve.images import jpeg, progressive_jpeg, tiff_bomb, tiff_volume

Send = Callable[[httpx.AsyncClient, str, str], Awaitable[int]]  # (client, base url, model name) -> status


@dataclass(frozen=True)
class HostileCase:
    name: str
    send: Send
    expected: frozenset[int]


def _v2(images: list[bytes], parameters: object = None) -> bytes:
    body: dict[str, object] = {"inputs": [{"name": "images", "datatype": "BYTES", "shape": [len(images)],
                                           "data": [base64.b64encode(i).decode() for i in images]}]}
    if parameters is not None:
        body["parameters"] = parameters
    return json.dumps(body).encode()


def _post(path: str, body: bytes, ctype: str, params: dict[str, str] | None = None) -> Send:
    async def send(client: httpx.AsyncClient, url: str, model: str) -> int:
        r = await client.post(url + path.format(model=model), content=body, headers={"content-type": ctype},
                              params=params)
        return r.status_code
    return send


async def _raw(url: str, request: bytes) -> int:
    """A request written on a raw socket (what httpx would refuse to send); the status line of the answer. A
    request that stops part-way simply waits for the server to give up on it."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 60)
        return int(line.split()[1]) if line.startswith(b"HTTP/") else 0
    except (ConnectionError, asyncio.IncompleteReadError):
        return 0
    finally:
        writer.close()


def _oversized_head() -> Send:
    async def send(client: httpx.AsyncClient, url: str, model: str) -> int:
        return await _raw(url, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n")
    return send


def _stalled_body() -> Send:
    async def send(client: httpx.AsyncClient, url: str, model: str) -> int:
        body = jpeg()
        head = (f"POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        return await _raw(url, head + body[:100])  # the rest of the body never comes
    return send


def hostile_cases(max_tiles: int) -> list[HostileCase]:
    truncated = jpeg(256, 256, 120)
    cases = [
        ("truncated-jpeg", _post("/v1/detect", truncated[: len(truncated) // 3], "image/jpeg"), {422}),
        ("v1-conf-string", _post("/v1/detect", jpeg(), "image/jpeg", {"conf": "abc"}), {422}),
        ("v1-transform-overflow", _post("/v1/detect", jpeg(), "image/jpeg",
                                        {"transform": "1e308,0,1e308,0,-1e308,1e308", "crs": "EPSG:32633"}), {422}),
        ("v2-conf-string", _post("/v2/models/{model}/infer", _v2([jpeg()], {"conf": "abc"}), "application/json"),
         {400}),
        ("v2-too-many-images", _post("/v2/models/{model}/infer", _v2([jpeg(8, 8)] * (max_tiles + 1)),
                                     "application/json"), {413}),
        ("v2-array-body", _post("/v2/models/{model}/infer", b"[1, 2, 3]", "application/json"), {400}),
        ("many-scan-jpeg", _post("/v1/detect", progressive_jpeg(2000), "image/jpeg"), {413}),
        ("tiff-volume", _post("/v1/detect", tiff_volume(),
                              "image/tiff"), {415}),
        ("tiff-bomb", _post("/v1/detect", tiff_bomb(), "image/tiff"), {413}),
        ("oversized-head", _oversized_head(), {431}),
        ("stalled-body", _stalled_body(), {408}),
    ]
    return [HostileCase(name, send, frozenset(codes | {503})) for name, send, codes in cases]
