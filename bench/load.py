"""Load proof: 64 concurrent clients for 60 s against a real server process, valid requests on `/v1` and `/v2`
mixed with a share of every hostile class (`bench.hostile`: malformed images and parameters, decoding bombs,
oversized heads, stalled bodies, ...).

Checks: every answer has a status its class allows (valid: 200, or 503 under overload), every valid 200 answer
equals the in-process engine's detections on the same tile, and the server's resident memory grows by less than
10 % from the first to the last 10 seconds.

    python -m bench.load --model weights/shipdet-default.onnx
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import memory_mib, publish, real_tiles
from bench.service import start_server


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--hostile", type=float, default=0.2, help="share of requests drawn from the hostile classes")
    ap.add_argument("--body-timeout", type=float, default=3.0, help="the server's body_timeout_s")
    ap.add_argument("--port", type=int, default=8766)
    ap.add_argument("--warmup", type=float, default=15.0, help="seconds of the same load before measuring")
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    duration = 15.0 if args.dry_run else args.duration

    from shipdet.formats import detection_records
    from shipdet.inference.decode import decode_image
    from shipdet.inference.engine import Engine
    from shipdet.inference.views import detect_in_views

    engine = Engine(args.model, providers=["cpu"], verify=False)
    tiles = real_tiles(16, engine.input_size[0])
    folder = Path(tempfile.mkdtemp(prefix="shipdet-load-"))
    expected = {}
    for i, t in enumerate(tiles):
        (folder / f"{i:03d}.jpg").write_bytes(t)
        dets = detect_in_views(engine, [decode_image(t).pixels], engine.info.default_views,  # as the service answers
                               conf=engine.info.default_conf, iou=0.45)[0]
        expected[i] = [r["xyxy"] for r in detection_records(dets)]
    (folder / "expected.json").write_text(json.dumps(expected))
    views = engine.info.default_views
    del engine

    server = start_server(args.model, args.port, {"SHIPDET_SERVE_BODY_TIMEOUT_S": str(args.body_timeout),
                                                  "SHIPDET_SERVE_MAX_TILES": "16"})
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        start = time.monotonic()
        while not stop.is_set():
            samples.append((time.monotonic() - start, memory_mib(server.pid)))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    base = [sys.executable, "-m", "bench.loadgen", f"http://127.0.0.1:{args.port}/v1/detect", "--tiles",
            str(folder), "--concurrency", str(args.clients), "--hostile", str(args.hostile), "--both-protocols",
            "--max-tiles", "16"]
    try:
        # Warm-up: onnxruntime grows its memory arena to the largest batch once; memory is then measured
        # over the load run proper, so growth means a leak, not the first allocation.
        subprocess.run([*base, "--duration", str(args.warmup)], capture_output=True, check=True)
        cmd = [*base, "--duration", str(duration), "--expected", str(folder / "expected.json")]
        loadgen = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)  # the load generator's start-up (imports) before its clients send
        sampler.start()
        out, _ = loadgen.communicate()
        result = json.loads(out.splitlines()[-1])
    finally:
        stop.set()
        sampler.join()
        server.terminate()
        code = server.wait(timeout=60)
    window = 10.0
    first = [m for t, m in samples if t <= window]
    last = [m for t, m in samples if t >= samples[-1][0] - window]
    growth = (sum(last) / len(last)) / (sum(first) / len(first)) - 1
    bad_5xx = {k: v for k, v in result["statuses"].items() if k.split(":")[1].startswith("5") and
               not k.endswith(":503")}
    classes: dict[str, dict[str, int]] = {}
    for key, count in result["statuses"].items():
        name, status = key.rsplit(":", 1)
        classes.setdefault(name, {})[status] = count
    table = ["| class | answers (status: count) |", "|---|---|"] + [
        f"| {name} | {', '.join(f'{s}: {n}' for s, n in sorted(codes.items()))} |"
        for name, codes in sorted(classes.items())]
    lines = [f"## Load: {args.clients} clients for {duration:.0f} s, {args.hostile:.0%} hostile "
             f"(`{args.model.name}`, {views} view{'s' if views > 1 else ''} a tile, CPU)", "",
             f"- requests: {result['requests']}, valid answered 200: {result['ok']}, throughput "
             f"{result['throughput']:.2f} tiles/s, p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms",
             f"- unexpected statuses (a status the class does not allow): **{result['unexpected_statuses']}**; "
             f"5xx other than 503: **{sum(bad_5xx.values())}**; valid answers differing from the in-process "
             f"engine: **{result['wrong_detections']}**",
             f"- server RSS (after a {args.warmup:.0f} s warm-up at the same load): first 10 s "
             f"{sum(first) / len(first):.0f} MiB, "
             f"last 10 s {sum(last) / len(last):.0f} MiB,"
             f" growth **{growth:+.1%}** (limit +10 %)",
             f"- server exit status after SIGTERM: {code}", "", *table]
    publish("load", lines, args.dry_run)


if __name__ == "__main__":
    main()
