"""Re-scoring's outputs open with independent tools: pyarrow datasets over the per-scene files, GeoParquet 1.1
with a bbox covering, RFC 7946 GeoJSON that GDAL converts, boxes whose length is their long side."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from shipdet.rescore.params import RescoreParams
from shipdet.rescore.run import RescoreRun
from shipdet.rescore.sources import resolve_sources
from tests.rescore.conftest import SHIPS, ThresholdEngine, write_scene

PARAMS = RescoreParams(tile=128, overlap=32, max_batch=4)


@pytest.fixture
def run(tmp_path: Path) -> Path:
    folder = tmp_path / "archive"
    folder.mkdir()
    write_scene(folder / "scene_2024-03-07.tif", SHIPS)
    write_scene(folder / "scene_2024-03-08.tif", [], offset=2000.0)  # no ships: its table is empty
    out = tmp_path / "out"
    rescore = RescoreRun(out, ThresholdEngine(), PARAMS)
    rescore.run(resolve_sources([str(folder)]))
    rescore.export_geojson()
    return out


def test_per_scene_files_share_one_schema_and_read_as_one_dataset(run: Path) -> None:
    schemas = [pq.read_schema(p) for p in sorted((run / "scenes").glob("*.parquet"))]
    assert len(schemas) == 2
    assert schemas[0].remove_metadata().equals(schemas[1].remove_metadata())
    table = ds.dataset(run / "scenes", format="parquet").to_table()
    assert table.num_rows == len(SHIPS)
    assert table.schema.field("scene_id").type in (pa.string(), pa.large_string())
    assert table.schema.field("acquired").type == pa.timestamp("us", tz="UTC")


def test_geoparquet_has_a_bbox_covering_and_no_index_column(run: Path) -> None:
    for name in ("detections.parquet", "scenes.parquet"):
        meta = json.loads(pq.read_schema(run / name).metadata[b"geo"])
        assert meta["version"] == "1.1.0"
        assert "covering" in meta["columns"][meta["primary_column"]], name
        assert not any(n.startswith("__index_level") for n in pq.read_schema(run / name).names)
    every = gpd.read_parquet(run / "detections.parquet")
    corner = every.geometry.iloc[0].bounds
    some = gpd.read_parquet(run / "detections.parquet", bbox=corner)
    assert 1 <= len(some) < len(every)


def test_every_geoparquet_file_passes_an_independent_validator(run: Path) -> None:
    gpv = pytest.importorskip("geoparquet_validator")
    files = [run / "detections.parquet", run / "scenes.parquet", *sorted((run / "scenes").glob("*.parquet"))]
    assert len(files) >= 3
    for path in files:
        report = gpv.check(str(path))
        assert report["version"] == "1.1.0", path
        assert gpv.failed(report, "core") == gpv.failed(report, "covering") == [], (path, report["outcomes"])
        passed = {o["id"] for o in report["outcomes"] if o["status"] == "pass"}
        assert {"/conf/core/geo-metadata", "/conf/core/wkb", "/conf/covering/bbox-paths"} <= passed, path
        if pq.read_metadata(path).num_rows:  # a scene without ships has no extent nor statistics to check
            assert gpv.failed(report, "distribution") == [] and "/conf/core/bbox-extent" in passed, path


def test_footprints_do_not_repeat_vertices(run: Path) -> None:
    for footprint in gpd.read_parquet(run / "scenes.parquet").footprint:
        xy = np.asarray(footprint.exterior.coords)[:-1]
        assert not (np.abs(np.diff(xy, axis=0)).sum(axis=1) == 0).any()


def test_geojson_follows_rfc_7946_and_converts_with_gdal(run: Path, tmp_path: Path) -> None:
    import pyogrio

    text = (run / "detections.geojson").read_text()
    collection = json.loads(text)
    assert "crs" not in collection and "name" not in collection
    for feature in collection["features"]:
        ring = np.asarray(feature["geometry"]["coordinates"][0])
        x, y = ring[:-1, 0], ring[:-1, 1]
        assert np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y) > 0  # counter-clockwise exterior
        assert np.array_equal(np.round(ring, 7), ring)  # coordinates to 7 decimals (about 1 cm)
    gpkg = tmp_path / "detections.gpkg"
    pyogrio.write_dataframe(pyogrio.read_dataframe(run / "detections.geojson"), gpkg, driver="GPKG")
    assert len(pyogrio.read_dataframe(gpkg)) == len(SHIPS)


def test_length_is_the_long_side_in_pixels_as_in_metres(run: Path) -> None:
    table = gpd.read_parquet(run / "detections.parquet")
    assert (table.length_px >= table.width_px).all() and (table.length_m >= table.width_m).all()
    tall = table[(table.x2 - table.x1) < (table.y2 - table.y1)]  # the ship drawn 12 x 40 px
    assert len(tall) == 1 and tall.length_px.iloc[0] == pytest.approx(40, abs=1)
    assert abs(tall.angle_deg.iloc[0]) == pytest.approx(90, abs=1e-6)
    assert tall.length_m.iloc[0] / tall.length_px.iloc[0] == pytest.approx(
        table.length_m.iloc[0] / table.length_px.iloc[0], rel=0.02)
