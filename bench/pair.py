"""What a model's second graph for upsampled imagery costs the service, side by side in one run: the same model with
and without its companion (`shipdet.inference.companion`; the copy without has the metadata entry removed, nothing
else changed).

Memory: resident set of a fresh process that loads and warms the engine (median of 3). Throughput: an in-process
service answering concurrent clients, tiles a second (medians over interleaved rounds), for tiles posted with
`gsd=10` (upsampled 4x into the model's range: all scored by the companion in the pair) and for a mix of those and
tiles posted as they are (a batch may then hold both kinds, and the pair runs each graph on its own part).

    python -m bench.pair --model shipdet/weights/shipdet-default.onnx
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.common import publish, real_tiles

RSS_SCRIPT = """import sys
from pathlib import Path
from shipdet.inference.engine import Engine
engine = Engine(Path(sys.argv[1]), providers=["cpu"], verify=False)
engine.warmup()
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS")))
"""


def one_graph_copy(model: Path, folder: Path) -> Path:
    from shipdet.inference.companion import UPSAMPLED_GRAPH_METADATA_KEY
    from shipdet.train.thresholds import write_metadata

    copy = folder / model.name
    shutil.copy(model, copy)
    write_metadata(copy, {}, remove=(UPSAMPLED_GRAPH_METADATA_KEY,))
    return copy


def resident_mib(model: Path, repeats: int) -> float:
    runs = [int(subprocess.run([sys.executable, "-c", RSS_SCRIPT, str(model)], capture_output=True, text=True,
                               check=True).stdout.split()[-1]) / 1024 for _ in range(repeats)]
    return statistics.median(runs)


def post_all(url: str, posts: list[tuple[bytes, dict[str, float]]], clients: int) -> float:
    """Seconds to have every tile answered by `clients` concurrent clients."""
    def post(item: tuple[bytes, dict[str, float]]) -> None:
        r = httpx.post(url + "/v1/detect", content=item[0], params=item[1], headers={"content-type": "image/jpeg"},
                       timeout=300)
        r.raise_for_status()

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(post, posts))
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, required=True, help="a model with a companion graph")
    ap.add_argument("--tiles", type=int, default=16)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--dry-run", action="store_true", help="few rounds, no docs update")
    args = ap.parse_args()
    rounds = 1 if args.dry_run else args.rounds

    from shipdet.inference.model import load_model_info
    from shipdet.serve.app import create_app
    from shipdet.serve.settings import ServeSettings
    from tests.serve.conftest import LiveServer

    info = load_model_info(args.model, verify=False)
    if info.upsampled_graph is None:
        raise SystemExit(f"{args.model} has no graph for upsampled imagery: export one with --upsampled-weights")
    side = info.imgsz[0]
    coarse: list[tuple[bytes, dict[str, float]]] = [(t, {"gsd": 10.0}) for t in real_tiles(args.tiles, side // 4)]
    native: list[tuple[bytes, dict[str, float]]] = [(t, {}) for t in real_tiles(args.tiles, side)]
    workloads = {"upsampled (gsd=10)": coarse,
                 "mixed, half each": [p for pair in zip(coarse[::2], native[1::2], strict=False) for p in pair]}
    with tempfile.TemporaryDirectory() as folder:
        single = one_graph_copy(args.model, Path(folder))
        models = {"one graph": single, "pair": args.model}
        rss = {name: resident_mib(path, 1 if args.dry_run else 3) for name, path in models.items()}
        seconds: dict[tuple[str, str], list[float]] = {(m, w): [] for m in models for w in workloads}
        with LiveServer(create_app(ServeSettings(model=single))) as one, \
                LiveServer(create_app(ServeSettings(model=args.model))) as two:
            urls = {"one graph": one.url, "pair": two.url}
            for work in workloads.values():  # warm both
                for url in urls.values():
                    post_all(url, work[:2], 2)
            for _ in range(rounds):
                for workload, posts in workloads.items():
                    for name, url in urls.items():
                        seconds[(name, workload)].append(post_all(url, posts, args.clients))
    rate = {key: len(workloads[key[1]]) / statistics.median(times) for key, times in seconds.items()}
    lines = [f"## A second graph for upsampled imagery (`{args.model.name}` and `{info.upsampled_graph.file}`, "
             f"{side} px, CPU)", "",
             "| | one graph | pair | pair / one graph |", "|---|---|---|---|",
             f"| resident memory after loading and warming the engine (MiB) | {rss['one graph']:.0f} | "
             f"{rss['pair']:.0f} | {rss['pair'] / rss['one graph']:.2f}x |"]
    for workload in workloads:
        a, b = rate[("one graph", workload)], rate[("pair", workload)]
        lines.append(f"| service, {workload}, tiles/s ({args.clients} clients) | {a:.2f} | {b:.2f} | {b / a:.2f}x |")
    lines += ["", f"Tiles: {args.tiles} real validation crops of each kind ({side // 4} px posted with `gsd=10`, "
              f"scored at {side} px; {side} px posted as they are), each in the model's own views; medians of "
              f"{rounds} interleaved rounds. The copy with one graph is the same file without its "
              "`shipdet_upsampled_graph` entry: it scores every tile with the main graph."]
    publish("pair", lines, args.dry_run)


if __name__ == "__main__":
    main()
