"""Merging converted sets into one training set with one group-aware split, and its report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from shipdet.datasets.split import write_split
from shipdet.datasets.writer import is_labelled, read_manifest
from shipdet.errors import DatasetFormatError, DatasetNotFoundError


def set_class_names(root: Path) -> dict[int, str]:
    data = root / "data.yaml"
    if not data.is_file() or not (root / "manifest.csv").is_file():
        raise DatasetNotFoundError(f"no converted set at {root} (data.yaml and manifest.csv expected)",
                                   "convert it first with `shipdet datasets <format> ... --out DIR`")
    names = yaml.safe_load(data.read_text())["names"]
    return dict(enumerate(names)) if isinstance(names, list) else {int(k): str(v) for k, v in names.items()}


def merge_sets(sets: Sequence[Path], out: Path, val_fraction: float = 0.2, seed: int = 0,
               val_groups: Sequence[str] = (), train_only: Sequence[str] = (),
               oversample: Mapping[str, int] | None = None, crowded: tuple[int, int] | None = None,
               ship_free: Mapping[str, int] | None = None) -> str:
    """Write one split over several converted sets into `out`; returns the Markdown report.

    Groups are namespaced by source, so no scene, port or source image is on both sides. Sources named in
    `train_only` (e.g. `synth`) never go to validation. `oversample` maps a source to how many times each of its
    training images that holds ships is listed: a source with few ships (ten Sentinel-2 scenes beside thousands of
    aerial chips) otherwise weighs almost nothing in an epoch. `crowded` = (MIN, N): every training image holding at
    least MIN ships is listed N times in all (counting its source's factor): marinas of moored small craft are a few
    dozen chips, and the model scores their boats lowest. `ship_free` maps a source to how many times each of its
    ship-free training images is listed: what crowded marinas teach spills onto parking lots and dense housing
    unless those weigh more too. Validation is never repeated.
    """
    oversample = dict(oversample or {})
    ship_free = dict(ship_free or {})
    bad = {s: n for s, n in (oversample | ship_free).items() if not isinstance(n, int) or n < 1}
    if bad:
        raise DatasetFormatError(f"oversampling factors must be whole numbers >= 1, got {bad}",
                                 "write SOURCE=N with N = 1, 2, 3, ...")
    if crowded is not None and (crowded[0] < 1 or crowded[1] < 1):
        raise DatasetFormatError(f"crowded images need at least 1 ship and a factor >= 1, got {crowded}",
                                 "write MIN=N, e.g. 10=4: images with 10 ships or more listed 4 times")
    names = None
    rows = []
    for root in sets:
        these = set_class_names(root)
        if names is not None and these != names:
            raise DatasetFormatError(f"{root} has classes {these}, earlier sets have {names}",
                                     "convert every set with the same --class-map / taxonomy")
        names = these
        rows += [(root, r) for r in read_manifest(root / "manifest.csv")]
    if not rows or names is None:
        raise DatasetNotFoundError("nothing to merge: the sets are empty")
    unknown = (set(oversample) | set(ship_free)) - {r["source"] for _, r in rows}
    if unknown:
        raise DatasetFormatError(f"cannot oversample {sorted(unknown)}: no such source in these sets",
                                 f"sources here: {sorted({r['source'] for _, r in rows})}")
    held = [r for r in rows if r[1]["source"] not in train_only]
    forced_train = [r for r in rows if r[1]["source"] in train_only and is_labelled(r[1])]
    write_split(out, held, names, val_fraction, seed, val_groups)
    _append_train(out, forced_train)
    with open(out / "split.csv", "a") as fh:
        fh.writelines(f"{r['source']},{r['group']},{r['name']},train\n" for _, r in forced_train)
    sides = {(s, g, n): side for s, g, n, side in read_split(out)}
    repeated = {s: _append_source(out, rows, sides, s, n, with_ships=True) for s, n in sorted(oversample.items())}
    extra = [_append_crowded(out, rows, sides, oversample, crowded)] if crowded else []
    for source, factor in sorted(ship_free.items()):
        images = _append_source(out, rows, sides, source, factor, with_ships=False)
        extra.append(f"Ship-free: the {images} {source} training images without ships are each listed {factor} times "
                     f"({images * (factor - 1)} extra entries).")
    return merge_report(out, {s: (repeated[s], oversample[s]) for s in repeated}, extra)


def _append_source(out: Path, rows: Sequence[tuple[Path, dict[str, str]]],
                   sides: Mapping[tuple[str, str, str], str], source: str, factor: int, with_ships: bool) -> int:
    """List `source`'s training images with (or without) ships `factor` times in all; returns how many there are."""
    chosen = [(root, r) for root, r in rows if r["source"] == source and is_labelled(r)
              and (int(r.get("n_boxes") or 0) > 0) == with_ships and sides[(source, r["group"], r["name"])] == "train"]
    _append_train(out, chosen * (factor - 1))
    return len(chosen)


def _append_crowded(out: Path, rows: Sequence[tuple[Path, dict[str, str]]], sides: Mapping[tuple[str, str, str], str],
                    oversample: Mapping[str, int], crowded: tuple[int, int]) -> str:
    least, times = crowded
    chosen = [(root, r) for root, r in rows if is_labelled(r) and int(r.get("n_boxes") or 0) >= least
              and sides.get((r["source"], r["group"], r["name"])) == "train"]
    added = 0
    for row in chosen:
        more = times - oversample.get(row[1]["source"], 1)
        _append_train(out, [row] * max(more, 0))
        added += max(more, 0)
    return (f"Crowded: the {len(chosen)} training images with {least} ships or more are each listed {times} times in "
            f"all ({added} extra entries).")


def _append_train(out: Path, rows: Sequence[tuple[Path, dict[str, str]]]) -> None:
    with open(out / "train.txt", "a") as fh, open(out / "train-obb.txt", "a") as fo:
        for root, r in rows:
            fh.write(str(root.resolve() / "images" / f"{r['name']}.jpg") + "\n")
            fo.write(str(root.resolve() / "obb" / "images" / f"{r['name']}.jpg") + "\n")


def read_split(out: Path) -> list[tuple[str, str, str, str]]:
    """(source, group, name, side) per image; a group may hold commas, the other fields do not."""
    rows = []
    for line in (out / "split.csv").read_text().splitlines()[1:]:
        source, rest = line.split(",", 1)
        group, name, side = rest.rsplit(",", 2)
        rows.append((source, group, name, side))
    return rows


def merge_report(out: Path, oversampled: Mapping[str, tuple[int, int]] | None = None,
                 extra: Sequence[str] = ()) -> str:
    """`oversampled`: source -> (training images with ships, times each is listed); `extra`: lines on other repeats."""
    per: Counter[tuple[str, str]] = Counter()
    groups: dict[tuple[str, str], set[str]] = {}
    for source, group, _, side in read_split(out):
        per[(source, side)] += 1
        groups.setdefault((source, side), set()).add(group)
    sources = sorted({s for s, _ in per})
    md = ["# Merged training set", "", f"Written to `{out}`. Split by group (source:group); no group is on both "
          "sides.", "", "| source | train images | train groups | val images | val groups |", "|---|---|---|---|---|"]
    for s in sources:
        md.append(f"| {s} | {per[(s, 'train')]} | {len(groups.get((s, 'train'), ()))} | {per[(s, 'val')]} | "
                  f"{len(groups.get((s, 'val'), ()))} |")
    val_groups = sorted(f"{s}:{g}" for (s, side), gs in groups.items() if side == "val" for g in gs)
    md += ["", f"Validation groups: {', '.join(val_groups[:60])}{' ...' if len(val_groups) > 60 else ''}", ""]
    for source, (images, factor) in sorted((oversampled or {}).items()):
        md.append(f"Oversampled: the {images} {source} training images with ships are each listed {factor} times "
                  f"in train.txt ({images * (factor - 1)} extra entries).")
    md += extra
    report = "\n".join(md)
    (out / "merge_report.md").write_text(report)
    return report
