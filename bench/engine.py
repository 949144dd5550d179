"""Engine throughput on this machine, side by side in one run (medians of repeated batches):

1. bare inference on preprocessed batches (the ceiling): one `session.run` call per batch on an all-cores
   session (what ultralytics runs), and the engine's own CPU layout (single-threaded streams side by side),
2. the engine's full pipeline from JPEG bytes (decode, letterbox, infer, decode output, NMS),
3. ultralytics `YOLO(model).predict` with the `.pt` and with the `.onnx` on the same JPEG tiles (as files: its
   own decoding is part of its pipeline, as ours is of ours),
4. optionally the INT8 model against FP32 (throughput ratio; mAP50 change from its model card).

    python bench/engine.py --model weights/bench-640.onnx --pt work/runs/.../best.pt
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from bench.common import decode_all, median, publish, real_tiles
from shipdet.timing import timed_interleaved


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, required=True, help="FP32 ONNX (640 for the issue's figures)")
    ap.add_argument("--pt", type=Path, help="the same model's .pt, for the ultralytics comparison")
    ap.add_argument("--int8", type=Path, help="INT8 ONNX from `shipdet export --int8`")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--dry-run", action="store_true", help="few repeats, no docs update")
    args = ap.parse_args()
    repeats = 2 if args.dry_run else args.repeats

    from shipdet.inference.engine import Engine

    engine = Engine(args.model, providers=["cpu"], max_batch=args.batch, verify=False)
    size = engine.input_size[0]
    tiles = real_tiles(args.batch, size)
    arrays = decode_all(tiles)
    batch, _ = engine.preprocess(arrays)
    n = len(tiles)

    def bare() -> None:
        engine.session.run([engine.output_name], {engine.input_name: batch})

    def bare_streams() -> None:
        engine.infer(batch)

    def full() -> None:
        engine.detect(tiles, conf=0.25)

    streams = f"bare inference, {engine.streams} single-threaded streams"
    paths: dict[str, Callable[[], object]] = {"bare session.run, one call per batch": bare, streams: bare_streams,
                                              "engine full pipeline (JPEG bytes in)": full}
    folder = Path(tempfile.mkdtemp(prefix="shipdet-bench-"))
    if args.pt:
        os.environ.setdefault("YOLO_OFFLINE", "1")
        from shipdet.train.offline import ensure_offline

        ensure_offline()
        import torch
        from ultralytics import YOLO

        torch.set_num_threads(os.cpu_count() or 1)
        files = [str(folder / f"tile{i}.jpg") for i in range(n)]
        for path, tile in zip(files, tiles, strict=True):
            Path(path).write_bytes(tile)
        for label, weights in (("ultralytics predict, .pt", args.pt), ("ultralytics predict, .onnx", args.model)):
            model = YOLO(str(weights), task="detect")
            paths[label] = partial(model.predict, files, imgsz=size, conf=0.25, verbose=False, device="cpu", batch=n)
    int8_line = ""
    if args.int8:
        q = Engine(args.int8, providers=["cpu"], max_batch=args.batch, verify=False)
        paths["bare inference, INT8, same layout"] = lambda: q.infer(batch)
        paths["engine full pipeline, INT8"] = lambda: q.detect(tiles, conf=0.25)
    rows = {name: n / median(times) for name, times in timed_interleaved(paths, repeats).items()}
    shutil.rmtree(folder)
    if args.int8:
        card = args.model.with_suffix(".card.json")
        if card.is_file() and "int8" in json.loads(card.read_text()):
            info = json.loads(card.read_text())["int8"]
            int8_line = (f"\nINT8 vs FP32 mAP50 on the validation split (from `shipdet export --int8`): "
                         f"{info['mAP50_fp32']:.3f} -> {info['mAP50_int8']:.3f} ({info['mAP50_change']:+.3f}).\n")
    full_tps = rows["engine full pipeline (JPEG bytes in)"]
    lines = [f"## Engine ({size} x {size}, batch {n}, `{args.model.name}`, CPU)", "",
             "| path | tiles/s (median) | vs engine |", "|---|---|---|"]
    lines += [f"| {k} | {v:.2f} | {full_tps / v:.2f}x |" for k, v in rows.items()]
    ceiling = max(rows["bare session.run, one call per batch"], rows[streams])
    ratio = full_tps / ceiling
    lines += ["", f"Ceiling: the faster of the two bare rows ({ceiling:.2f} tiles/s). All paths timed in rotation "
              "in one process (medians); ultralytics reads the same JPEG tiles as files and decodes them itself, "
              "as the engine decodes the bytes.", "",
              f"Engine full pipeline / bare inference: **{ratio:.3f}** (target >= 0.9)."]
    if args.pt:
        pt_ratio = full_tps / rows["ultralytics predict, .pt"]
        lines.append(f"Engine / ultralytics `.pt`: **{pt_ratio:.2f}x** (target >= 2); "
                     f"engine / ultralytics `.onnx`: **{full_tps / rows['ultralytics predict, .onnx']:.2f}x** "
                     f"(target >= 1.1).")
    if args.int8:
        speedup = rows["bare inference, INT8, same layout"] / rows[streams]
        lines.append(f"INT8 / FP32 bare throughput: **{speedup:.2f}x**.")
        lines.append(int8_line)
    publish("engine", lines, args.dry_run)
    np.set_printoptions()


if __name__ == "__main__":
    main()
