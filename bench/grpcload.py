"""The gRPC twin of bench/loadgen.py (separate process): C concurrent clients for D seconds calling ModelInfer
of the Open Inference Protocol on one loopback target, one encoded tile a request. Prints one JSON line.

    python -m bench.grpcload 127.0.0.1:8001 MODEL_NAME --tiles DIR --concurrency 8 --duration 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import struct
import time
from pathlib import Path

import numpy as np


async def run(target: str, model: str, tiles: list[bytes], concurrency: int, duration: float,
              seed: int) -> dict[str, object]:
    import grpc
    from grpc import aio

    from shipdet.serve.grpc_server import SERVICE
    from shipdet.serve.protos import grpc_predict_v2_pb2 as pb

    rng = random.Random(seed)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    deadline = time.perf_counter() + duration
    async with aio.insecure_channel(target, options=[("grpc.max_receive_message_length", 64 << 20)]) as channel:
        infer = channel.unary_unary(f"/{SERVICE}/ModelInfer", pb.ModelInferRequest.SerializeToString,
                                    pb.ModelInferResponse.FromString)

        async def client() -> None:
            while time.perf_counter() < deadline:
                tile = tiles[rng.randrange(len(tiles))]
                request = pb.ModelInferRequest(model_name=model,
                                               raw_input_contents=[struct.pack("<I", len(tile)) + tile])
                request.inputs.add(name="images", datatype="BYTES", shape=[1])
                start = time.perf_counter()
                try:
                    await infer(request, timeout=60)
                    code = "OK"
                except grpc.aio.AioRpcError as exc:
                    code = exc.code().name
                latencies.append(time.perf_counter() - start)
                statuses[code] = statuses.get(code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    lat = np.array(latencies) * 1000
    ok = statuses.get("OK", 0)
    return {"concurrency": concurrency, "seconds": elapsed, "requests": len(latencies), "ok": ok,
            "throughput": ok / elapsed, "p50_ms": float(np.percentile(lat, 50)) if len(lat) else None,
            "p99_ms": float(np.percentile(lat, 99)) if len(lat) else None, "statuses": statuses}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("target", help="host:port of the service's gRPC endpoint (loopback only)")
    ap.add_argument("model", help="the served model's name")
    ap.add_argument("--tiles", type=Path, required=True, help="folder of .jpg tiles")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not args.target.startswith(("127.", "localhost:", "[::1]:")):
        raise SystemExit(f"refusing to load {args.target}: loopback targets only")
    tiles = [p.read_bytes() for p in sorted(args.tiles.glob("*.jpg"))]
    print(json.dumps(asyncio.run(run(args.target, args.model, tiles, args.concurrency, args.duration, args.seed))))


if __name__ == "__main__":
    main()
