"""Pascal VOC XML annotations (one XML per image) -> converted set."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from shipdet.datasets.classmap import ClassMap
from shipdet.datasets.images import IMAGE_SUFFIXES, read_rgb8
from shipdet.datasets.writer import ConversionReport, YoloSetWriter
from shipdet.detections import Detections
from shipdet.errors import DatasetFormatError, DatasetNotFoundError, ShipdetError
from shipdet.progress import progress


def parse_voc(xml_path: Path, class_map: ClassMap) -> tuple[str, Detections]:
    """(file name the XML names, its boxes). VOC boxes are 1-based inclusive pixel indices."""
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        raise DatasetFormatError(f"{xml_path}: not valid XML ({exc})") from exc
    filename = (root.findtext("filename") or "").strip()
    boxes, classes = [], []
    for obj in root.iter("object"):
        target = class_map.target_id((obj.findtext("name") or "").strip())
        if target is None:
            continue
        bb = obj.find("bndbox")
        try:
            if bb is None:
                raise ValueError("no bndbox")
            x1, y1, x2, y2 = (float(bb.findtext(k) or "nan") for k in ("xmin", "ymin", "xmax", "ymax"))
        except ValueError as exc:
            raise DatasetFormatError(f"{xml_path}: object without a numeric bndbox") from exc
        if not (x2 > x1 and y2 > y1):
            raise DatasetFormatError(f"{xml_path}: degenerate box {x1, y1, x2, y2}")
        boxes.append([x1 - 1, y1 - 1, x2, y2])
        classes.append(target)
    dets = Detections(np.array(boxes).reshape(-1, 4), np.ones(len(boxes)), np.array(classes, dtype=np.int64),
                      class_names=class_map.class_names)
    return filename, dets


def find_image(images_dir: Path, filename: str, stem: str) -> Path | None:
    """The image a label names, or one of the same stem with another suffix (sets get re-encoded)."""
    exact = images_dir / filename
    if filename and exact.is_file():
        return exact
    for name in (Path(filename).stem, stem):
        for suffix in IMAGE_SUFFIXES:
            candidate = images_dir / f"{name}{suffix}"
            if name and candidate.is_file():
                return candidate
    return None


def convert_voc(annotations: Path, images: Path, out: Path, class_map: ClassMap, source: str = "voc",
                gsd_m: float | None = None, strict: bool = False, val_fraction: float = 0.2,
                seed: int = 0) -> ConversionReport:
    if not annotations.is_dir():
        raise DatasetNotFoundError(f"VOC annotations folder not found at {annotations}")
    writer = YoloSetWriter(out, class_map.class_names, source=source, gsd_m=gsd_m)
    xml_files = sorted(annotations.glob("*.xml"))
    for xml_path in progress(xml_files, desc=source, total=len(xml_files), unit="image"):
        try:
            filename, dets = parse_voc(xml_path, class_map)
            image_path = find_image(images, filename, xml_path.stem)
            if image_path is None:
                raise DatasetNotFoundError(f"{xml_path}: image {filename!r} not found in {images}")
            image = read_rgb8(image_path)
        except ShipdetError as exc:
            if strict:
                raise
            writer.skip(str(exc))
            continue
        writer.add(xml_path.stem, image, dets, group=xml_path.stem, oriented=False)
    return writer.close(val_fraction, seed)
