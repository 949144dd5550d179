import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from shipdet.rescore.params import RescoreParams
from shipdet.rescore.run import RescoreRun
from shipdet.rescore.sources import resolve_sources
from tests.rescore.conftest import GSD, ORIGIN, SHIPS, UTM, ThresholdEngine, nearest_rows

PARAMS = RescoreParams(tile=128, overlap=32, max_batch=4)


@pytest.mark.parametrize("grid", ["even", "stride"])
def test_ships_land_within_one_pixel_of_truth(scenes, tmp_path, grid):
    run = RescoreRun(tmp_path / "out", ThresholdEngine(), PARAMS.model_copy(update={"grid": grid}))
    counts = run.run(resolve_sources([str(scenes)]))
    assert counts["done"] == 5 and counts["failed"] == 0
    table = gpd.read_parquet(tmp_path / "out" / "detections.parquet")
    assert len(table) == 5 * len(SHIPS)  # every ship once, also those cut by window seams (118-150 crosses 128)
    scene0 = table[table.scene_id == "scene_2024-03-07"]
    for (dist, i), (x1, y1, x2, y2) in zip(nearest_rows(scene0), SHIPS, strict=True):
        assert dist < GSD  # within one pixel
        assert scene0.iloc[i].length_m == pytest.approx(GSD * max(x2 - x1, y2 - y1), rel=0.01)
    assert str(scene0.acquired.iloc[0]).startswith("2024-03-07")
    assert scene0.geometry.iloc[0].geom_type == "Polygon" and table.crs.to_epsg() == 4326
    assert set(table.columns) >= {"scene_id", "acquired", "det_id", "lon", "lat", "geometry", "x1", "cx", "length_px",
                                  "angle_deg", "length_m", "width_m", "heading_deg", "score", "class_name",
                                  "model_sha256", "params_hash"}
    scenes_table = gpd.read_parquet(tmp_path / "out" / "scenes.parquet")
    assert (scenes_table.status == "done").all() and (scenes_table.valid_fraction > 0.99).all()
    assert scenes_table.footprint.iloc[0].contains(scene0.geometry.iloc[0].centroid)
    assert "footprint_wkt" in pd.read_csv(tmp_path / "out" / "scenes.csv").columns


class CrowdedEngine(ThresholdEngine):
    """The real ships, and where a window holds the first one, as many more as the detector's cap allows."""

    def detect(self, images, conf=0.25, iou=0.45):
        from shipdet.detections import Detections
        from shipdet.inference.postprocess import DEFAULT_MAX_DET

        found = super().detect(images, conf, iou)
        for i, img in enumerate(images):
            if img[14, 25, 0] > 128:  # inside SHIPS[0]: this window is the marina
                grid = np.arange(DEFAULT_MAX_DET)
                boxes = np.column_stack([grid % 20 * 6, grid // 20 * 6, grid % 20 * 6 + 3, grid // 20 * 6 + 3])
                found[i] = Detections(boxes.astype(float), np.full(DEFAULT_MAX_DET, 0.5),
                                      np.zeros(DEFAULT_MAX_DET, int))
        return found


def test_a_window_at_the_detection_cap_is_counted_so_the_scene_count_reads_as_a_lower_bound(scenes, tmp_path,
                                                                                             caplog):
    for scene in sorted(scenes.glob("*.tif"))[1:]:
        scene.unlink()
    run = RescoreRun(tmp_path / "out", CrowdedEngine(), PARAMS)
    with caplog.at_level("WARNING"):
        assert run.run(resolve_sources([str(scenes)]))["done"] == 1
    table = pd.read_csv(tmp_path / "out" / "scenes.csv")
    assert table["capped_windows"].tolist() == [1]  # the one window whose pixels hold (14, 25)
    assert "may hold more ships than were found" in caplog.text
    plain = RescoreRun(tmp_path / "plain", ThresholdEngine(), PARAMS)
    plain.run(resolve_sources([str(scenes)]))
    assert pd.read_csv(tmp_path / "plain" / "scenes.csv")["capped_windows"].tolist() == [0]


def test_corrupt_scene_is_recorded_and_the_rest_complete(scenes, tmp_path):
    (scenes / "broken.tif").write_bytes(b"II*\x00garbage")
    run = RescoreRun(tmp_path / "out", ThresholdEngine(), PARAMS)
    counts = run.run(resolve_sources([str(scenes)]))
    assert counts["done"] == 5 and counts["failed"] == 1
    failures = [json.loads(line) for line in (tmp_path / "out" / "failures.jsonl").read_text().splitlines()]
    assert failures[0]["scene_id"] == "broken" and failures[0]["error"]
    table = pd.read_csv(tmp_path / "out" / "scenes.csv")
    assert table.set_index("scene_id").loc["broken", "status"] == "failed"
    again = RescoreRun(tmp_path / "out", ThresholdEngine(), PARAMS).run(resolve_sources([str(scenes)]))
    assert again["skipped"] == 5 and again["failed"] == 1 and again["done"] == 0
    (scenes / "broken.tif").unlink()
    from tests.rescore.conftest import write_scene

    write_scene(scenes / "broken.tif", SHIPS)  # repaired: --retry-failed redoes it
    retried = RescoreRun(tmp_path / "out", ThresholdEngine(), PARAMS).run(resolve_sources([str(scenes)]),
                                                                          retry_failed=True)
    assert retried["done"] == 1 and retried["skipped"] == 5


RUNNER = """
import sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from shipdet.rescore.params import RescoreParams
from shipdet.rescore.run import RescoreRun
from shipdet.rescore.sources import resolve_sources
from tests.rescore.conftest import ThresholdEngine

class Slow(ThresholdEngine):
    def detect(self, images, conf=0.25, iou=0.45):
        time.sleep(0.15)
        return super().detect(images, conf, iou)

RescoreRun(Path(sys.argv[2]), Slow(), RescoreParams(tile=128, overlap=32, max_batch=4)).run(
    resolve_sources([sys.argv[1]]))
"""


def test_sigkill_and_rerun_gives_exactly_the_uninterrupted_rows(scenes, tmp_path):
    script = tmp_path / "runner.py"
    script.write_text(RUNNER.format(root=str(Path(__file__).resolve().parents[2])))
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(script), str(scenes), str(killed)], env=os.environ.copy())
    manifest = killed / "manifest.jsonl"
    deadline = time.monotonic() + 60
    while (not manifest.is_file() or len(manifest.read_text().splitlines()) < 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(manifest.read_text().splitlines())
    assert 2 <= done_before < 5  # killed part-way
    counts = RescoreRun(killed, ThresholdEngine(), PARAMS).run(resolve_sources([str(scenes)]))
    assert counts["skipped"] == done_before and counts["done"] == 5 - done_before
    RescoreRun(tmp_path / "clean", ThresholdEngine(), PARAMS).run(resolve_sources([str(scenes)]))
    key = ["scene_id", "det_id"]
    a = gpd.read_parquet(killed / "detections.parquet").sort_values(key).reset_index(drop=True)
    b = gpd.read_parquet(tmp_path / "clean" / "detections.parquet").sort_values(key).reset_index(drop=True)
    assert not a.duplicated(key).any() and len(a) == len(b) == 5 * len(SHIPS)
    pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))


def test_sources_manifest_and_sentinel2_folder(tmp_path, scenes):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,scene_id,acquired\n" + "\n".join(
        f"{p},s{i},2024-05-0{i + 1}T10:30:00Z" for i, p in enumerate(sorted(scenes.glob("*.tif")))) + "\n")
    sources = resolve_sources([str(manifest)])
    assert [s.scene_id for s in sources][:2] == ["s0", "s1"] and sources[0].acquired.hour == 10
    s2 = tmp_path / "port"
    s2.mkdir()
    for band in ("B02", "B03", "B04", "B08"):
        (s2 / f"2023-07-10-00:00_2023-07-10-23:59_Sentinel-2_L2A_{band}_(Raw).tiff").write_bytes(b"x")
    (found,) = resolve_sources([str(s2)])
    assert found.scene_id == "port" and [p.name.split("_")[-2] for p in found.paths] == ["B04", "B03", "B02"]
    assert found.acquired.isoformat() == "2023-07-10T00:00:00+00:00"


def test_real_sentinel2_rows_inside_footprints(real_data, tmp_path):
    from shipdet.inference.engine import Engine
    from shipdet.serve.settings import DEFAULT_MODEL

    engine = Engine(DEFAULT_MODEL, providers=["cpu"])
    run = RescoreRun(tmp_path / "s2", engine, RescoreParams(conf=0.05))
    ports = sorted(p.name for p in (real_data / "sentinel2-ports").iterdir() if p.is_dir())
    sources = resolve_sources([str(real_data / "sentinel2-ports")])
    assert sorted(s.scene_id for s in sources) == ports  # one scene a port: its renderings are not scored again
    counts = run.run(sources)
    assert counts["failed"] == 0 and counts["done"] == len(ports)
    scenes = gpd.read_parquet(tmp_path / "s2" / "scenes.parquet").set_index("scene_id")
    assert scenes.acquired.notna().all()  # dated by the band files, renderings too
    # Qingdao's published rendering is cropped off its bands' grid: the one scene that cannot be placed.
    assert scenes["crs"].notna().sum() >= len(ports) - 1
    # The scale path: placed 10 m scenes are resampled into the bundled model's range, the others scored as they are.
    placed = scenes[scenes["crs"].notna()]
    scale_range = engine.info.scale_range
    if scale_range is not None:
        # Sentinel Hub's exports have square pixels in degrees: east-west they are narrower in metres away from
        # the equator, so the geodesic GSD (both axes' geometric mean) is below 10 m at high latitude (Gdynia 5.8).
        assert (placed.gsd_m.between(5, 11)).all()
        assert np.allclose(placed.scale_factor, placed.gsd_m / scale_range.coarsest_m, rtol=1e-6)
    assert (scenes[scenes["crs"].isna()].scale_factor == 1.0).all()
    rows = gpd.read_parquet(tmp_path / "s2" / "detections.parquet")
    rows = rows[rows.geometry.notna()]
    assert len(rows) > 0 and rows.lon.between(-180, 180).all()
    for _, row in rows.iterrows():
        assert scenes.loc[row.scene_id, "footprint"].buffer(1e-4).contains(row.geometry.centroid)


def test_ray_backend_equals_local(scenes, tmp_path):
    pytest.importorskip("ray")
    from shipdet.inference.engine import Engine
    from shipdet.rescore.ray_backend import run_on_ray
    from tests.fake_model import detect_model

    engine = Engine(detect_model(tmp_path / "fake.onnx"), providers=["cpu"])
    params = RescoreParams(overlap=16, max_batch=4, conf=0.5)
    sources = resolve_sources([str(scenes)])[:2]
    RescoreRun(tmp_path / "local", engine, params).run(sources)
    run = RescoreRun(tmp_path / "ray", engine, params)
    counts = run_on_ray(run, sources, actors=2, providers=("cpu",))
    assert counts["done"] == 2 and counts["failed"] == 0
    key = ["scene_id", "det_id"]
    a = gpd.read_parquet(tmp_path / "local" / "detections.parquet").sort_values(key).reset_index(drop=True)
    b = gpd.read_parquet(tmp_path / "ray" / "detections.parquet").sort_values(key).reset_index(drop=True)
    assert len(a) > 0
    pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"), check_exact=False,
                                  rtol=1e-5)
    assert json.loads((tmp_path / "ray" / "manifest.jsonl").read_text().splitlines()[0])["status"] == "done"


def test_stac_item_collection_with_band_assets(tmp_path):
    pystac = pytest.importorskip("pystac")
    from datetime import UTC, datetime

    from tests.rescore.conftest import write_scene

    for band in ("red", "green", "blue"):
        write_scene(tmp_path / f"{band}.tif", SHIPS)
    item = pystac.Item("S2X_20240610", geometry=None, bbox=None, datetime=datetime(2024, 6, 10, 2, 3, tzinfo=UTC),
                       properties={})
    for band in ("red", "green", "blue"):
        item.add_asset(band, pystac.Asset(href=str(tmp_path / f"{band}.tif")))
    collection = tmp_path / "items.json"
    collection.write_text(json.dumps(pystac.ItemCollection([item]).to_dict()))
    (source,) = resolve_sources([str(collection)])
    assert source.scene_id == "S2X_20240610" and [p.name for p in source.paths] == ["red.tif", "green.tif", "blue.tif"]
    assert source.acquired == datetime(2024, 6, 10, 2, 3, tzinfo=UTC)
    counts = RescoreRun(tmp_path / "out", ThresholdEngine(), PARAMS).run([source])
    assert counts["done"] == 1 and len(gpd.read_parquet(tmp_path / "out" / "detections.parquet")) == len(SHIPS)


def test_voyages_from_rescore_outputs(scenes, tmp_path):
    """The voyage counter reads what rescore writes: four ships moored through five daily scenes are four visits."""
    from typer.testing import CliRunner

    from shipdet.cli import app

    RescoreRun(tmp_path / "run", ThresholdEngine(), PARAMS).run(resolve_sources([str(scenes)]))
    frame = gpd.read_parquet(tmp_path / "run" / "scenes.parquet")
    # All five scenes lie side by side (2 km apart): the area is the first scene's footprint, so the same ships
    # are seen only there; shift the other scenes' rows onto it as if the same harbour was imaged five times.
    det = gpd.read_parquet(tmp_path / "run" / "detections.parquet")
    first = frame.set_index("scene_id").footprint.iloc[0]
    for sid in det.scene_id.unique():
        sub = det.scene_id == sid
        centre = frame.set_index("scene_id").footprint[sid].centroid
        det.loc[sub, "lon"] -= centre.x - first.centroid.x  # UTM eastings differ in latitude too (convergence)
        det.loc[sub, "lat"] -= centre.y - first.centroid.y
    det.to_parquet(tmp_path / "run" / "moved.parquet")
    frame["footprint"] = gpd.GeoSeries([first] * len(frame), crs="EPSG:4326", index=frame.index)
    frame["valid"] = gpd.GeoSeries([first] * len(frame), crs="EPSG:4326", index=frame.index)
    frame.to_parquet(tmp_path / "run" / "scenes_same.parquet")
    area = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"name": "harbour"},
                                                       "geometry": json.loads(gpd.GeoSeries([first]).to_json())[
                                                           "features"][0]["geometry"]}]}
    (tmp_path / "area.geojson").write_text(json.dumps(area))
    result = CliRunner().invoke(app, ["voyages", "--detections", str(tmp_path / "run" / "moved.parquet"), "--scenes",
                                      str(tmp_path / "run" / "scenes_same.parquet"), "--areas",
                                      str(tmp_path / "area.geojson"), "--out", str(tmp_path / "voy")])
    assert result.exit_code == 0, result.output
    visits = pd.read_csv(tmp_path / "voy" / "visits.csv")
    assert len(visits) == len(SHIPS) and (visits.sightings == 5).all()


def test_cloud_mask_band_and_nodata_shrink_the_valid_part(tmp_path):
    from affine import Affine

    from tests.conftest import write_geotiff
    from tests.rescore.conftest import GSD, ORIGIN, UTM

    img = np.full((200, 300, 4), 20, np.uint8)
    img[:, :, 3] = 0
    img[:, 150:, 3] = 1  # the east half under cloud
    img[:50, :, :3] = 0  # the northern quarter without data (nodata 0 in every band)
    write_geotiff(tmp_path / "cloudy.tif", img, Affine(GSD, 0, ORIGIN[0], 0, -GSD, ORIGIN[1]), UTM)
    counts = RescoreRun(tmp_path / "out", ThresholdEngine(), RescoreParams(tile=128, overlap=32, cloud_band=4)).run(
        resolve_sources([str(tmp_path / "cloudy.tif")]))
    assert counts["done"] == 1
    scene = gpd.read_parquet(tmp_path / "out" / "scenes.parquet").iloc[0]
    assert scene.valid_fraction == pytest.approx(0.5 * 0.75, abs=0.02)
    assert scene.valid.area == pytest.approx(scene.footprint.area * 0.375, rel=0.05)


def test_invalid_setting_is_one_clear_line(scenes, tmp_path, monkeypatch, capsys):
    """A bad option or SHIPDET_RESCORE_* value names the setting and exits 2, no traceback, nothing written."""
    from shipdet.cli import main

    for argv, env, expected in ((["--grid", "diagonal"], {}, "grid: Input should be 'even' or 'stride'"),
                                ([], {"SHIPDET_RESCORE_CONF": "high"}, "conf: Input should be a valid number")):
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setattr("sys.argv", ["shipdet", "rescore", str(scenes), "--out", str(tmp_path / "out"), *argv])
        with pytest.raises(SystemExit) as exit_info:
            main()
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and expected in err and "Traceback" not in err
        for key in env:
            monkeypatch.delenv(key)
    assert not (tmp_path / "out").exists()


def test_windows_without_data_are_not_scored(tmp_path):
    """The blank (nodata) margin of a scene costs no inference; ships in the data part are all found; a scene
    with no data at all completes with no rows."""
    from affine import Affine

    from tests.conftest import write_geotiff

    class CountingEngine(ThresholdEngine):
        tiles = 0

        def detect(self, images, conf=0.25, iou=0.45):
            CountingEngine.tiles += len(images)
            return super().detect(images, conf, iou)

    img = np.full((260, 300, 3), 20, np.uint8)
    img[:, :130] = 0  # the western part of the granule has no data
    ships = [(200, 100, 212, 140), (150, 30, 180, 40)]
    for x1, y1, x2, y2 in ships:
        img[y1:y2, x1:x2] = 230
    transform = Affine(GSD, 0, ORIGIN[0], 0, -GSD, ORIGIN[1])
    write_geotiff(tmp_path / "margin.tif", img, transform, UTM)
    write_geotiff(tmp_path / "blank.tif", np.zeros_like(img), transform, UTM)
    params = RescoreParams(tile=128, overlap=32)  # columns 0, 86, 172: the first lies wholly in the margin
    counts = RescoreRun(tmp_path / "out", CountingEngine(), params).run(resolve_sources([str(tmp_path)]))
    assert counts["done"] == 2 and counts["failed"] == 0
    assert CountingEngine.tiles == counts["tiles"] == 6  # of 2 x 9 windows: margin.tif's 6 with data
    table = gpd.read_parquet(tmp_path / "out" / "detections.parquet")
    assert sorted(table.x1.round().astype(int).tolist()) == sorted(x1 for x1, *_ in ships)
    assert set(table.scene_id) == {"margin"}
    scenes = gpd.read_parquet(tmp_path / "out" / "scenes.parquet").set_index("scene_id")
    assert scenes.loc["blank", "valid_fraction"] == 0.0 and scenes.loc["blank", "n_detections"] == 0


class _InterruptedEngine(ThresholdEngine):
    """Ctrl-C arrives while the third scene is being scored."""

    calls = 0

    def detect(self, images, conf=0.25, iou=0.45):
        scene_windows = 9  # 300 x 260 px in 128 px windows with 32 px overlap: 3 x 3
        self.calls += 1
        if self.calls > 2 * scene_windows / PARAMS.max_batch + 1:
            raise KeyboardInterrupt
        return super().detect(images, conf, iou)


def test_ctrl_c_keeps_the_tables_of_the_scenes_finished(scenes, tmp_path):
    run = RescoreRun(tmp_path / "out", _InterruptedEngine(), PARAMS)
    with pytest.raises(KeyboardInterrupt):
        run.run(resolve_sources([str(scenes)]))
    table = pd.read_csv(tmp_path / "out" / "scenes.csv")
    assert 1 <= (table.status == "done").sum() < 5  # the scenes finished before the interruption, no more
    detections = gpd.read_parquet(tmp_path / "out" / "detections.parquet")
    assert set(detections.scene_id) == set(table.scene_id[table.status == "done"])
    again = RescoreRun(tmp_path / "out", ThresholdEngine(), PARAMS).run(resolve_sources([str(scenes)]))
    assert again["skipped"] == (table.status == "done").sum() and again["done"] + again["skipped"] == 5


def test_progress_inside_a_scene_moves_per_batch_of_windows(scenes):
    from shipdet.rescore.scene import open_scene
    from shipdet.rescore.scoring import detect_scene

    heard: list[tuple[int, int]] = []
    source = resolve_sources([str(scenes)])[0]
    scene = open_scene(source)
    try:
        scored = detect_scene(ThresholdEngine(), scene, PARAMS, lambda done, total: heard.append((done, total)))
    finally:
        scene.close()
    assert len(heard) >= 2 and heard[-1][0] == heard[-1][1]  # batches of 4 windows, the last one completes
    assert [d for d, _ in heard] == sorted(d for d, _ in heard) and scored.tiles <= heard[-1][1]


def test_an_overlap_is_at_most_half_a_window() -> None:
    """The default overlap (128 px) on a model with 128 px inputs: windows half a window apart, not a pixel."""
    from types import SimpleNamespace

    from shipdet.rescore.scoring import scene_windows
    from shipdet.tiling import tile_windows

    scene = SimpleNamespace(width=300, height=260)
    windows = scene_windows(ThresholdEngine(), scene, RescoreParams(), 1.0)  # type: ignore[arg-type]
    assert windows == tile_windows(300, 260, 128, 64) and len(windows) == 16
