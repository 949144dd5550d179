"""Writing synthetic scenes as a YOLO set and as georeferenced GeoTIFF scenes with label files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from shipdet.datasets.synth import SynthConfig, make_scene
from shipdet.datasets.writer import ConversionReport, YoloSetWriter
from shipdet.detections import Detections
from shipdet.formats import detection_records
from shipdet.georef import GeoReference, georeference

# Scenes are placed off Vostochny (Nakhodka Bay), UTM zone 53N, each shifted east of the last.
SYNTH_CRS = "EPSG:32653"
SYNTH_ORIGIN = (341_200.0, 4_733_800.0)  # 42.74 N 133.06 E


def synth_georeference(index: int, cfg: SynthConfig) -> GeoReference:
    x0 = SYNTH_ORIGIN[0] + index * (cfg.width * cfg.gsd_m + 1000.0)
    return GeoReference.from_parts((cfg.gsd_m, 0.0, x0, 0.0, -cfg.gsd_m, SYNTH_ORIGIN[1]), SYNTH_CRS)


def write_geotiff_scene(path: Path, image: object, ref: GeoReference, dets: Detections) -> None:
    """A 3-band GeoTIFF with the scene and, beside it, `<name>.labels.json`: the ships in pixels and lon/lat."""
    import numpy as np
    import rasterio

    arr = np.asarray(image)
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=3,
                       dtype="uint8", crs=ref.crs.to_wkt(), transform=ref.transform, tiled=True,
                       blockxsize=256, blockysize=256, compress="deflate") as dst:
        dst.write(np.moveaxis(arr, -1, 0))
    labels = detection_records(georeference(dets, ref))
    path.with_suffix(".labels.json").write_text(json.dumps({"ships": labels}, indent=1))


def write_synth_set(out: Path, count: int, seed: int, cfg: SynthConfig = SynthConfig(), geotiff: bool = False,
                    val_fraction: float = 0.2) -> ConversionReport:
    writer = YoloSetWriter(out, {0: "ship"}, source="synth", gsd_m=cfg.gsd_m)
    for i in range(count):
        image, dets = make_scene(seed * 1_000_003 + i, replace(cfg))
        name = f"synth_{seed}_{i:05d}"
        writer.add(name, image, dets, group=name, oriented=True)
        if geotiff:
            write_geotiff_scene(out / "scenes" / f"{name}.tif", image, synth_georeference(i, cfg), dets)
    return writer.close(val_fraction, seed)
