"""Georeferencing against independent references: rasterio's own transform and pyproj's scale factors."""

import math

import numpy as np
import pytest
from affine import Affine
from pyproj import Geod, Proj, Transformer

from shipdet.detections import Detections
from shipdet.errors import GeoreferenceError
from shipdet.georef import GeoReference, georeference
from tests.conftest import write_geotiff

rasterio = pytest.importorskip("rasterio")

UTM53N = "EPSG:32653"
# Off Vostochny port, 42.74 N 133.06 E: UTM zone 53N easting/northing of the raster's top-left corner.
UTM_ORIGIN = (341_200.0, 4_733_800.0)


@pytest.fixture
def utm_tif(tmp_path):
    transform = Affine(3.0, 0.0, UTM_ORIGIN[0], 0.0, -3.0, UTM_ORIGIN[1])
    return write_geotiff(tmp_path / "utm.tif", np.zeros((64, 96), np.uint8), transform, UTM53N)


@pytest.fixture
def wgs84_tif(tmp_path):
    transform = Affine(1e-4, 0.0, 133.0, 0.0, -1e-4, 42.75)
    return write_geotiff(tmp_path / "wgs84.tif", np.zeros((64, 96), np.uint8), transform, "EPSG:4326")


def _ref(path):
    with rasterio.open(path) as src:
        return GeoReference.from_parts(src.transform, src.crs.to_wkt()), src


@pytest.mark.parametrize("name", ["utm_tif", "wgs84_tif"])
def test_lonlat_of_known_pixels(name, request):
    ref, src = _ref(request.getfixturevalue(name))
    to_wgs = Transformer.from_crs(src.crs.to_wkt(), "EPSG:4326", always_xy=True)
    for row, col in [(0, 0), (10, 20), (63, 95), (31.5, 47.5)]:
        x, y = rasterio.transform.xy(src.transform, row, col, offset="ul")
        lon_ref, lat_ref = to_wgs.transform(x, y)
        lon, lat = ref.pixel_to_lonlat(col, row)
        assert abs(lon - lon_ref) < 1e-6 and abs(lat - lat_ref) < 1e-6
    lon0, lat0 = ref.pixel_to_lonlat(0, 0)
    assert 132.9 < lon0 < 133.2 and 42.6 < lat0 < 42.8


def test_utm_ship_length_width_heading(utm_tif):
    ref, _ = _ref(utm_tif)
    # A 100 x 15 px ship (300 m x 45 m on the grid) along the image x axis (grid east).
    dets = Detections.from_obb([[48, 32, 100, 15, 0.0]], [0.9], [0])
    geo = georeference(dets, ref)
    lon, lat = geo.data["lon"][0], geo.data["lat"][0]
    k = Proj(UTM53N).get_factors(lon, lat).meridional_scale  # grid distance = ground distance * k
    assert geo.data["length_m"][0] == pytest.approx(300 / k, rel=1e-3)
    assert geo.data["width_m"][0] == pytest.approx(45 / k, rel=1e-3)
    # Grid east differs from true east by the meridian convergence, gamma = atan(tan(lon - lon0) sin(lat)),
    # negative west of the zone's central meridian (135 E).
    gamma = math.degrees(math.atan(math.tan(math.radians(lon - 135.0)) * math.sin(math.radians(lat))))
    assert gamma < -1.0
    assert geo.data["heading_deg"][0] == pytest.approx(90 + gamma, abs=0.05)


def test_geographic_ship_length(wgs84_tif):
    ref, _ = _ref(wgs84_tif)
    dets = Detections(np.array([[10.0, 20.0, 60.0, 24.0]]), [0.8], [0])  # 50 px east-west
    geo = georeference(dets, ref)
    lon, lat = ref.pixel_to_lonlat(np.array([10, 60]), np.array([22, 22]))
    _, _, expected = Geod(ellps="WGS84").inv(lon[0], lat[0], lon[1], lat[1])
    assert geo.data["length_m"][0] == pytest.approx(expected, rel=0.01)
    assert geo.data["length_m"][0] == pytest.approx(50 * 1e-4 * 111_320 * math.cos(math.radians(42.748)), rel=0.01)
    assert geo.data["heading_deg"][0] == pytest.approx(90.0, abs=0.1)


def test_rotated_ship_heading(utm_tif):
    ref, _ = _ref(utm_tif)
    # Image y points south, so an angle of -45 degrees (towards +x, -y) is a ship lying north-east.
    geo = georeference(Detections.from_obb([[48, 32, 40, 8, -math.pi / 4]], [1], [0]), ref)
    assert geo.data["heading_deg"][0] == pytest.approx(45, abs=2.0)


def test_empty_and_bad_inputs(utm_tif):
    ref, _ = _ref(utm_tif)
    assert len(georeference(Detections.empty(), ref).data["lon"]) == 0
    with pytest.raises(GeoreferenceError, match="unknown CRS"):
        GeoReference.from_parts([1, 0, 0, 0, -1, 0], "EPSG:999999")
    with pytest.raises(GeoreferenceError, match="6 coefficients"):
        GeoReference.from_parts([1, 0, 0], UTM53N)
    with pytest.raises(GeoreferenceError, match="singular"):
        GeoReference.from_parts([0, 0, 0, 0, 0, 0], UTM53N)
