"""Serving cost of the candidate architectures, side by side in one run: YOLO11n and YOLO11s, axis-aligned and
oriented, exported at the same input size and scored by the serving engine on the same real JPEG tiles (medians of
interleaved repeats). Accuracy needs a trained model of each: the card gives it where one exists.

    python -m bench.architectures [--imgsz 512] [--repeats 5]
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

from bench.common import REPO, median, real_tiles, timed_interleaved, write_section

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
    ap.add_argument("--imgsz", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tiles", type=int, default=32)
    ap.add_argument("--note", default="", help="A line on the conditions (e.g. what else ran).")
    args = ap.parse_args()
    from shipdet.inference.engine import Engine

    out = REPO / "work" / "bench" / "arch"
    out.mkdir(parents=True, exist_ok=True)
    tiles = real_tiles(args.tiles, args.imgsz)
    engines = {arch: Engine(export_untrained(arch, args.imgsz, out), providers=["cpu"], verify=False)
               for arch in ARCHITECTURES}
    times = timed_interleaved({a: partial(e.detect, tiles, conf=0.25) for a, e in engines.items()},
                              args.repeats)
    rate = {a: args.tiles / median(t) for a, t in times.items()}
    lines = [f"Serving engine, {args.tiles} real JPEG tiles at {args.imgsz} px, full pipeline (decode, letterbox, "
             "infer, NMS), CPU:", "", "| architecture | tiles/s | relative to YOLO11n |", "|---|---|---|"]
    lines += [f"| {Path(a).stem} | {r:.1f} | {r / rate['yolo11n.yaml']:.2f} |" for a, r in rate.items()]
    if args.note:
        lines += ["", args.note]
    write_section("architectures", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
