"""What scoring each tile in several views costs and gives, side by side in one run:

throughput of the engine on real tiles at 1, 2, 4 (and 8) views (interleaved repeats, medians), beside the accuracy
`shipdet evaluate --views N [--views-upsampled M] --conf C [--conf-upsampled CU]` measured on the validation split
(its metrics.json, one per operating point, labelled N, or N/M where the images the scale path upsamples are
scored in M views: the throughput is that of N, the views of a tile scored as posted).

    python bench/views.py --model weights/shipdet-default.onnx --metrics 1=work/eval-views/1/metrics.json \
        --metrics 4/2=docs/default-model/metrics.json
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path

from bench.common import decode_all, median, publish, real_tiles
from shipdet.timing import timed_interleaved


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--views", default="1,2,4,8", help="view counts to time")
    ap.add_argument("--metrics", action="append", default=[], help="N=metrics.json of `shipdet evaluate --views N`")
    ap.add_argument("--tiles", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--dry-run", action="store_true", help="few repeats, no docs update")
    args = ap.parse_args()
    repeats = 2 if args.dry_run else args.repeats

    from shipdet.inference.engine import Engine
    from shipdet.inference.views import detect_in_views

    engine = Engine(args.model, providers=["cpu"], verify=False)
    arrays = decode_all(real_tiles(args.tiles, engine.input_size[0]))
    counts = [int(v) for v in args.views.split(",")]
    runs = timed_interleaved({str(n): partial(detect_in_views, engine, arrays, n, conf=0.25, iou=0.45)
                              for n in counts}, repeats)
    rate = {n: len(arrays) / median(runs[str(n)]) for n in counts}
    measured = dict(m.split("=", 1) for m in args.metrics)
    lines = [f"## Views: each tile scored in N views and fused (`{args.model.name}`, "
             f"{engine.input_size[0]} x {engine.input_size[1]}, CPU)", "",
             "| views (upsampled imagery) | tiles/s (median) | vs 1 view | mAP50 | mAP50-95 | conf (upsampled) | F1 "
             "there | false alarms per ship-free image there | best F1, one threshold (conf) |",
             "|---|---|---|---|---|---|---|---|---|"]
    rows = [(label, json.loads(Path(path).read_text())) for label, path in measured.items()]
    rows += [(str(n), None) for n in counts if all(label.split("/")[0] != str(n) for label in measured)]
    for label, m in sorted(rows, key=lambda row: [int(v) for v in row[0].split("/")]):
        n = int(label.split("/")[0])
        accuracy = "- | - | - | - | - | -"
        if m:
            upsampled = "" if m.get("conf_upsampled") in (None, m["conf"]) else f" ({m['conf_upsampled']})"
            accuracy = (f"{m['mAP50']:.3f} | {m['mAP50-95']:.3f} | {m['conf']}{upsampled} | {m['f1']:.3f} | "
                        f"{m['false_alarms']['per_image']:.3f} | {m['best_f1']['f1']:.3f} ({m['best_f1']['conf']})")
        views = f"{n} ({label.split('/')[1]})" if "/" in label else str(n)
        lines.append(f"| {views} | {rate[n]:.2f} | {rate[n] / rate[counts[0]]:.2f}x | {accuracy} |")
    lines += ["", f"Throughput: the engine's full pipeline on {len(arrays)} real validation tiles per call, all counts "
              "timed in rotation in one process (medians); a tile the scale path upsamples costs what its own views "
              "cost. Accuracy: `shipdet evaluate` on the validation split at each row's operating point, each domain "
              "at the lowest threshold that keeps its own false alarms within 0.05 per ship-free image "
              "(`docs/default-model/measured.md`); mAP from up to 300 detections an image, as served. N views cost "
              "N inferences a tile, and the fusion a little more."]
    publish("views", lines, args.dry_run)


if __name__ == "__main__":
    main()
