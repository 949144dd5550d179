"""The scale path: a scene of known GSD is resampled into the model's scale range before tiling, and its boxes
are mapped back, so one ground truth seen at two GSDs gives the same ships in metres."""

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from affine import Affine
from pyproj import Transformer

from shipdet.detections import Detections
from shipdet.rescore.params import RescoreParams
from shipdet.rescore.run import RescoreRun
from shipdet.rescore.sources import resolve_sources
from shipdet.scale import ScaleRange
from tests.conftest import write_geotiff
from tests.rescore.conftest import ORIGIN, UTM, ThresholdEngine, _Info

# Ships on the ground, metres from the scene's top-left corner: x1, y1, x2, y2 (multiples of both GSDs).
SHIPS_M = [(36, 36, 156, 60), (300, 120, 360, 138), (420, 300, 444, 420), (96, 360, 168, 384)]
SCENE_M = (600, 480)


class _ScaledInfo(_Info):
    sha256 = "1" * 64
    name = "scale-aware"
    scale_range = ScaleRange(1.5, 2.5)


class SmallShipBlindEngine(ThresholdEngine):
    """A perfect detector that misses ships under 12 px long, as a real one trained at 1.5-2.5 m misses ships at
    6 m: the scale path is what lets it see them."""

    info = _ScaledInfo()  # type: ignore[assignment]

    def detect(self, images: list[np.ndarray], conf: float = 0.25, iou: float = 0.45) -> list[Detections]:
        found = super().detect(images, conf, iou)
        return [d[np.flatnonzero(np.maximum(d.xyxy[:, 2] - d.xyxy[:, 0], d.xyxy[:, 3] - d.xyxy[:, 1]) >= 12)]
                for d in found]


def write_scene_at(path: Path, gsd: float) -> Path:
    w, h = (round(v / gsd) for v in SCENE_M)
    img = np.full((h, w, 3), 20, np.uint8)
    for x1, y1, x2, y2 in SHIPS_M:
        img[round(y1 / gsd):round(y2 / gsd), round(x1 / gsd):round(x2 / gsd)] = 230
    return write_geotiff(path, img, Affine(gsd, 0, ORIGIN[0], 0, -gsd, ORIGIN[1]), UTM)


def ships_on_ground(table: pd.DataFrame) -> list[tuple[float, float]]:
    """For each true ship: (distance in m from its centre to the nearest row, that row's length_m - true length)."""
    to_wgs = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    out = []
    for x1, y1, x2, y2 in SHIPS_M:
        lon, lat = to_wgs.transform(ORIGIN[0] + (x1 + x2) / 2, ORIGIN[1] - (y1 + y2) / 2)
        dist = np.hypot((table.lon - lon) * 111_320 * np.cos(np.radians(lat)), (table.lat - lat) * 111_320)
        i = int(np.argmin(dist.to_numpy()))
        out.append((float(dist.iloc[i]), float(table.length_m.iloc[i]) - max(x2 - x1, y2 - y1)))
    return out


@pytest.fixture
def two_gsds(tmp_path: Path) -> Path:
    folder = tmp_path / "archive"
    folder.mkdir()
    write_scene_at(folder / "fine_2024-05-01.tif", 2.0)
    write_scene_at(folder / "coarse_2024-05-01.tif", 6.0)
    return folder


def test_two_gsds_give_the_same_ships_in_metres(two_gsds: Path, tmp_path: Path) -> None:
    params = RescoreParams(tile=128, overlap=32, max_batch=4)
    RescoreRun(tmp_path / "out", SmallShipBlindEngine(), params).run(resolve_sources([str(two_gsds)]))
    table = gpd.read_parquet(tmp_path / "out" / "detections.parquet")
    scenes = pd.read_csv(tmp_path / "out" / "scenes.csv").set_index("scene_id")
    assert scenes.loc["fine_2024-05-01", "scale_factor"] == 1.0  # inside the range: scored as it is
    assert scenes.loc["coarse_2024-05-01", "scale_factor"] == pytest.approx(6.0 / 2.5, rel=1e-3)  # geodesic metres
    assert scenes.loc["coarse_2024-05-01", "gsd_m"] == pytest.approx(6.0, rel=1e-3)
    for scene_id, gsd in (("fine_2024-05-01", 2.0), ("coarse_2024-05-01", 6.0)):
        rows = table[table.scene_id == scene_id]
        assert len(rows) == len(SHIPS_M)
        for dist, length_error in ships_on_ground(rows):
            assert dist < gsd / 2  # the centre within half a native pixel
            assert abs(length_error) <= gsd  # the length within one native pixel


def test_without_resampling_the_coarse_scene_loses_its_small_ship(two_gsds: Path, tmp_path: Path) -> None:
    params = RescoreParams(tile=128, overlap=32, max_batch=4, resample=False)
    RescoreRun(tmp_path / "out", SmallShipBlindEngine(), params).run(resolve_sources([str(two_gsds)]))
    table = gpd.read_parquet(tmp_path / "out" / "detections.parquet")
    scenes = pd.read_csv(tmp_path / "out" / "scenes.csv").set_index("scene_id")
    assert (scenes.scale_factor == 1.0).all()
    assert (table.scene_id == "coarse_2024-05-01").sum() < len(SHIPS_M)  # 60 m at 6 m is 10 px: missed


def test_a_given_gsd_overrides_the_georeference(two_gsds: Path, tmp_path: Path) -> None:
    params = RescoreParams(tile=128, overlap=32, max_batch=4, gsd=5.0)
    RescoreRun(tmp_path / "out", SmallShipBlindEngine(), params).run(resolve_sources([str(two_gsds)]))
    scenes = pd.read_csv(tmp_path / "out" / "scenes.csv").set_index("scene_id")
    assert np.allclose(scenes.scale_factor, 2.0) and (scenes.gsd_m == 5.0).all()


def test_a_model_without_a_scale_range_scores_scenes_as_before(two_gsds: Path, tmp_path: Path) -> None:
    RescoreRun(tmp_path / "out", ThresholdEngine(), RescoreParams(tile=128, overlap=32)).run(
        resolve_sources([str(two_gsds)]))
    scenes = pd.read_csv(tmp_path / "out" / "scenes.csv")
    assert (scenes.scale_factor == 1.0).all() and scenes.gsd_m.notna().all()


def test_implausible_gsd_is_refused() -> None:
    with pytest.raises(ValueError, match="ground sample distance"):
        RescoreParams(gsd=0.0)


class _TwoThresholdInfo(_ScaledInfo):
    upsampled_conf = 0.6


class RecordingEngine(SmallShipBlindEngine):
    """Records the thresholds it is asked for and the images it is shown (each view of a window is one)."""

    def __init__(self, info: _ScaledInfo) -> None:
        self.info = info
        self.seen: set[float] = set()
        self.images = 0

    def detect(self, images: list[np.ndarray], conf: float = 0.25, iou: float = 0.45) -> list[Detections]:
        self.seen.add(conf)
        self.images += len(images)
        return super().detect(images, conf, iou)


def rescored(engine: RecordingEngine, archive: Path, out: Path, **params: float) -> tuple[RescoreRun, pd.DataFrame]:
    """Both scenes re-scored by `engine` with 128 px windows: the run and its scenes table."""
    run = RescoreRun(out, engine, RescoreParams(tile=128, overlap=32, **params))
    run.run(resolve_sources([str(archive)]))
    return run, pd.read_csv(out / "scenes.csv").set_index("scene_id")


def test_an_upsampled_scene_is_scored_at_the_model_threshold_for_upsampled_imagery(two_gsds: Path,
                                                                                     tmp_path: Path) -> None:
    engine = RecordingEngine(_TwoThresholdInfo())
    run, scenes = rescored(engine, two_gsds, tmp_path / "own")
    assert scenes.loc["fine_2024-05-01", "conf"] == 0.25 and scenes.loc["coarse_2024-05-01", "conf"] == 0.6
    assert engine.seen == {0.25, 0.6}
    # An explicit threshold is every scene's; the key says which thresholds a scene was scored at.
    asked = RecordingEngine(_TwoThresholdInfo())
    one, scenes = rescored(asked, two_gsds, tmp_path / "asked", conf=0.25)
    assert asked.seen == {0.25} and (scenes["conf"] == 0.25).all()
    assert one.params_hash != run.params_hash
    assert run.params_hash == RescoreRun(tmp_path / "same", RecordingEngine(_TwoThresholdInfo()), RescoreParams(
        tile=128, overlap=32, conf=0.25, conf_upsampled=0.6)).params_hash


class _TwoViewCountsInfo(_ScaledInfo):
    default_views = 4
    upsampled_views = 1


def test_an_upsampled_scene_is_scored_in_the_model_s_views_for_upsampled_imagery(two_gsds: Path,
                                                                                  tmp_path: Path) -> None:
    engine = RecordingEngine(_TwoViewCountsInfo())
    _, scenes = rescored(engine, two_gsds, tmp_path / "own")
    assert (scenes.loc["fine_2024-05-01", "views"], scenes.loc["coarse_2024-05-01", "views"]) == (4, 1)
    manifest = [json.loads(line) for line in (tmp_path / "own" / "manifest.jsonl").read_text().splitlines()]
    windows = {r["scene_id"]: r["tiles"] for r in manifest}
    fine, coarse = windows["fine_2024-05-01"], windows["coarse_2024-05-01"]
    assert engine.images == 4 * fine + coarse  # each window once in each of its scene's views
    asked = RecordingEngine(_TwoViewCountsInfo())  # views given are every scene's
    rescored(asked, two_gsds, tmp_path / "asked", views=2)
    assert asked.images == 2 * (fine + coarse)


def test_ray_scores_each_scene_in_its_views_as_the_local_backend_does(two_gsds: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from shipdet.inference.engine import Engine
    from shipdet.inference.operating_point import VIEWS_METADATA_KEY, VIEWS_UPSAMPLED_METADATA_KEY
    from shipdet.rescore.ray_backend import run_on_ray
    from shipdet.scale import METADATA_KEY
    from tests.fake_model import detect_model

    # The fake model's boxes sit at fixed places of each window: in 2 views they come back mirrored, halved.
    model = detect_model(tmp_path / "split.onnx", {VIEWS_METADATA_KEY: "2", VIEWS_UPSAMPLED_METADATA_KEY: "1",
                                                  METADATA_KEY: ScaleRange(1.5, 2.5).to_metadata()})
    engine = Engine(model, providers=["cpu"])
    params = RescoreParams(overlap=16, max_batch=4, conf=0.3)
    sources = resolve_sources([str(two_gsds)])
    RescoreRun(tmp_path / "local", engine, params).run(sources)
    assert run_on_ray(RescoreRun(tmp_path / "ray", engine, params), sources, actors=1, providers=("cpu",))["done"] == 2
    key = ["scene_id", "det_id"]
    local, ray = (gpd.read_parquet(tmp_path / out / "detections.parquet").sort_values(key).reset_index(drop=True)
                  for out in ("local", "ray"))
    scores = local.groupby("scene_id").score.max()
    assert scores["fine_2024-05-01"] == pytest.approx(0.45) and scores["coarse_2024-05-01"] == pytest.approx(0.9)
    pd.testing.assert_frame_equal(local.drop(columns="geometry"), ray.drop(columns="geometry"), check_exact=False,
                                  rtol=1e-5)
