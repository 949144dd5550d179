"""A bounded HTTP load generator (separate process): C concurrent clients for D seconds against one URL.

Only loopback targets are accepted. Prints one JSON line: requests, statuses, throughput, latency quantiles,
and optionally checks each valid response against expected detections.

    python -m bench.loadgen http://127.0.0.1:8000/v1/detect --tiles DIR --concurrency 8 --duration 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


async def run(url: str, tiles: list[bytes], concurrency: int, duration: float, malformed: float, seed: int,
              expected: dict[int, list[list[float]]] | None) -> dict[str, object]:
    rng = random.Random(seed)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    wrong = 0
    deadline = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def client(worker: int) -> None:
        nonlocal wrong
        async with httpx.AsyncClient(timeout=60, limits=limits) as http:
            while time.perf_counter() < deadline:
                index = rng.randrange(len(tiles))
                bad = rng.random() < malformed
                body = tiles[index][: len(tiles[index]) // 3] if bad else tiles[index]
                start = time.perf_counter()
                try:
                    r = await http.post(url, content=body, headers={"content-type": "image/jpeg"})
                    code = str(r.status_code)
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                    r = None
                latencies.append(time.perf_counter() - start)
                key = f"{'malformed' if bad else 'valid'}:{code}"
                statuses[key] = statuses.get(key, 0) + 1
                if r is not None and not bad and r.status_code == 200 and expected is not None:
                    got = [d["xyxy"] for d in r.json()["detections"]]
                    want = expected[index]
                    if len(got) != len(want) or (got and np.abs(np.array(got) - np.array(want)).max() > 0.5):
                        wrong += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    lat = np.array(latencies) * 1000
    ok = sum(v for k, v in statuses.items() if k.endswith(":200"))
    return {"concurrency": concurrency, "seconds": elapsed, "requests": len(latencies), "ok": ok,
            "throughput": ok / elapsed, "p50_ms": float(np.percentile(lat, 50)) if len(lat) else None,
            "p99_ms": float(np.percentile(lat, 99)) if len(lat) else None, "statuses": statuses,
            "wrong_detections": wrong}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--tiles", type=Path, required=True, help="folder of .jpg tiles")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--malformed", type=float, default=0.0, help="share of truncated bodies")
    ap.add_argument("--expected", type=Path, help="JSON: tile index -> expected xyxy list")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    host = urlparse(args.url).hostname or ""
    if host not in LOOPBACK and not host.startswith("127."):
        raise SystemExit(f"refusing to load {host}: loopback targets only")
    tiles = [p.read_bytes() for p in sorted(args.tiles.glob("*.jpg"))]
    expected = None
    if args.expected:
        expected = {int(k): v for k, v in json.loads(args.expected.read_text()).items()}
    result = asyncio.run(run(args.url, tiles, args.concurrency, args.duration, args.malformed, args.seed, expected))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
