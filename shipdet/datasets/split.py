"""Group-aware train/val split: every group (source image, scene, port) lands wholly on one side."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import yaml

from shipdet.datasets.writer import is_labelled


def assign_groups(items: list[tuple[str, str, int]], val_fraction: float, seed: int = 0,
                  val_groups: Iterable[str] = ()) -> dict[str, str]:
    """Map each group to 'train' or 'val'. `items` are (source, group, n_images) per group.

    Within each source, groups are shuffled with `seed` and moved to val until that source's val share reaches
    `val_fraction` of its images, so every source is represented on both sides where it has two groups or more.
    When `val_groups` is given (as `group` or `source:group`), exactly those groups go to val.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    forced = set(val_groups)
    by_source: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for source, group, n in items:
        by_source[source].append((group, n))
    result: dict[str, str] = {}
    rng = random.Random(seed)
    for source in sorted(by_source):
        groups = sorted(by_source[source])
        rng.shuffle(groups)
        total = sum(n for _, n in groups)
        in_val = 0
        for group, n in groups:
            key = f"{source}:{group}"
            is_forced = group in forced or key in forced
            take = not forced and len(groups) > 1 and in_val + n / 2 <= val_fraction * total
            result[key] = "val" if is_forced or take else "train"
            in_val += n if result[key] == "val" else 0
    return result


def write_split(out: Path, rows: list[tuple[Path, dict[str, str]]], class_names: dict[int, str],
                val_fraction: float = 0.2, seed: int = 0, val_groups: Iterable[str] = ()) -> dict[str, int]:
    """Write train.txt / val.txt (absolute image paths), split.csv, data.yaml and data-obb.yaml into `out`."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for _, r in rows:
        counts[(r["source"], r["group"])] += 1
    sides = assign_groups([(s, g, n) for (s, g), n in counts.items()], val_fraction, seed, val_groups)
    lists: dict[tuple[str, bool], list[str]] = defaultdict(list)
    split_rows = ["source,group,name,split"]
    for root, r in rows:
        if not is_labelled(r):
            continue  # counted in its group's size above, so the other images keep their side
        side = sides[f"{r['source']}:{r['group']}"]
        root = root.resolve()
        lists[(side, False)].append(str(root / "images" / f"{r['name']}.jpg"))
        lists[(side, True)].append(str(root / "obb" / "images" / f"{r['name']}.jpg"))
        split_rows.append(f"{r['source']},{r['group']},{r['name']},{side}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "split.csv").write_text("\n".join(split_rows) + "\n")
    names = {int(k): v for k, v in sorted(class_names.items())}
    for oriented, suffix in ((False, ""), (True, "-obb")):
        for side in ("train", "val"):
            (out / f"{side}{suffix}.txt").write_text("\n".join(lists[(side, oriented)]) + "\n")
        data = {"path": str(out.resolve()), "train": f"train{suffix}.txt", "val": f"val{suffix}.txt",
                "names": names}
        (out / f"data{suffix}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return {side: len(lists[(side, False)]) for side in ("train", "val")}
