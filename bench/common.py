"""Helpers for the benchmark scripts: machine description, real tiles, and writing docs/benchmarks.md sections."""

from __future__ import annotations

import contextlib
import io
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import onnxruntime

    return (f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, Python {platform.python_version()}, "
            f"onnxruntime {onnxruntime.__version__}")


def timed(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def median(values: list[float]) -> float:
    return statistics.median(values)


def real_tiles(count: int, size: int, data: Path | None = None) -> list[bytes]:
    """JPEG tiles of `size` x `size` cut from real validation images (centre crop, upscaled if smaller)."""
    lists = [data] if data else [REPO / "work" / "sets" / "merged" / "val.txt"]
    paths: list[Path] = []
    for lst in lists:
        if lst.is_file():
            paths += [Path(p) for p in lst.read_text().split()]
    if not paths:
        raise SystemExit("no real tiles: build work/sets/merged first (README, Datasets)")
    tiles = []
    for p in paths[:: max(1, len(paths) // count)][:count]:
        img = Image.open(p).convert("RGB")
        scale = max(size / img.width, size / img.height, 1.0)
        img = img.resize((round(img.width * scale), round(img.height * scale)))
        left, top = (img.width - size) // 2, (img.height - size) // 2
        buf = io.BytesIO()
        img.crop((left, top, left + size, top + size)).save(buf, format="JPEG", quality=92)
        tiles.append(buf.getvalue())
    return tiles


def decode_all(tiles: list[bytes]) -> list[np.ndarray]:
    return [np.asarray(Image.open(io.BytesIO(t)).convert("RGB")) for t in tiles]


def memory_mib(pid: int, field: str = "VmRSS") -> float:
    """A process's memory from /proc: `VmRSS` (resident now) or `VmHWM` (its peak), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def publish(name: str, lines: list[str], dry_run: bool) -> None:
    """Print a bench's figures, and write them to docs/benchmarks.md unless it was a dry run."""
    text = "\n".join(lines)
    print(text)
    if not dry_run:
        write_section(name, text)


def write_section(name: str, body: str) -> None:
    """Replace (or add) the section between <!-- bench:name --> markers in docs/benchmarks.md."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = DOC.read_text() if DOC.is_file() else "# Benchmarks\n\nFigures written by the scripts in `bench/`.\n"
    command = " ".join([Path(sys.executable).name, *sys.argv])
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=REPO).stdout.strip()
    except OSError:
        commit = "unknown"
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    block = (f"<!-- bench:{name} -->\n{body.rstrip()}\n\n_Command: `{command}` · machine: {machine()} · "
             f"commit {commit} · {stamp}_\n<!-- /bench:{name} -->")
    pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(text)
