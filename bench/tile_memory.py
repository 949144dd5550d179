"""What one large tile holds while the service scores it: a 10 m tile posted with `gsd=10` is resampled x4 into
the model's range and scored in hundreds of windows x views; its model inputs (3 MiB each at 512 px) are made a
batch at a time, so its peak should not grow with the number of inputs.

Peak of the memory Python and numpy allocate (tracemalloc; onnxruntime's own arena is not counted) during one
request to an in-process service, at 1, 2 and 4 views, beside what holding every input at once would take.

    python -m bench.tile_memory --model shipdet/weights/shipdet-default.onnx
"""

from __future__ import annotations

import argparse
import io
import time
import tracemalloc
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from bench.common import publish


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--side", type=int, default=1000, help="tile side in pixels, posted at 10 m")
    ap.add_argument("--views", default="1,2,4")
    ap.add_argument("--dry-run", action="store_true", help="no docs update")
    args = ap.parse_args()

    from shipdet.inference.model import load_model_info
    from shipdet.serve.app import create_app
    from shipdet.serve.settings import ServeSettings
    from tests.serve.conftest import LiveServer

    height, width = load_model_info(args.model).imgsz
    pixels = np.random.default_rng(0).integers(0, 60, (args.side, args.side, 3), dtype=np.uint8)
    body = io.BytesIO()
    Image.fromarray(pixels).save(body, format="PNG")
    lines = [f"## One large tile's memory (`{args.model.name}`, a {args.side} x {args.side} px tile at 10 m, CPU)",
             "", "| views | windows | model inputs | all inputs at once (MiB) | peak during the request (MiB) | "
             "seconds |", "|---|---|---|---|---|---|"]
    with LiveServer(create_app(ServeSettings(model=args.model, max_views=8))) as server:
        for views in (int(v) for v in args.views.split(",")):
            tracemalloc.start()
            started = time.perf_counter()
            r = httpx.post(server.url + "/v1/detect", content=body.getvalue(), params={"gsd": 10, "views": views},
                           headers={"content-type": "image/png"}, timeout=900)
            seconds = time.perf_counter() - started
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            r.raise_for_status()
            windows = r.json()["scale"]["windows"]
            held = windows * views * 3 * height * width * 4 / 2**20  # float32 inputs
            lines.append(f"| {views} | {windows} | {windows * views} | {held:.0f} | {peak:.0f} | {seconds:.1f} |")
    lines += ["", "Peak: tracemalloc over the request (decoded and resampled pixels, model inputs, outputs), in the "
              "process that serves it. Before inputs were made a batch at a time (commit b1c7e9a), the same tile in "
              "2 views peaked at 540 MiB."]
    publish("tile-memory", lines, args.dry_run)


if __name__ == "__main__":
    main()
