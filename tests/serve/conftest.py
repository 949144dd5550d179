"""A real uvicorn server on a free loopback port, in a thread, serving the fake model."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from shipdet.serve.app import create_app
from shipdet.serve.server import server_config
from shipdet.serve.settings import ServeSettings
from tests.fake_model import detect_model


class LiveServer:
    def __init__(self, app: Any) -> None:
        self.app = app
        # The service's own server configuration (protocol, head and keep-alive limits), on a free port.
        self.server = uvicorn.Server(server_config(app, app.state.service.settings, "warning", port=0))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        while httpx.get(f"{self.url}/readyz").status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("model did not load")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@contextmanager
def live_server(model: Path, **settings: Any) -> Iterator[LiveServer]:
    with LiveServer(create_app(ServeSettings(model=model, **settings))) as server:
        yield server


@pytest.fixture(scope="module")
def fake_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return detect_model(tmp_path_factory.mktemp("model") / "fake.onnx")


@pytest.fixture(scope="module")
def server(fake_model: Path) -> Iterator[LiveServer]:
    with live_server(fake_model, max_body_bytes=200_000, max_pixels=4_000_000, max_tiles=3) as s:
        yield s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SLOW_SERVE = """import os, time, sys
from shipdet.inference import engine as e
orig = e.Engine.infer
def slow(self, batch):
    time.sleep(float(os.environ['SHIPDET_TEST_SLOW_INFER_S']))
    return orig(self, batch)
e.Engine.infer = slow
from shipdet.cli import main
sys.argv = ['shipdet', 'serve', '--model', sys.argv[1], '--port', sys.argv[2], '--log-level', 'warning']
main()
"""


def start_slow_server(model: Path, folder: Path, slow_infer_s: float, **env: str
                      ) -> tuple[subprocess.Popen[bytes], str]:
    """`shipdet serve` in its own process, each model call slowed by `slow_infer_s` so that requests are in
    flight when a test signals it; `env` adds SHIPDET_SERVE_* settings. Returns the process and its URL."""
    port = free_port()
    script = folder / "slow_serve.py"
    script.write_text(SLOW_SERVE)
    proc = subprocess.Popen([sys.executable, str(script), str(model), str(port)],
                            env={**os.environ, "SHIPDET_TEST_SLOW_INFER_S": str(slow_infer_s), **env})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/readyz").status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("server did not start")
        time.sleep(0.1)
