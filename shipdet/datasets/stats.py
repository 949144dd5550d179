"""Statistics of a converted or merged set: counts, empty fraction, box sizes in pixels and metres."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from shipdet.datasets.writer import read_manifest
from shipdet.errors import DatasetNotFoundError


def _label_path(image: Path) -> Path:
    parts = list(image.parts)
    idx = len(parts) - 1 - parts[::-1].index("images")
    parts[idx] = "labels"
    return Path(*parts).with_suffix(".txt")


def dataset_stats(root: Path) -> dict[str, Any]:
    """Sizes are box lengths (longest side of the box) in pixels, and in metres where the GSD is known."""
    lists = [root / "train.txt", root / "val.txt"]
    if not all(p.is_file() for p in lists):
        raise DatasetNotFoundError(f"no train.txt / val.txt in {root}", "run a converter or `merge` first")
    gsd: dict[str, float] = {}
    for manifest in {Path(p).parent.parent for lst in lists for p in lst.read_text().split()}:
        if (manifest / "manifest.csv").is_file():
            gsd.update({str(manifest / "images" / f"{r['name']}.jpg"): float(r["gsd_m"])
                        for r in read_manifest(manifest / "manifest.csv") if r["gsd_m"]})
    out: dict[str, Any] = {}
    for lst in lists:
        images = [Path(p) for p in lst.read_text().split()]
        sizes_px: list[float] = []
        sizes_m: list[float] = []
        empty = boxes = 0
        for image in images:
            lines = [ln for ln in _label_path(image).read_text().splitlines() if ln.strip()] \
                if _label_path(image).is_file() else []
            empty += not lines
            boxes += len(lines)
            if not lines:
                continue
            with Image.open(image) as im:
                w, h = im.size
            arr = np.array([[float(v) for v in ln.split()[1:5]] for ln in lines])
            longest = np.maximum(arr[:, 2] * w, arr[:, 3] * h)
            sizes_px += longest.tolist()
            if str(image) in gsd:
                sizes_m += (longest * gsd[str(image)]).tolist()
        out[lst.stem] = {"images": len(images), "boxes": boxes, "empty_fraction": empty / max(len(images), 1),
                         "size_px": _quantiles(sizes_px), "size_m": _quantiles(sizes_m),
                         "_sizes_px": sizes_px}
    return out


def _quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    q = np.percentile(values, [5, 25, 50, 75, 95])
    return {f"p{p}": round(float(v), 1) for p, v in zip((5, 25, 50, 75, 95), q, strict=True)}


def write_histogram(stats: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.logspace(0, np.log10(max(2.0, *[max(v["_sizes_px"] or [2]) for v in stats.values()])), 40)
    for split, v in stats.items():
        ax.hist(v["_sizes_px"], bins=bins.tolist(), alpha=0.6, label=f"{split} ({v['boxes']} boxes)")
    ax.set_xscale("log")
    ax.set_xlabel("box length (px, longest side)")
    ax.set_ylabel("boxes")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
