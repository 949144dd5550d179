"""Serving cost of the candidate architectures and input sizes, side by side in one run: YOLO11n and YOLO11s,
axis-aligned and oriented, each exported at every input size asked for and scored by the serving engine on real
JPEG tiles of that size (medians of interleaved repeats). A larger input covers more imagery per tile at the same
GSD, so the rate is given per tile and per megapixel. Accuracy needs a trained model of each: the card gives it
where one exists.

    python -m bench.architectures [--imgsz 512,640] [--arch yolo11n.yaml] [--repeats 5]
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

from bench.common import REPO, median, real_tiles, write_section
from shipdet.timing import timed_interleaved

ARCHITECTURES = ("yolo11n.yaml", "yolo11s.yaml", "yolo11n-obb.yaml", "yolo11s-obb.yaml")


def export_untrained(arch: str, imgsz: int, out: Path) -> Path:
    """The architecture with random weights, exported as shipdet exports (dynamic batch, simplified)."""
    from shipdet.train.offline import ensure_offline

    ensure_offline()
    from ultralytics import YOLO
    from ultralytics.nn.tasks import DetectionModel, OBBModel

    from shipdet.train.warmstart import write_checkpoint

    target = out / f"{Path(arch).stem}-{imgsz}.onnx"
    if not target.is_file():
        task = "obb" if "obb" in arch else "detect"
        built = (OBBModel if task == "obb" else DetectionModel)(arch, nc=1, verbose=False)  # one class, as ours
        checkpoint = write_checkpoint(built, out / f"{Path(arch).stem}.pt", Path(arch), arch, imgsz, task)
        exported = Path(YOLO(str(checkpoint), task=task).export(format="onnx", imgsz=imgsz, dynamic=True,
                                                                simplify=True, verbose=False))
        exported.rename(target)
    return target


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--imgsz", default="512", help="Input sizes, comma-separated (e.g. 512,640).")
    ap.add_argument("--arch", action="append", help=f"Architecture .yaml (repeatable; default: {ARCHITECTURES}).")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tiles", type=int, default=32)
    ap.add_argument("--note", default="", help="A line on the conditions (e.g. what else ran).")
    args = ap.parse_args()
    from shipdet.inference.engine import Engine

    sizes = [int(s) for s in args.imgsz.split(",")]
    archs = args.arch or list(ARCHITECTURES)
    out = REPO / "work" / "bench" / "arch"
    out.mkdir(parents=True, exist_ok=True)
    tiles = {size: real_tiles(args.tiles, size) for size in sizes}
    engines = {(arch, size): Engine(export_untrained(arch, size, out), providers=["cpu"], verify=False)
               for arch in archs for size in sizes}
    times = timed_interleaved({f"{a}@{s}": partial(e.detect, tiles[s], conf=0.25) for (a, s), e in engines.items()},
                              args.repeats)
    rate = {key: args.tiles / median(times[f"{key[0]}@{key[1]}"]) for key in engines}
    base = rate[(archs[0], sizes[0])]
    lines = [f"Serving engine, {args.tiles} real JPEG tiles at each input size, full pipeline (decode, letterbox, "
             "infer, NMS), CPU:", "",
             f"| architecture | input px | tiles/s | megapixels/s | time per megapixel, relative to "
             f"{Path(archs[0]).stem} at {sizes[0]} |", "|---|---|---|---|---|"]
    for (a, s), r in rate.items():
        per_mp = (base * sizes[0] ** 2) / (r * s**2)
        lines.append(f"| {Path(a).stem} | {s} | {r:.1f} | {r * s * s / 1e6:.2f} | {per_mp:.2f} |")
    if args.note:
        lines += ["", args.note]
    write_section("architectures", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
