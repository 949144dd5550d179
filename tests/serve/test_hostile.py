"""The service against hostile clients, one class of attack a test: unbounded decoding work, trickled or
unfinished requests, oversized heads, overload, requests cut off by the shutdown. Isolation of poisoned
requests from good ones is in test_isolation.py; malformed bodies and bombs in test_service.py."""

from __future__ import annotations

import asyncio
import base64
import signal
import socket
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from shipdet.errors import ImageTooLargeError, UnsupportedImageError
from shipdet.inference.decode import MAX_JPEG_SCANS, decode_image
from tests.serve.conftest import LiveServer, live_server, start_slow_server
from tests.serve.images import jpeg, progressive_jpeg, tiff, tiff_volume

JPEG = {"content-type": "image/jpeg"}


def test_a_jpeg_of_many_scans_is_refused_before_decoding() -> None:
    assert decode_image(progressive_jpeg(12)).pixels.shape == (64, 64, 3)  # an ordinary progressive JPEG
    crafted = progressive_jpeg(5000)
    assert len(crafted) < 200_000  # a small body
    started = time.perf_counter()
    with pytest.raises(ImageTooLargeError, match="5000 scans"):
        decode_image(crafted)
    assert time.perf_counter() - started < 0.5


def test_wide_tiff_samples_and_volumes_are_refused_before_decoding() -> None:
    with pytest.raises(UnsupportedImageError, match="volume"):
        decode_image(tiff_volume())
    with pytest.raises(UnsupportedImageError, match="bytes a pixel"):
        decode_image(tiff(np.zeros((16, 16, 4), np.float64), photometric="rgb", extrasamples=[0]))
    assert decode_image(tiff(np.zeros((16, 16, 4), np.uint16), photometric="rgb", extrasamples=[0])).bands == 4


def test_many_scans_answer_413_on_both_protocols(server: LiveServer) -> None:
    body = progressive_jpeg(MAX_JPEG_SCANS + 50)
    r = httpx.post(server.url + "/v1/detect", content=body, headers=JPEG, timeout=30)
    assert r.status_code == 413 and r.json()["error"]["code"] == "image_too_large"
    name = httpx.get(server.url + "/v1/models").json()["models"][0]["name"]
    v2 = httpx.post(f"{server.url}/v2/models/{name}/infer", timeout=30, json={"inputs": [
        {"name": "images", "datatype": "BYTES", "shape": [1], "data": [base64.b64encode(body).decode()]}]})
    assert v2.status_code == 413 and "scans" in v2.json()["error"]


def _raw(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture(scope="module")
def strict_server(fake_model: Path):
    with live_server(fake_model, head_timeout_s=1.0, body_timeout_s=1.0, max_header_bytes=4096) as s:
        yield s


def test_an_unfinished_request_head_is_cut_off_with_408(strict_server: LiveServer) -> None:
    with _raw(strict_server.url) as sock:
        sock.sendall(b"POST /v1/detect HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # and never the rest
        started = time.monotonic()
        answer = _read_all(sock)  # returns when the server closes the connection
    assert 0.8 < time.monotonic() - started < 5
    assert answer.startswith(b"HTTP/1.1 408") and b"head_timeout" in answer


def test_a_silent_connection_is_closed(strict_server: LiveServer) -> None:
    with _raw(strict_server.url) as sock:
        started = time.monotonic()
        assert _read_all(sock) == b""
    assert time.monotonic() - started < 5


def test_a_trickled_body_is_cut_off_with_408(strict_server: LiveServer) -> None:
    with _raw(strict_server.url) as sock:
        sock.sendall(b"POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 5000\r\n\r\n")
        for _ in range(2):  # a byte now and then, each within any idle timeout; the rest never comes
            sock.sendall(b"\xff")
            time.sleep(0.4)
        answer = _read_all(sock)  # writing on after the server's answer would reset the connection
    assert answer.startswith(b"HTTP/1.1 408") and b"body_timeout" in answer


def test_an_oversized_head_is_refused_and_the_server_goes_on(strict_server: LiveServer) -> None:
    with _raw(strict_server.url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431") and b"head_too_large" in answer
    with _raw(strict_server.url) as sock:  # the same head trickled in small reads
        for at in range(0, 6000, 1000):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 1000 if at == 0 else b"b" * 1000)
            time.sleep(0.02)
        assert _read_all(sock).startswith(b"HTTP/1.1 431")
    headers = {"X-Fill": "c" * 3000}  # under the limit, body in the same read as the head: accepted
    assert httpx.post(strict_server.url + "/v1/detect", content=jpeg(), headers={**JPEG, **headers}).status_code == 200
    assert httpx.post(strict_server.url + "/v1/detect", content=jpeg(), headers=JPEG).status_code == 200


def _read_response(sock: socket.socket) -> bytes:
    """One response of a keep-alive connection: its head and the content-length bytes after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_request_answered_before_its_body_is_read_ends_its_connection(strict_server: LiveServer) -> None:
    """The service answers some requests before reading their bodies (overload, wrong method, no key). On a
    keep-alive connection the rest of such a body would arrive where the next request head is expected (a large one
    read as an oversized head: 431 for the client's next, valid request), so the answer closes the connection."""
    with _raw(strict_server.url) as sock:
        sock.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 20000\r\n\r\n")
        answer = _read_all(sock)  # routing alone refuses it, the body unread; returns when the server closes
    assert answer.startswith(b"HTTP/1.1 405") and b"connection: close" in answer.lower()
    with _raw(strict_server.url) as sock:  # a request whose body was read keeps its connection for the next
        body = jpeg()
        sock.sendall(b"POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        first = _read_response(sock)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert first.startswith(b"HTTP/1.1 200") and b"connection: close" not in first.lower()
        assert _read_response(sock).startswith(b"HTTP/1.1 200")


def test_overload_is_decided_before_the_body_is_read(fake_model: Path) -> None:
    with live_server(fake_model, queue_size=2, max_batch=1, max_delay_ms=0) as s:
        svc = s.app.state.service
        original = svc.engine.infer
        svc.engine.infer = lambda batch: (time.sleep(0.5), original(batch))[1]
        decoded: list[int] = []
        prepare = svc.decode_pool.submit

        def counting(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
            decoded.append(1)
            return prepare(fn, *args, **kwargs)

        svc.decode_pool.submit = counting

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=30) as client:
                return await asyncio.gather(*(client.post(s.url + "/v1/detect", content=jpeg(), headers=JPEG)
                                              for _ in range(10)))

        codes = [r.status_code for r in asyncio.run(burst())]
        svc.engine.infer = original
    assert codes.count(503) >= 7 and set(codes) <= {200, 503}
    assert len(decoded) == codes.count(200)  # a refused request was never decoded


def test_requests_past_the_shutdown_grace_get_503_not_500(fake_model: Path, tmp_path: Path) -> None:
    proc, url = start_slow_server(fake_model, tmp_path, 4.0, SHIPDET_SERVE_SHUTDOWN_GRACE_S="1",
                                  SHIPDET_SERVE_MAX_BATCH="1")

    async def cut_off() -> httpx.Response:
        async with httpx.AsyncClient(timeout=30) as client:
            pending = asyncio.ensure_future(client.post(url + "/v1/detect", content=jpeg(), headers=JPEG))
            await asyncio.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            return await pending

    r = asyncio.run(cut_off())
    assert proc.wait(timeout=30) == 0
    assert r.status_code == 503 and r.json()["error"]["code"] == "shutting_down"
