"""A compact training kit for a short GPU loan (see bench/gpu_train.sh).

`pack` (here): a subset of the merged training set, balanced by source and re-encoded small (WebP, at most the
training size), the start weights, and the wheels the GPU machine lacks, all in `.gpukit/` under 64 MiB with the
repository. `run` (there): install the wheels, train from the start weights for at most `--minutes`, export the best
weights to ONNX with its card and parity check, and put best.pt, the ONNX and the card in `--out`.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import yaml

# Images per source in the kit's training part (None: all). Balanced so that no source dominates the little time
# there is, with the 10 m Sentinel-2 tiles and the ship-free sets kept whole or nearly; the simulated coarse chips
# (about 3 KiB each once re-encoded: blurred) no more than the real Sentinel-2 tiles with ships they stand in for.
TRAIN_CAPS = {"masati": 900, "ge-ports": 450, "boats": 500, "ucm-negatives": 300, "s2ports": 700, "vhr": None,
              "airbus": None, "coarse": 400}
VAL_PER_SOURCE = 60
KIT_LIMIT_MB = 64


def _rows(merged: Path) -> list[tuple[str, str, str]]:
    """(source, split side, image path) for every image of a merged set."""
    from shipdet.train.evaluate import image_sources

    rows = []
    for side in ("train", "val"):
        images = [Path(p) for p in (merged / f"{side}.txt").read_text().split()]
        sources, _, _ = image_sources(images)
        rows += [(s, side, str(p)) for s, p in zip(sources, images, strict=True)]
    return rows


def _reencode(src: Path, dst: Path, max_side: int, quality: int) -> None:
    from PIL import Image

    with Image.open(src) as img:
        rgb = img.convert("RGB")
        scale = min(1.0, max_side / max(rgb.size))
        if scale < 1.0:
            rgb = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.Resampling.BOX)
        rgb.save(dst.with_suffix(".webp"), quality=quality, method=6)


def pack(merged: Path, start: Path, wheels: Path | None, out: Path, imgsz: int, quality: int, scale_note: str,
         limit: int | None, seed: int, task: str = "detect") -> dict[str, object]:
    """`task`: detect (axis-aligned labels) or obb (oriented labels), as the start weights were trained."""
    rng = random.Random(seed)
    by: dict[tuple[str, str], list[str]] = defaultdict(list)
    for source, side, path in _rows(merged):
        if source == "s2ports" and "/s2x4/" not in path:
            continue  # the kit carries Sentinel-2 at the working scale (x4, 2.5 m) only
        by[(source, side)].append(path)
    if out.exists():
        shutil.rmtree(out)
    (out / "data" / "images").mkdir(parents=True)
    (out / "data" / "labels").mkdir(parents=True)
    counts: dict[str, int] = {}
    lists: dict[str, list[str]] = {"train": [], "val": []}
    for (source, side), paths in sorted(by.items()):
        rng.shuffle(paths)
        cap = VAL_PER_SOURCE if side == "val" else TRAIN_CAPS.get(source)
        chosen = paths[:cap] if cap is not None else paths
        if limit is not None:
            chosen = chosen[:limit]
        for path in chosen:
            src = Path(path)
            name = f"{source}__{src.parent.parent.name}__{src.stem}"
            _reencode(src, out / "data" / "images" / name, imgsz, quality)
            labels = "/obb/labels/" if task == "obb" else "/labels/"
            label = Path(str(src).replace("/obb/images/", "/images/").replace("/images/", labels)).with_suffix(".txt")
            shutil.copy(label, out / "data" / "labels" / f"{name}.txt")
            lists[side].append(f"images/{name}.webp")
        counts[f"{source}/{side}"] = len(chosen)
    for side, names in lists.items():
        (out / "data" / f"{side}.txt").write_text("\n".join(f"./{n}" for n in names) + "\n")
    names = yaml.safe_load((merged / "data.yaml").read_text())["names"]
    (out / "data" / "data.yaml").write_text(yaml.safe_dump({"path": ".", "train": "train.txt", "val": "val.txt",
                                                            "names": names}, sort_keys=False))
    shutil.copy(start, out / "start.pt")
    from ultralytics.utils.torch_utils import strip_optimizer

    strip_optimizer(str(out / "start.pt"))  # a checkpoint of a run in progress carries its optimizer: 5x larger
    if wheels is not None and wheels.is_dir():
        shutil.copytree(wheels, out / "wheels")
    size_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
    manifest = {"images": counts, "task": task, "size_mb": round(size_mb, 1), "imgsz": imgsz,
                "webp_quality": quality,
                "start": str(start), "scale": scale_note}
    (out / "kit.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def run(kit: Path, out: Path, minutes: float, epochs: int, imgsz: int, device: str, batch: int,
        workers: int) -> int:
    """Train and export inside the kit; every artefact that must come back goes to `out`."""
    data = (kit / "data" / "data.yaml").resolve()
    yaml_text = yaml.safe_load(data.read_text())
    yaml_text["path"] = str(data.parent)  # ultralytics resolves the image lists against this
    data.write_text(yaml.safe_dump(yaml_text, sort_keys=False))
    runs = Path("/tmp/shipdet-gpu-runs") if device != "cpu" else out / "runs"
    shutil.rmtree(runs, ignore_errors=True)  # the run folder must be runs/gpu, not gpu-2
    task = json.loads((kit / "kit.json").read_text()).get("task", "detect")
    cmd = [sys.executable, "-m", "shipdet", "train", str(data), "--task", task, "--model",
           str(kit / "start.pt"), "--epochs", str(epochs), "--imgsz", str(imgsz), "--batch", str(batch),
           "--workers", str(workers), "--device", device, "--close-mosaic", str(max(1, epochs // 10)),
           "--project", str(runs), "--name", "gpu", "--hours", f"{minutes / 60:.4f}"]
    print(" ".join(cmd), flush=True)
    code = subprocess.call(cmd)
    best = runs / "gpu" / "weights" / "best.pt"
    if code != 0 or not best.is_file():
        print(f"training failed (exit {code})", flush=True)
        return code or 1
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(best, out / "best.pt")
    for name in ("results.csv", "shipdet_run.json"):
        if (runs / "gpu" / name).is_file():
            shutil.copy(runs / "gpu" / name, out / name)
    export = [sys.executable, "-m", "shipdet", "export", str(best), "--imgsz", str(imgsz), "--data", str(data),
              "--name", "shipdet-gpu", "--out", str(out / "shipdet-gpu.onnx")]
    print(" ".join(export), flush=True)
    return subprocess.call(export)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="verb", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--merged", type=Path, default=Path("work/sets/merged"))
    p.add_argument("--start", type=Path, required=True, help="Weights to start from (.pt).")
    p.add_argument("--wheels", type=Path, default=None, help="Folder of wheels the GPU machine lacks.")
    p.add_argument("--out", type=Path, default=Path(".gpukit"))
    p.add_argument("--imgsz", type=int, default=512)
    p.add_argument("--quality", type=int, default=65)
    p.add_argument("--scale-note", default="Sentinel-2 tiles at x4 (2.5 m)")
    p.add_argument("--limit", type=int, default=None, help="At most this many images per source and side (tests).")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--task", choices=["detect", "obb"], default="detect")
    r = sub.add_parser("run")
    r.add_argument("--kit", type=Path, default=Path(".gpukit"))
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--minutes", type=float, default=8.0)
    r.add_argument("--epochs", type=int, default=300, help="Upper bound; --minutes decides.")
    r.add_argument("--imgsz", type=int, default=512)
    r.add_argument("--device", default="0")
    r.add_argument("--batch", type=int, default=64)
    r.add_argument("--workers", type=int, default=12)
    args = parser.parse_args()
    if args.verb == "pack":
        manifest = pack(args.merged, args.start, args.wheels, args.out, args.imgsz, args.quality, args.scale_note,
                        args.limit, args.seed, args.task)
        print(json.dumps(manifest, indent=2))
        if float(str(manifest["size_mb"])) > KIT_LIMIT_MB - 16:  # the repository travels too (~15 MiB)
            print(f"kit is {manifest['size_mb']} MiB: over what can travel with the repository", file=sys.stderr)
            return 2
        return 0
    return run(args.kit, args.out, args.minutes, args.epochs, args.imgsz, args.device, args.batch, args.workers)


if __name__ == "__main__":
    raise SystemExit(main())
