"""The KServe SDK against a live server, from the venv SHIPDET_KSERVE_PYTHON names (bench/kserve_sdk.py says how
to make it: KServe pins pandas<3 and psutil<6, so it stays out of the project's own environment)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

PYTHON = os.environ.get("SHIPDET_KSERVE_PYTHON")
pytestmark = pytest.mark.skipif(not PYTHON, reason="SHIPDET_KSERVE_PYTHON names no venv with the KServe SDK")
SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "kserve_sdk.py"


def test_the_kserve_sdk_checks_health_and_infers(server) -> None:
    name = httpx.get(server.url + "/v1/models").json()["models"][0]["name"]
    done = subprocess.run([str(PYTHON), str(SCRIPT), server.url, "--model", name], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:3] == ["server live True", "server ready True", "model ready True"]
    assert lines[3].startswith("outputs boxes FP32") and "num_detections INT32 [1]" in lines[3]
