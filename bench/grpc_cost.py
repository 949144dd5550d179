"""Does serving gRPC beside HTTP cost HTTP anything? The same HTTP load against the service with its gRPC
endpoint off and on (no gRPC client connected: the cost of it being there), alternating, several rounds; medians.

    python -m bench.grpc_cost --model work/bench/bench-640.onnx [--rounds 3 --duration 10]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.common import median, publish, real_tiles
from bench.service import loadgen, start_server


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--port", type=int, default=8775)
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()

    from shipdet.inference.engine import Engine

    engine = Engine(args.model, providers=["cpu"], verify=False)
    size = engine.input_size[0]
    engine.close()
    folder = Path(tempfile.mkdtemp(prefix="shipdet-bench-"))
    for i, tile in enumerate(real_tiles(16, size)):
        (folder / f"{i:03d}.jpg").write_bytes(tile)
    rounds, duration = (1, 3.0) if args.dry_run else (args.rounds, args.duration)
    runs: dict[tuple[str, int], list[float]] = {}
    for _ in range(rounds):
        for grpc in ("off", "on"):
            env = {"SHIPDET_SERVE_GRPC_PORT": str(args.port + 1)} if grpc == "on" else {}
            server = start_server(args.model, args.port, env)
            try:
                for c in args.concurrency:
                    result = loadgen(f"http://127.0.0.1:{args.port}/v1/detect", folder, c, duration)
                    runs.setdefault((grpc, c), []).append(result["throughput"])
            finally:
                server.terminate()
                server.wait(timeout=60)
    lines = [f"## HTTP with the gRPC endpoint off and on ({size} x {size}, `{args.model.name}`, CPU)", "",
             f"HTTP tiles/s, median of {rounds} alternating rounds of {duration:g} s each (no gRPC client connected):",
             "", "| concurrency | gRPC off | gRPC on | on / off | every round off | every round on |",
             "|---|---|---|---|---|---|"]
    for c in args.concurrency:
        off, on = runs[("off", c)], runs[("on", c)]
        lines.append(f"| {c} | {median(off):.2f} | {median(on):.2f} | {median(on) / median(off):.2f} | "
                     f"{', '.join(f'{x:.1f}' for x in off)} | {', '.join(f'{x:.1f}' for x in on)} |")
    publish("grpc-cost", lines, args.dry_run)


if __name__ == "__main__":
    main()
