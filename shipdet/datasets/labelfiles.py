"""Per-image text label sets -> converted set: YOLO (with a class map) and DOTA (oriented, class names)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from shipdet.datasets.classmap import ClassMap
from shipdet.datasets.images import IMAGE_SUFFIXES, read_rgb8
from shipdet.datasets.writer import ConversionReport, YoloSetWriter
from shipdet.detections import Detections
from shipdet.errors import ConfigError, DatasetNotFoundError, ShipdetError
from shipdet.formats import from_dota_lines, from_yolo_lines
from shipdet.progress import progress

Parser = Callable[[list[str], int, int, str], Detections]


def _remap(dets: Detections, class_map: ClassMap) -> Detections:
    """Apply the class map (by source name, falling back to the source id) and drop `drop` classes."""
    targets = []
    for c in dets.class_id:
        name = dets.class_names.get(int(c), str(int(c)))
        key = name if name in class_map.mapping or str(int(c)) not in class_map.mapping else str(int(c))
        targets.append(class_map.target_id(key))
    keep = np.array([t is not None for t in targets], dtype=bool)
    kept = dets[np.flatnonzero(keep)]
    kept.class_id = np.array([t for t in targets if t is not None], dtype=np.int64)
    kept.class_names = class_map.class_names
    return kept


def image_group(stem: str, pattern: str | None) -> str:
    """The split group of an image: the first match of `pattern` in its stem (e.g. `^[A-Za-z]+` groups Google
    Earth chips by their place prefix, so neighbouring frames of one port never straddle the split); the stem
    itself when there is no pattern or no match."""
    if not pattern:
        return stem
    found = re.search(pattern, stem)
    return found.group(0) if found and found.group(0) else stem


def _convert(images: Path, labels: Path, out: Path, class_map: ClassMap, parse: Parser, oriented: bool,
             source: str, gsd_m: float | None, strict: bool,
             val_fraction: float, seed: int, group_pattern: str | None = None,
             empty_unlabelled: bool = False, tile: int | None = None, overlap: int = 128,
             min_visible: float = 0.4) -> ConversionReport:
    """`empty_unlabelled`: an empty or missing label file means the labels were lost, not that the image is
    ship-free (MASATI: every image of the published set comes from a category with ships).

    `tile`: an image larger than this is cut into tiles at its own scale (the tiles keep the image's group), so
    its small ships are not shrunk by letterboxing the whole chip into the model's input."""
    for folder, what in ((images, "images"), (labels, "labels")):
        if not folder.is_dir():
            raise DatasetNotFoundError(f"{source} {what} folder not found at {folder}")
    writer = YoloSetWriter(out, class_map.class_names, source=source, gsd_m=gsd_m)
    paths = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    for image_path in progress(paths, desc=source, total=len(paths), unit="image"):
        label_path = labels / f"{image_path.stem}.txt"
        group = image_group(image_path.stem, group_pattern)
        try:
            lines = label_path.read_text().splitlines() if label_path.is_file() else []
            if empty_unlabelled and not any(line.strip() for line in lines):
                writer.add_unlabelled(image_path.stem, group)
                continue
            image = read_rgb8(image_path)
            height, width = image.shape[:2]
            dets = _remap(parse(lines, width, height, str(label_path)), class_map)
        except ShipdetError as exc:
            if strict:
                raise
            writer.skip(str(exc))
            continue
        if tile and max(height, width) > tile:
            writer.add_tiled(image_path.stem, image, dets, group, oriented, tile, overlap, min_visible)
        else:
            writer.add(image_path.stem, image, dets, group=group, oriented=oriented)
    return writer.close(val_fraction, seed)


def read_class_names(path: Path | None) -> dict[int, str]:
    """`classes.txt` (one name a line) or a data YAML's `names`; empty when absent."""
    if path is None or not path.is_file():
        return {}
    if path.suffix in (".yaml", ".yml"):
        import yaml

        names = yaml.safe_load(path.read_text()).get("names", {})
        return dict(enumerate(names)) if isinstance(names, list) else {int(k): v for k, v in names.items()}
    return {i: line.strip() for i, line in enumerate(path.read_text().splitlines()) if line.strip()}


def convert_yolo(images: Path, labels: Path, out: Path, class_map: ClassMap, classes_file: Path | None = None,
                 source: str = "yolo", gsd_m: float | None = None, strict: bool = False,
                 val_fraction: float = 0.2, seed: int = 0, group_pattern: str | None = None,
                 empty_unlabelled: bool = False, tile: int | None = None, overlap: int = 128,
                 min_visible: float = 0.4) -> ConversionReport:
    if tile is not None and not 0 <= overlap < tile:
        raise ConfigError(f"--overlap {overlap} must be at least 0 and smaller than --tile {tile}",
                          "the harness and the service tile 640 px with a 128 px overlap")
    if group_pattern:
        try:
            re.compile(group_pattern)
        except re.error as exc:
            raise ConfigError(f"--group {group_pattern!r} is not a regular expression ({exc})") from exc
    source_names = read_class_names(classes_file)

    def parse(lines: list[str], width: int, height: int, where: str) -> Detections:
        return from_yolo_lines(lines, width, height, source_names or {}, where)

    oriented = any(len(ln.split()) >= 9 for p in labels.glob("*.txt") for ln in p.read_text().splitlines()[:1])
    return _convert(images, labels, out, class_map, parse, oriented, source, gsd_m, strict, val_fraction, seed,
                    group_pattern, empty_unlabelled, tile, overlap, min_visible)


def convert_dota(images: Path, labels: Path, out: Path, class_map: ClassMap, source: str = "dota",
                 gsd_m: float | None = None, strict: bool = False, val_fraction: float = 0.2,
                 seed: int = 0) -> ConversionReport:
    """DOTA `labelTxt` files; classes by name (default map keeps `ship`, drops the rest)."""
    seen: dict[str, int] = {}

    def parse(lines: list[str], width: int, height: int, where: str) -> Detections:
        for line in lines:
            parts = line.split()
            if len(parts) >= 9 and not line.startswith(("imagesource", "gsd")):
                seen.setdefault(parts[8], len(seen))
        return from_dota_lines(lines, seen, where)

    return _convert(images, labels, out, class_map, parse, True, source, gsd_m, strict, val_fraction, seed)
