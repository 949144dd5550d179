"""A threshold 'engine' (bright blobs on dark sea) and UTM scenes with known ships: exact positions to check the
windowing, seam merge and georeferencing of re-scoring without a trained model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from affine import Affine
from pyproj import Transformer

from shipdet.detections import Detections
from shipdet.inference.operating_point import for_imagery
from shipdet.scale import ScaleRange
from tests.conftest import write_geotiff

pytest.importorskip("rasterio")
pytest.importorskip("geopandas")

UTM = "EPSG:32653"
ORIGIN = (341_200.0, 4_733_800.0)
GSD = 3.0


class _Info:
    sha256 = "0" * 64
    name = "threshold"
    scale_range: ScaleRange | None = None  # a model exported before scale was recorded: scenes are not resampled
    default_conf = 0.25
    default_views = 1
    default_iou = 0.45
    upsampled_conf: float | None = None  # as ModelInfo: the threshold for imagery the scale path upsampled
    upsampled_views: int | None = None  # and its views

    def conf_for(self, factor: float, views: int | None = None) -> float:  # no thresholds recorded for other views
        return for_imagery(factor, self.default_conf, self.upsampled_conf)

    def views_for(self, factor: float) -> int:
        return for_imagery(factor, self.default_views, self.upsampled_views)


class ThresholdEngine:
    """Connected bright regions (> 128) become axis-aligned boxes: pixel-exact, like a perfect detector."""

    info = _Info()
    input_size = (128, 128)

    def detect(self, images: list[np.ndarray], conf: float = 0.25, iou: float = 0.45) -> list[Detections]:
        from scipy import ndimage

        out = []
        for img in images:
            labels, n = ndimage.label(img[..., 0] > 128)
            boxes = [[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in ndimage.find_objects(labels)]
            out.append(Detections(np.array(boxes, dtype=float).reshape(-1, 4), np.full(n, 0.9), np.zeros(n, int)))
        return out

    def for_factor(self, factor: float) -> ThresholdEngine:
        return self  # one graph for all imagery


def write_scene(path: Path, ships: list[tuple[int, int, int, int]], size: tuple[int, int] = (300, 260),
                offset: float = 0.0) -> Path:
    """A dark UTM scene with bright rectangular ships (x1, y1, x2, y2 in pixels)."""
    w, h = size
    img = np.full((h, w, 3), 20, np.uint8)
    for x1, y1, x2, y2 in ships:
        img[y1:y2, x1:x2] = 230
    transform = Affine(GSD, 0, ORIGIN[0] + offset, 0, -GSD, ORIGIN[1])
    return write_geotiff(path, img, transform, UTM)


SHIPS = [(10, 10, 40, 18), (118, 50, 150, 60), (200, 100, 212, 140), (60, 200, 100, 210)]


@pytest.fixture
def scenes(tmp_path: Path) -> Path:
    folder = tmp_path / "archive"
    folder.mkdir()
    for i in range(5):
        write_scene(folder / f"scene_2024-03-{i + 7:02d}.tif", SHIPS, offset=i * 2000.0)
    return folder


def nearest_rows(rows: pd.DataFrame, ships: list[tuple[int, int, int, int]] = SHIPS,
                 origin: tuple[float, float] = ORIGIN) -> list[tuple[float, int]]:
    """For each true ship: the ground distance (m) from its centre to the nearest row's lon/lat, and that row."""
    to_wgs = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    nearest = []
    for x1, y1, x2, y2 in ships:
        lon, lat = to_wgs.transform(origin[0] + GSD * (x1 + x2) / 2, origin[1] - GSD * (y1 + y2) / 2)
        dist = np.hypot((rows.lon - lon) * 111_320 * np.cos(np.radians(lat)), (rows.lat - lat) * 111_320)
        nearest.append((float(dist.min()), int(np.argmin(dist.to_numpy()))))
    return nearest
