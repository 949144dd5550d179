"""Where a scene's rows land when it is not a GeoTIFF: a JPEG/PNG tile placed by a world file (its CRS from a .prj
beside it or the run's `crs`), and a Sentinel-2 rendering placed by the band files it was made from."""

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from PIL import Image
from pyproj import CRS

from shipdet.rescore.params import RescoreParams
from shipdet.rescore.run import RescoreRun
from shipdet.rescore.sources import resolve_sources
from tests.conftest import write_geotiff
from tests.rescore.conftest import GSD, ORIGIN, SHIPS, UTM, ThresholdEngine, nearest_rows

PARAMS = RescoreParams(tile=128, overlap=32, max_batch=4)
SIZE = (300, 260)  # width, height


def _ships_image(path: Path, size: tuple[int, int] = SIZE) -> Path:
    img = np.full((size[1], size[0], 3), 20, np.uint8)
    for x1, y1, x2, y2 in SHIPS:
        img[y1:y2, x1:x2] = 230
    Image.fromarray(img).save(path, quality=95)
    return path


def _run(folder: Path, out: Path, **params: object) -> tuple[dict[str, int], gpd.GeoDataFrame, gpd.GeoDataFrame]:
    run = RescoreRun(out, ThresholdEngine(), PARAMS.model_copy(update=params))
    counts = run.run(resolve_sources([str(folder)]))
    return counts, gpd.read_parquet(out / "detections.parquet"), gpd.read_parquet(out / "scenes.parquet")


@pytest.mark.parametrize("crs_from", ["prj", "setting"])
def test_world_file_tile_lands_within_one_pixel(tmp_path, crs_from):
    folder = tmp_path / "tiles"
    folder.mkdir(parents=True)
    _ships_image(folder / "tile_2024-06-01.png")
    # A world file gives the centre of the top-left pixel, not its corner.
    (folder / "tile_2024-06-01.pgw").write_text(f"{GSD}\n0\n0\n{-GSD}\n{ORIGIN[0] + GSD / 2}\n{ORIGIN[1] - GSD / 2}\n")
    if crs_from == "prj":
        (folder / "tile_2024-06-01.prj").write_text(CRS.from_user_input(UTM).to_wkt(version="WKT1_ESRI"))
    counts, rows, scenes = _run(folder, tmp_path / "out", crs=UTM if crs_from == "setting" else None)
    assert counts["done"] == 1 and len(rows) == len(SHIPS)
    assert max(d for d, _ in nearest_rows(rows)) < GSD
    assert CRS.from_user_input(scenes["crs"].iloc[0]).to_epsg() == 32653
    assert scenes.footprint.iloc[0].contains(rows.geometry.iloc[0].centroid)


def test_world_file_without_crs_keeps_pixel_rows_and_says_why(tmp_path, caplog):
    folder = tmp_path / "tiles"
    folder.mkdir(parents=True)
    _ships_image(folder / "tile.png")
    (folder / "tile.pgw").write_text(f"{GSD}\n0\n0\n{-GSD}\n{ORIGIN[0]}\n{ORIGIN[1]}\n")
    with caplog.at_level(logging.WARNING):
        counts, rows, _ = _run(folder, tmp_path / "out")
    assert counts["done"] == 1 and len(rows) == len(SHIPS)
    assert rows.lon.isna().all() and rows.x1.notna().all()
    assert "--crs" in caplog.text


def test_unknown_crs_setting_is_refused():
    with pytest.raises(ValueError, match="EPSG"):
        RescoreParams(crs="EPSG:999999")


def _band_folder(folder: Path, bands: tuple[str, ...], size: tuple[int, int] = SIZE) -> None:
    folder.mkdir(parents=True)
    transform = Affine(GSD, 0, ORIGIN[0], 0, -GSD, ORIGIN[1])
    for band in bands:
        write_geotiff(folder / f"2023-07-25-00:00_2023-07-25-23:59_Sentinel-2_L2A_{band}_(Raw).tiff",
                      np.full((size[1], size[0]), 900, np.uint16), transform, UTM)


@pytest.mark.parametrize("same_grid", [True, False])
def test_rendering_is_placed_by_its_band_files(tmp_path, same_grid):
    port = tmp_path / "archive" / "santos"
    _band_folder(port, ("B03", "B04", "B08"))  # no B02: the rendering stands for the scene
    _ships_image(port / "santos_rgb8.jpg", SIZE if same_grid else (SIZE[0] - 3, SIZE[1] - 40))
    counts, rows, scenes = _run(tmp_path / "archive", tmp_path / "out")
    assert counts["done"] == 1 and list(scenes.scene_id) == ["santos"]
    assert str(scenes.acquired.iloc[0]).startswith("2023-07-25") and len(rows) == len(SHIPS)
    if same_grid:
        assert max(d for d, _ in nearest_rows(rows)) < GSD
    else:  # a cropped rendering: its pixels are not the bands' pixels, so it is not placed by them
        assert rows.lon.isna().all()


def test_band_folder_is_one_scene_whatever_renderings_it_holds(tmp_path):
    port = tmp_path / "archive" / "genoa"
    _band_folder(port, ("B02", "B03", "B04", "B08"))
    _ships_image(port / "genoa_rgb8.jpg")
    write_geotiff(port / "genoa_rgb.tiff", np.zeros((SIZE[1], SIZE[0], 3), np.uint16), Affine.identity(), UTM)
    _ships_image(tmp_path / "archive" / "other_tile.png")
    sources = resolve_sources([str(tmp_path / "archive")])
    assert sorted(s.scene_id for s in sources) == ["genoa", "other_tile"]
    genoa = next(s for s in sources if s.scene_id == "genoa")
    assert [p.name.split("_")[-2] for p in genoa.paths] == ["B04", "B03", "B02"]
    missing_b02 = tmp_path / "sf"
    _band_folder(missing_b02, ("B03", "B11"))
    _ships_image(missing_b02 / "sf_rgb8.jpg")
    write_geotiff(missing_b02 / "sf_rgb.tiff", np.zeros((SIZE[1], SIZE[0], 3), np.uint16), Affine.identity(), UTM)
    (sf,) = resolve_sources([str(missing_b02)])
    assert sf.paths[0].name == "sf_rgb.tiff"  # a GeoTIFF rendering first: it keeps georeference and 16 bits
