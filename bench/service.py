"""The service end to end (a load generator in another process, concurrency 1, 8, 32) against the engine
in-process, on the same tiles and model, one after the other in one run.

    python -m bench.service --model work/bench/bench-640.onnx
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import median, publish, real_tiles, timed


def start_server(model: Path, port: int, extra_env: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, **extra_env}
    proc = subprocess.Popen([sys.executable, "-m", "shipdet", "serve", "--model", str(model), "--port", str(port),
                             "--log-level", "warning"], env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not become ready")


def loadgen(url: str, tiles: Path, concurrency: int, duration: float, expected: Path | None = None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.loadgen", url, "--tiles", str(tiles), "--concurrency", str(concurrency),
           "--duration", str(duration)]
    if expected:
        cmd += ["--expected", str(expected)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def grpcload(target: str, model: str, tiles: Path, concurrency: int, duration: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.grpcload", target, model, "--tiles", str(tiles), "--concurrency",
           str(concurrency), "--duration", str(duration)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()

    from shipdet.inference.engine import Engine

    engine = Engine(args.model, providers=["cpu"], max_batch=args.max_batch, verify=False)
    size = engine.input_size[0]
    tiles = real_tiles(16, size)
    folder = Path(tempfile.mkdtemp(prefix="shipdet-bench-"))
    for i, t in enumerate(tiles):
        (folder / f"{i:03d}.jpg").write_bytes(t)
    batch_tiles = tiles[: args.max_batch]
    repeats = 2 if args.dry_run else 5
    engine_tps = len(batch_tiles) / median(timed(lambda: engine.detect(batch_tiles), repeats))
    # One tile at a time: what a single client can get at best, the reference for concurrency 1.
    single_tps = len(batch_tiles) / median(timed(lambda: [engine.detect([t]) for t in batch_tiles], repeats))
    engine.close()
    server = start_server(args.model, args.port, {"SHIPDET_SERVE_MAX_BATCH": str(args.max_batch),
                                                  "SHIPDET_SERVE_GRPC_PORT": str(args.port + 1)})
    duration = 5 if args.dry_run else args.duration
    try:
        url = f"http://127.0.0.1:{args.port}/v1/detect"
        name = httpx.get(f"http://127.0.0.1:{args.port}/v1/models").json()["models"][0]["name"]
        results, grpc_results = [], []
        for c in args.concurrency:  # the two protocols one after the other at each concurrency
            results.append(loadgen(url, folder, c, duration))
            grpc_results.append(grpcload(f"127.0.0.1:{args.port + 1}", name, folder, c, duration))
    finally:
        server.terminate()
        server.wait(timeout=60)
    lines = [f"## Service end to end ({size} x {size}, `{args.model.name}`, max_batch {args.max_batch}, CPU)", "",
             f"Engine in-process, JPEG bytes in: **{engine_tps:.2f} tiles/s** in batches of {args.max_batch}, "
             f"**{single_tps:.2f} tiles/s** one tile at a time (the most one client waiting for each answer can "
             "get: the reference at concurrency 1).", "",
             "| concurrency | requests | tiles/s | vs engine (batches) | vs engine (one at a time) | p50 ms | p99 ms |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['concurrency']} | {r['requests']} | {r['throughput']:.2f} | "
                     f"{r['throughput'] / engine_tps:.2f} | {r['throughput'] / single_tps:.2f} | "
                     f"{r['p50_ms']:.0f} | {r['p99_ms']:.0f} |")
    lines += ["", "The same load over gRPC (`bench/grpcload.py`: ModelInfer of the Open Inference Protocol, one "
              "encoded tile a request, a grpc.aio client in a separate process), run right after each HTTP row:", "",
              "| concurrency | HTTP tiles/s | gRPC tiles/s | gRPC / HTTP | HTTP p50 ms | gRPC p50 ms | gRPC p99 ms |",
              "|---|---|---|---|---|---|---|"]
    for h, g in zip(results, grpc_results, strict=True):
        lines.append(f"| {h['concurrency']} | {h['throughput']:.2f} | {g['throughput']:.2f} | "
                     f"{g['throughput'] / h['throughput']:.2f} | {h['p50_ms']:.0f} | {g['p50_ms']:.0f} | "
                     f"{g['p99_ms']:.0f} |")
    lines.append("")
    best = max(r["throughput"] for r in results) / engine_tps
    worst = min(r["throughput"] / (single_tps if r["concurrency"] == 1 else engine_tps) for r in results)
    lines += [f"Best service / engine (HTTP): **{best:.2f}**; lowest at any concurrency against its reference (one "
              f"tile at a time for concurrency 1, batches above): **{worst:.2f}** (target >= 0.8). Load generator: "
              "`bench/loadgen.py`, a separate process with httpx clients on loopback."]
    publish("service", lines, args.dry_run)


if __name__ == "__main__":
    main()
