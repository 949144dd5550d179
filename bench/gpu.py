"""GPU figures in one go (see bench/gpu.sh): which providers work, engine tiles/s at 640 for batch 1..64 with
CUDA and TensorRT FP16, nvJPEG against CPU JPEG decoding, and the service end to end at concurrency 64.
With --cpu-check it runs every part that needs no GPU, on the CPU, with small sizes."""

from __future__ import annotations

import argparse
import subprocess
import time
from functools import partial
from pathlib import Path

import numpy as np

from bench.common import decode_all, median, real_tiles, timed, write_section


def provider_report(model: Path) -> dict[str, str]:
    import onnxruntime as ort

    from shipdet.inference.model import resolve_providers

    report = {}
    for name in ("tensorrt", "cuda", "cpu"):
        providers = resolve_providers([name])
        wanted = providers[0] if isinstance(providers[0], str) else providers[0][0]
        try:
            session = ort.InferenceSession(str(model), providers=providers)
            used = session.get_providers()[0]
            report[name] = "works" if used == wanted and (name == "cpu" or wanted != "CPUExecutionProvider") \
                else f"not available (fell back to {used})"
        except Exception as exc:  # a provider that fails to initialise is reported, not fatal
            report[name] = f"fails: {type(exc).__name__}: {str(exc)[:120]}"
    return report


def engine_sweep(model: Path, provider: str, batches: list[int], tiles: list[np.ndarray], repeats: int
                 ) -> list[tuple[int, float, float]]:
    from shipdet.inference.engine import Engine

    engine = Engine(model, providers=[provider], max_batch=max(batches), verify=False)
    rows = []
    for b in batches:
        chunk = [tiles[i % len(tiles)] for i in range(b)]
        batch, _ = engine.preprocess(chunk)
        bare = b / median(timed(partial(engine.infer, batch), repeats, warmup=2))
        full = b / median(timed(partial(engine.detect, chunk), repeats, warmup=1))
        rows.append((b, bare, full))
    return rows


def jpeg_decode(tiles: list[bytes], repeats: int) -> dict[str, float]:
    import simplejpeg

    out = {"CPU (libjpeg-turbo, 1 thread)": len(tiles) / median(timed(
        lambda: [simplejpeg.decode_jpeg(t, colorspace="RGB") for t in tiles], repeats))}
    try:
        import torch
        import torchvision.io as tio

        if torch.cuda.is_available():
            data = [torch.frombuffer(bytearray(t), dtype=torch.uint8) for t in tiles]

            def gpu() -> None:
                tio.decode_jpeg(data, device="cuda")
                torch.cuda.synchronize()

            out["GPU (nvJPEG via torchvision)"] = len(tiles) / median(timed(gpu, repeats, warmup=2))
    except Exception as exc:  # torchvision without nvJPEG: say so
        out[f"GPU nvJPEG unavailable ({type(exc).__name__})"] = float("nan")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, required=True, help="640 FP32 ONNX with a dynamic batch axis")
    ap.add_argument("--cpu-check", action="store_true")
    args = ap.parse_args()
    lines = []
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.strip() or "no GPU"
    except (OSError, subprocess.TimeoutExpired):
        gpu = "no GPU (nvidia-smi not found)"
    providers = provider_report(args.model)
    lines += [f"## GPU figures ({'CPU check only' if args.cpu_check else gpu})", "", f"GPU: {gpu}", "",
              "| execution provider | status |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in providers.items()]
    size = 640
    tiles_bytes = real_tiles(16, size)
    tiles = decode_all(tiles_bytes)
    batches = [1, 2, 4] if args.cpu_check else [1, 2, 4, 8, 16, 32, 64]
    repeats = 2 if args.cpu_check else 10
    sweep_providers = ["cpu"] if args.cpu_check else [p for p in ("cuda", "tensorrt") if providers[p] == "works"]
    for provider in sweep_providers:
        lines += ["", f"Engine at {size} x {size}, provider `{provider}`:", "",
                  "| batch | bare infer tiles/s | full pipeline tiles/s |", "|---|---|---|"]
        lines += [f"| {b} | {bare:.1f} | {full:.1f} |" for b, bare, full in
                  engine_sweep(args.model, provider, batches, tiles, repeats)]
    decode = jpeg_decode(tiles_bytes * 4, repeats)
    lines += ["", "JPEG decoding of 640 x 640 tiles:", "", "| decoder | images/s |", "|---|---|"]
    lines += [f"| {k} | {v:.0f} |" for k, v in decode.items()]
    if not args.cpu_check and providers.get("cuda") == "works":
        import os

        from bench.service import loadgen, start_server

        folder = Path("/tmp/shipdet-gpu-tiles")
        folder.mkdir(exist_ok=True)
        for i, t in enumerate(tiles_bytes):
            (folder / f"{i:03d}.jpg").write_bytes(t)
        server = start_server(args.model, 8767, {"SHIPDET_SERVE_MAX_BATCH": "32", "SHIPDET_SERVE_MAX_DELAY_MS": "4",
                                                  "SHIPDET_SERVE_PROVIDERS": '["tensorrt","cuda","cpu"]',
                                                  "SHIPDET_SERVE_QUEUE_SIZE": "256", **os.environ})
        try:
            r = loadgen("http://127.0.0.1:8767/v1/detect", folder, 64, 20)
        finally:
            server.terminate()
            server.wait(timeout=60)
        lines += ["", f"Service end to end at concurrency 64: {r['throughput']:.1f} tiles/s, p50 {r['p50_ms']:.0f} ms,"
                  f" p99 {r['p99_ms']:.0f} ms, statuses {r['statuses']}."]
    text = "\n".join(lines)
    print(text)
    write_section("gpu-cpu-check" if args.cpu_check else "gpu", text)
    time.sleep(0)


if __name__ == "__main__":
    main()
