"""The wheel `pip wheel .` builds is complete: installed outside the checkout, `shipdet serve` finds and serves its
bundled model (package data, not a path walked up from a source file)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(work / "dist"), str(ROOT)], check=True, timeout=600, capture_output=True)
    wheel = next((work / "dist").glob("shipdet-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(work / "site"),
                    str(wheel)], check=True, timeout=600, capture_output=True)
    return work / "site"


def _env(site: Path) -> dict[str, str]:
    # The wheel's copy first on the path, run from a folder that is not the checkout.
    return {**os.environ, "PYTHONPATH": str(site), "SHIPDET_CACHE_DIR": str(site.parent / "cache")}


def test_wheel_holds_the_bundled_model_and_the_packages(installed: Path) -> None:
    probe = ("import json, shipdet, shipdet.serve.settings as s, shipdet.inference.engine, shipdet.train.cli; "
             "print(json.dumps([shipdet.__file__, str(s.DEFAULT_MODEL), s.DEFAULT_MODEL.is_file()]))")
    out = subprocess.run([sys.executable, "-c", probe], env=_env(installed), cwd=installed.parent,
                         capture_output=True, text=True, timeout=120, check=True)
    package, model, exists = json.loads(out.stdout.strip().splitlines()[-1])
    assert package.startswith(str(installed)) and model.startswith(str(installed)) and exists
    assert (installed / "shipdet" / "weights" / "shipdet-default.card.json").is_file()
    assert not (installed / "serve").exists() and not (installed / "train").exists()  # no generic top-level names


def test_installed_service_serves_its_bundled_model(installed: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "shipdet", "serve", "--port", str(port)], env=_env(installed),
                            cwd=installed.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "server exited"
            time.sleep(0.3)
        model = r.json()["models"][0]
        card = json.loads((installed / "shipdet" / "weights" / "shipdet-default.card.json").read_text())
        assert model["name"] == "shipdet-default" and model["sha256"] == card["sha256"]
        if card.get("upsampled_graph"):  # installed beside it, loaded and checked with it
            assert model["upsampled_graph_sha256"] == card["upsampled_graph"]["sha256"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
