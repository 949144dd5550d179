"""A re-scoring run folder as evidence: its tables, each scene's quicklook (the decimated overview with the
scoring stretch, cached in the run folder) and a chip around any detection (a windowed read): no scene is read
whole, however large."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from shipdet.errors import DatasetFormatError, DatasetNotFoundError
from shipdet.tiling import Window


class UnknownItemError(KeyError):
    """A scene or detection id the run does not hold."""


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


class RunFolder:
    def __init__(self, path: Path) -> None:
        import geopandas as gpd

        if not path.is_dir():
            raise DatasetNotFoundError(f"run folder not found at {path}", "give the --out folder of shipdet rescore")
        if not (path / "scenes.parquet").is_file():
            raise DatasetFormatError(f"{path} is not a re-scoring run: it has no scenes.parquet",
                                     "give the --out folder of a finished `shipdet rescore`")
        self.path = path
        self.scenes = gpd.read_parquet(path / "scenes.parquet").set_index("scene_id", drop=False)
        detections = path / "detections.parquet"
        self.detections = gpd.read_parquet(detections) if detections.is_file() else gpd.GeoDataFrame(
            {"scene_id": [], "det_id": []}, geometry=[], crs="EPSG:4326")
        self._by_id = {(str(s), int(d)): i for i, (s, d) in
                       enumerate(zip(self.detections.scene_id, self.detections.det_id, strict=True))}

    def detection(self, scene_id: str, det_id: int) -> Any:
        try:
            return self.detections.iloc[self._by_id[(scene_id, det_id)]]
        except KeyError:
            raise UnknownItemError(f"no detection {det_id} in scene {scene_id!r}") from None

    def open_scene(self, scene_id: str) -> Any:
        """The scene, opened for windowed reads (close it after); a clear error when its files are gone."""
        from shipdet.rescore.scene import open_scene
        from shipdet.rescore.sources import SceneSource

        if scene_id not in self.scenes.index:
            raise UnknownItemError(f"no scene {scene_id!r} in this run")
        paths = [Path(p) for p in str(self.scenes.loc[scene_id, "path"]).split("|")]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise DatasetNotFoundError(f"scene {scene_id!r}: file not found: {', '.join(missing)}",
                                       "the run's scenes were moved or deleted; chips need the imagery")
        return open_scene(SceneSource(scene_id, paths))

    def chip(self, scene_id: str, det_id: int, pad: int = 48, size: int = 256) -> bytes:
        """PNG of the detection and its surroundings (`pad` pixels around its box), the box drawn in."""
        row = self.detection(scene_id, det_id)
        scene = self.open_scene(scene_id)
        try:
            x1, y1 = max(int(row.x1) - pad, 0), max(int(row.y1) - pad, 0)
            x2, y2 = min(int(np.ceil(row.x2)) + pad, scene.width), min(int(np.ceil(row.y2)) + pad, scene.height)
            pixels = scene.read_window(Window(x1, y1, max(x2 - x1, 1), max(y2 - y1, 1)))
        finally:
            scene.close()
        image = Image.fromarray(pixels)
        scale = size / max(image.width, image.height)
        if scale > 1:  # a small ship is shown large enough to judge, pixel edges kept
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.NEAREST)
        else:
            scale = 1.0
        draw = ImageDraw.Draw(image)
        box = [(row.x1 - x1) * scale, (row.y1 - y1) * scale, (row.x2 - x1) * scale, (row.y2 - y1) * scale]
        draw.rectangle(box, outline=(255, 200, 0), width=2)
        return _png(np.asarray(image))

    def quicklook(self, scene_id: str) -> bytes:
        """JPEG of the scene's overview (at most 1,024 px a side): made while the scene was scored, or now (a
        decimated read) for runs from before, and kept in the run folder."""
        from shipdet.rescore.quicklook import quicklook_path, write_quicklook

        if scene_id not in self.scenes.index:
            raise UnknownItemError(f"no scene {scene_id!r} in this run")
        cached = quicklook_path(self.path, scene_id)
        if not cached.is_file():
            scene = self.open_scene(scene_id)
            try:
                write_quicklook(self.path, scene_id, scene.quicklook())
            finally:
                scene.close()
        return cached.read_bytes()
