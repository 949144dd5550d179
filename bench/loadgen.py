"""A bounded HTTP load generator (separate process): C concurrent clients for D seconds against one service.

Only loopback targets are accepted. Valid requests alternate between `/v1/detect` and `/v2/.../infer`; with
`--hostile SHARE`, that share of requests is drawn from the hostile classes of `bench.hostile`. Prints one JSON
line: requests, statuses per class, throughput, latency quantiles, valid answers that differ from the expected
detections, and answers whose status the class does not allow.

    python -m bench.loadgen http://127.0.0.1:8000/v1/detect --tiles DIR --concurrency 8 --duration 20
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _boxes(r: httpx.Response, protocol: str) -> list[list[float]]:
    if protocol == "v1":
        return [d["xyxy"] for d in r.json()["detections"]]
    outputs = {o["name"]: o for o in r.json()["outputs"]}
    return np.asarray(outputs["boxes"]["data"], dtype=float).reshape(-1, 4).tolist()


async def run(url: str, tiles: list[bytes], concurrency: int, duration: float, hostile: float, seed: int,
              expected: dict[int, list[list[float]]] | None, max_tiles: int, both_protocols: bool
              ) -> dict[str, object]:
    from bench.hostile import hostile_cases

    rng = random.Random(seed)
    base = url.split("/v1/")[0]
    cases = hostile_cases(max_tiles)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    wrong = unexpected = 0
    deadline = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        model = (await http.get(base + "/v1/models")).json()["models"][0]["name"]

        async def valid(index: int, protocol: str) -> tuple[str, httpx.Response | None]:
            if protocol == "v1":
                r = await http.post(url, content=tiles[index], headers={"content-type": "image/jpeg"})
            else:
                body = {"inputs": [{"name": "images", "datatype": "BYTES", "shape": [1],
                                    "data": [base64.b64encode(tiles[index]).decode()]}]}
                r = await http.post(f"{base}/v2/models/{model}/infer", json=body)
            return str(r.status_code), r

        async def client() -> None:
            nonlocal wrong, unexpected
            while time.perf_counter() < deadline:
                index = rng.randrange(len(tiles))
                case = rng.choice(cases) if rng.random() < hostile else None
                protocol = rng.choice(["v1", "v2"]) if both_protocols else "v1"
                start = time.perf_counter()
                r = None
                try:
                    if case is None:
                        code, r = await valid(index, protocol)
                    else:
                        code = str(await case.send(http, base, model))
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                latencies.append(time.perf_counter() - start)
                key = f"{case.name if case else 'valid-' + protocol}:{code}"
                statuses[key] = statuses.get(key, 0) + 1
                allowed = case.expected if case else frozenset({200, 503})
                if not code.isdigit() or int(code) not in allowed:
                    unexpected += 1
                if r is not None and r.status_code == 200 and expected is not None:
                    got, want = _boxes(r, protocol), expected[index]
                    if len(got) != len(want) or (got and np.abs(np.array(got) - np.array(want)).max() > 0.5):
                        wrong += 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    lat = np.array(latencies) * 1000
    ok = sum(v for k, v in statuses.items() if k.startswith("valid-") and k.endswith(":200"))
    return {"concurrency": concurrency, "seconds": elapsed, "requests": len(latencies), "ok": ok,
            "throughput": ok / elapsed, "p50_ms": float(np.percentile(lat, 50)) if len(lat) else None,
            "p99_ms": float(np.percentile(lat, 99)) if len(lat) else None, "statuses": statuses,
            "wrong_detections": wrong, "unexpected_statuses": unexpected}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url", help="the service's /v1/detect URL")
    ap.add_argument("--tiles", type=Path, required=True, help="folder of .jpg tiles")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--hostile", type=float, default=0.0, help="share of requests drawn from the hostile classes")
    ap.add_argument("--both-protocols", action="store_true", help="valid requests on /v1 and /v2 alike")
    ap.add_argument("--max-tiles", type=int, default=16, help="the server's max_tiles")
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
    result = asyncio.run(run(args.url, tiles, args.concurrency, args.duration, args.hostile, args.seed, expected,
                             args.max_tiles, args.both_protocols))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
