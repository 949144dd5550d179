"""The service through the real HTTP stack: every limit and error, auth, metrics, georeferencing, batching."""

import asyncio
import io
import json
import time

import httpx
import numpy as np
import pytest

from shipdet.errors import ConfigError
from shipdet.serve.settings import ServeSettings
from tests.serve.conftest import live_server
from tests.serve.images import jpeg, png, png_declaring, tiff, tiff_bomb

JPEG = {"content-type": "image/jpeg"}


def post(server, body, headers=None, params=None, path="/v1/detect"):
    return httpx.post(server.url + path, content=body, headers=headers or JPEG, params=params, timeout=30)


def test_detect_jpeg_png_and_contract_shape(server):
    for body, ctype in ((jpeg(320, 160), "image/jpeg"), (png(320, 160), "image/png")):
        r = post(server, body, {"content-type": ctype})
        assert r.status_code == 200, r.text
        data = r.json()
        assert set(data) >= {"model", "image", "detections", "timing_ms"}
        assert set(data["model"]) == {"name", "version", "sha256"} and len(data["model"]["sha256"]) == 64
        assert data["image"]["width"] == 320 and data["image"]["height"] == 160
        assert [d["score"] for d in data["detections"]] == pytest.approx([0.9, 0.6], abs=1e-4)
        assert data["detections"][0]["class_name"] == "ship" and len(data["detections"][0]["xyxy"]) == 4
        assert set(data["timing_ms"]) == {"queue", "inference", "total"}


def test_query_parameters(server):
    assert len(post(server, jpeg(), params={"conf": 0.7}).json()["detections"]) == 1
    assert post(server, jpeg(), params={"classes": "1"}).json()["detections"] == []
    r = post(server, jpeg(), params={"conf": 2})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    r = post(server, jpeg(), params={"confidence": 0.5})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_parameter"


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b"", JPEG, 422, "empty_body"),
        (jpeg()[:200], JPEG, 422, "corrupt_image"),
        (b"GIF89a....", JPEG, 415, "unsupported_image"),
        (jpeg(), {"content-type": "text/plain"}, 415, "unsupported_media_type"),
        (png_declaring(100_000, 100_000), {"content-type": "image/png"}, 413, "image_too_large"),
        (tiff_bomb(), {"content-type": "image/tiff"}, 413, "image_too_large"),
        (b"\x00" * 250_000, JPEG, 413, "body_too_large"),
        (tiff(np.zeros((8, 8, 6), np.uint8), planarconfig="contig"), {"content-type": "image/tiff"}, 415,
         "unsupported_image"),
    ],
    ids=["zero-bytes", "truncated-jpeg", "not-an-image", "wrong-content-type", "png-bomb", "tiff-bomb",
         "body-over-limit", "six-band-tiff"],
)
def test_hostile_inputs(server, body, headers, status, code):
    r = post(server, body, headers)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code and r.json()["error"]["message"]


@pytest.mark.parametrize(
    "body",
    [jpeg(1, 1), jpeg(20_000, 20), jpeg(64, 64, mode="CMYK"),
     tiff(np.full((40, 50), 3000, np.uint16)), tiff(np.full((40, 50, 4), 2000, np.uint16), photometric="rgb",
                                                    extrasamples=[0]),
     tiff(np.zeros((40, 50, 3), np.uint8))],
    ids=["1x1", "20000x20", "cmyk-jpeg", "16bit-1band-tiff", "16bit-4band-tiff", "8bit-rgb-tiff"],
)
def test_odd_but_valid_images(server, body):
    ctype = "image/jpeg" if body.startswith(b"\xff\xd8") else "image/tiff"
    r = post(server, body, {"content-type": ctype})
    assert r.status_code == 200, r.text


def test_declared_content_length_over_limit_is_refused_before_reading(server):
    import socket

    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                     b"Content-Length: 2000000000\r\n\r\n")
        reply = sock.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 413") and "body_too_large" in reply


def test_chunked_body_over_limit(server):
    def chunks():
        for _ in range(40):
            yield b"\x00" * 10_000

    r = httpx.post(server.url + "/v1/detect", content=chunks(), headers=JPEG, timeout=30)
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


def test_multipart_single_and_batch_in_order(server):
    r = httpx.post(server.url + "/v1/detect", files={"image": ("a.jpg", jpeg(), "image/jpeg")})
    assert r.status_code == 200 and len(r.json()["detections"]) == 2
    files = [("tiles", (f"t{v}.jpg", jpeg(value=v), "image/jpeg")) for v in (0, 255, 128)]
    r = httpx.post(server.url + "/v1/detect/batch", files=files, params={"conf": 0.7})
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["name"] for x in results] == ["t0.jpg", "t255.jpg", "t128.jpg"]
    for value, result in zip((0, 255, 128), results, strict=True):
        x1, _, x2, _ = result["detections"][0]["xyxy"]
        assert (x1 + x2) / 2 == pytest.approx(20 + 20 * value / 255, abs=0.5)  # each tile its own detections
    files.append(("tiles", ("t9.jpg", jpeg(), "image/jpeg")))
    r = httpx.post(server.url + "/v1/detect/batch", files=files)
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_many_tiles"
    files = [("tiles", ("ok.jpg", jpeg(), "image/jpeg")), ("tiles", ("bad.jpg", b"\xff\xd8junk", "image/jpeg"))]
    results = httpx.post(server.url + "/v1/detect/batch", files=files).json()["results"]
    assert "detections" in results[0] and results[1]["error"]["code"] == "corrupt_image"


def test_georeferenced_json_and_geojson(server):
    params = {"transform": "3,0,341200,0,-3,4733800", "crs": "EPSG:32653"}
    det = post(server, jpeg(), params=params).json()["detections"][0]
    assert 133.0 < det["lon"] < 133.1 and 42.7 < det["lat"] < 42.8
    assert det["length_m"] == pytest.approx(16 * 3, rel=0.01) and det["width_m"] == pytest.approx(8 * 3, rel=0.01)
    r = post(server, jpeg(), {**JPEG, "accept": "application/geo+json"}, params={**params, "geometry": "box"})
    assert r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and fc["features"][0]["geometry"]["type"] == "Polygon"
    ring = np.asarray(fc["features"][0]["geometry"]["coordinates"][0])
    assert len(ring) == 5 and (ring[0] == ring[-1]).all() and np.array_equal(np.round(ring, 7), ring)
    x, y = ring[:-1, 0], ring[:-1, 1]
    assert np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y) > 0  # RFC 7946: counter-clockwise exterior
    assert "crs" not in fc
    r = post(server, jpeg(), {**JPEG, "accept": "application/geo+json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "not_georeferenced"
    r = post(server, jpeg(), params={"transform": "3,0,341200,0,-3,4733800"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_georeference"


def test_geotiff_tags_georeference(server, tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from affine import Affine

    path = tmp_path / "tile.tif"
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=3, dtype="uint8", crs="EPSG:32653",
                       transform=Affine(3, 0, 341200, 0, -3, 4733800)) as dst:
        dst.write(np.zeros((3, 64, 64), np.uint8))
    r = post(server, path.read_bytes(), {"content-type": "image/tiff"})
    assert r.status_code == 200 and r.json()["image"]["georeferenced"] is True
    assert 133.0 < r.json()["detections"][0]["lon"] < 133.1


def test_models_health_metrics(server):
    assert httpx.get(server.url + "/healthz").json() == {"status": "alive"}
    assert httpx.get(server.url + "/readyz").status_code == 200
    model = httpx.get(server.url + "/v1/models").json()["models"][0]
    assert model["task"] == "detect" and model["providers"] == ["CPUExecutionProvider"]
    before = httpx.get(server.url + "/metrics").text
    post(server, jpeg())
    post(server, b"junk")
    after = httpx.get(server.url + "/metrics").text

    def value(text, line_start):
        return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(line_start))

    assert value(after, 'shipdet_requests_total{route="/v1/detect",status="200"}') == \
        value(before, 'shipdet_requests_total{route="/v1/detect",status="200"}') + 1
    assert value(after, 'shipdet_requests_total{route="/v1/detect",status="415"}') >= 1
    assert value(after, "shipdet_batch_size_count") > value(before, "shipdet_batch_size_count")
    assert "shipdet_queue_depth" in after and "shipdet_inference_seconds_bucket" in after


def test_api_keys(fake_model, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("s3cret\nother\n")
    with live_server(fake_model, api_keys_file=keys) as s:
        assert httpx.post(s.url + "/v1/detect", content=jpeg(), headers=JPEG).status_code == 401
        assert post(s, jpeg(), {**JPEG, "x-api-key": "wrong"}).status_code == 401
        assert post(s, jpeg(), {**JPEG, "x-api-key": "s3cret"}).status_code == 200
        assert post(s, jpeg(), {**JPEG, "authorization": "Bearer other"}).status_code == 200
        assert httpx.get(s.url + "/v1/models").status_code == 401
        assert httpx.get(s.url + "/healthz").status_code == 200 and httpx.get(s.url + "/readyz").status_code == 200


def test_public_address_without_key_is_refused():
    with pytest.raises(ConfigError, match="without an API key"):
        ServeSettings(host="0.0.0.0")
    assert ServeSettings(host="0.0.0.0", allow_public_without_key=True).host == "0.0.0.0"
    assert ServeSettings(host="0.0.0.0", api_keys=["k"]).keys() == ["k"]


def test_queue_full_and_deadline(fake_model):
    # The deadline leaves the admitted request five times its inference: a loaded CI machine once took
    # longer than 0.6 s for a 0.4 s inference, and no request of the burst was answered 200.
    with live_server(fake_model, queue_size=1, max_batch=1, max_delay_ms=0, request_timeout_s=2.0) as s:
        engine = s.app.state.service.engine
        original = engine.infer

        def slow(batch):
            time.sleep(0.4)
            return original(batch)

        engine.infer = slow

        async def burst():
            async with httpx.AsyncClient(timeout=30) as client:
                return await asyncio.gather(*(client.post(s.url + "/v1/detect", content=jpeg(), headers=JPEG)
                                              for _ in range(6)))

        codes = [r.status_code for r in asyncio.run(burst())]
        assert 200 in codes and 503 in codes and set(codes) <= {200, 503, 504}
        full = next(r for r in asyncio.run(burst()) if r.status_code == 503)
        assert full.headers["retry-after"] == "1" and full.json()["error"]["code"] == "queue_full"
        engine.infer = lambda batch: (time.sleep(2.5), original(batch))[1]
        r = httpx.post(s.url + "/v1/detect", content=jpeg(), headers=JPEG, timeout=30)
        assert r.status_code == 504 and r.json()["error"]["code"] == "deadline_exceeded"
        engine.infer = original
        assert httpx.post(s.url + "/v1/detect", content=jpeg(), headers=JPEG, timeout=30).status_code == 200


def test_model_that_fails_to_load_leaves_service_alive_not_ready(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"junk")
    from shipdet.serve.app import create_app
    from tests.serve.conftest import LiveServer

    server = LiveServer(create_app(ServeSettings(model=bad)))
    server.thread.start()
    while not server.server.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{server.server.servers[0].sockets[0].getsockname()[1]}"
    try:
        time.sleep(0.5)
        assert httpx.get(url + "/healthz").status_code == 200
        ready = httpx.get(url + "/readyz")
        assert ready.status_code == 503 and "failed to load" in ready.json()["error"]["message"]
        r = httpx.post(url + "/v1/detect", content=jpeg(), headers=JPEG)
        assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready"
    finally:
        server.__exit__()


_ = io  # image helpers build bytes in memory


def test_with_keys_operations_are_protected_and_guessing_is_slowed(fake_model, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("s3cret\n")
    with live_server(fake_model, api_keys_file=keys, max_failed_keys_per_minute=5) as s:
        assert httpx.get(s.url + "/metrics").status_code == 401
        assert httpx.get(s.url + "/openapi.json").status_code == 401
        assert httpx.get(s.url + "/docs").status_code == 404  # the interactive docs are not served
        good = {"x-api-key": "s3cret"}
        assert httpx.get(s.url + "/metrics", headers=good).status_code == 200
        assert httpx.get(s.url + "/openapi.json", headers=good).json()["info"]["title"] == "shipdet"
        card = httpx.get(s.url + "/v1/models", headers=good).json()["models"][0]["card"]
        assert "training" not in card and "command" not in json.dumps(card)  # no local paths or commands
        for _ in range(3):  # 2 wrong ones above, 3 more: the limit of 5 is reached
            assert httpx.get(s.url + "/v1/models", headers={"x-api-key": "guess"}).status_code == 401
        refused = httpx.get(s.url + "/v1/models", headers=good)  # even the right key waits out the minute
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["code"] == "too_many_failed_keys"
    with live_server(fake_model, api_keys_file=keys, protect_operations=False) as s:
        assert httpx.get(s.url + "/metrics").status_code == 200  # opted out: scraped without a key
