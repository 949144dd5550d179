"""Engine throughput on this machine, side by side in one run (medians of repeated batches):

1. bare `session.run` on preprocessed batches (the ceiling),
2. the engine's full pipeline from JPEG bytes (decode, letterbox, infer, decode output, NMS),
3. ultralytics `YOLO(model).predict` with the `.pt` and with the `.onnx` on the same tiles,
4. optionally the INT8 model against FP32 (throughput ratio; mAP50 change from its model card).

    python bench/engine.py --model weights/bench-640.onnx --pt work/runs/.../best.pt
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from bench.common import decode_all, median, real_tiles, timed, write_section


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

    from shipdet.serve.decode import decode_image
    from shipdet.serve.engine import Engine

    engine = Engine(args.model, providers=["cpu"], max_batch=args.batch, verify=False)
    size = engine.input_size[0]
    tiles = real_tiles(args.batch, size)
    arrays = decode_all(tiles)
    batch, _ = engine.preprocess(arrays)
    n = len(tiles)

    def bare() -> None:
        engine.session.run([engine.output_name], {engine.input_name: batch})

    def full() -> None:
        engine.detect([decode_image(t).pixels for t in tiles], conf=0.25)

    rows = {"bare session.run (ceiling)": n / median(timed(bare, repeats)),
            "engine full pipeline (JPEG bytes in)": n / median(timed(full, repeats))}
    if args.pt:
        os.environ.setdefault("YOLO_OFFLINE", "1")
        from shipdet.train.offline import ensure_offline

        ensure_offline()
        import torch
        from ultralytics import YOLO

        torch.set_num_threads(os.cpu_count() or 1)
        bgr = [a[..., ::-1] for a in arrays]
        for label, weights in (("ultralytics predict, .pt", args.pt), ("ultralytics predict, .onnx", args.model)):
            model = YOLO(str(weights), task="detect")
            rows[label] = n / median(timed(lambda m=model: m.predict(bgr, imgsz=size, conf=0.25, verbose=False,
                                                                    device="cpu", batch=n), repeats))
    int8_line = ""
    if args.int8:
        q = Engine(args.int8, providers=["cpu"], max_batch=args.batch, verify=False)
        rows["bare session.run, INT8"] = n / median(timed(
            lambda: q.session.run([q.output_name], {q.input_name: batch}), repeats))
        rows["engine full pipeline, INT8"] = n / median(timed(
            lambda: q.detect([decode_image(t).pixels for t in tiles], conf=0.25), repeats))
        card = args.model.with_suffix(".card.json")
        if card.is_file() and "int8" in json.loads(card.read_text()):
            info = json.loads(card.read_text())["int8"]
            int8_line = (f"\nINT8 vs FP32 mAP50 on the validation split (from `shipdet export --int8`): "
                         f"{info['mAP50_fp32']:.3f} -> {info['mAP50_int8']:.3f} ({info['mAP50_change']:+.3f}).\n")
    full_tps = rows["engine full pipeline (JPEG bytes in)"]
    lines = [f"## Engine ({size} x {size}, batch {n}, `{args.model.name}`, CPU)", "",
             "| path | tiles/s (median) | vs engine |", "|---|---|---|"]
    lines += [f"| {k} | {v:.2f} | {full_tps / v:.2f}x |" for k, v in rows.items()]
    ratio = full_tps / rows["bare session.run (ceiling)"]
    lines += ["", f"Engine full pipeline / bare session.run: **{ratio:.3f}** (target >= 0.9)."]
    if args.pt:
        pt_ratio = full_tps / rows["ultralytics predict, .pt"]
        lines.append(f"Engine / ultralytics `.pt`: **{pt_ratio:.2f}x** (target >= 2); "
                     f"engine / ultralytics `.onnx`: **{full_tps / rows['ultralytics predict, .onnx']:.2f}x** "
                     f"(target >= 1.1).")
    if args.int8:
        speedup = rows["bare session.run, INT8"] / rows["bare session.run (ceiling)"]
        lines.append(f"INT8 / FP32 bare throughput: **{speedup:.2f}x**.")
        lines.append(int8_line)
    text = "\n".join(lines)
    print(text)
    if not args.dry_run:
        write_section("engine", text)
    np.set_printoptions()


if __name__ == "__main__":
    main()
