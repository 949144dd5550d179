import io

import numpy as np
import pytest

from shipdet.errors import ModelLoadError
from shipdet.inference.engine import Engine
from shipdet.inference.postprocess import Letterbox, decode_yolo, letterbox_into
from tests.fake_model import detect_model, write_fake_yolo


@pytest.fixture
def engine(tmp_path):
    return Engine(detect_model(tmp_path / "fake.onnx"), providers=["cpu"])


def test_reference_decode_on_fixed_input(engine):
    assert engine.providers == ["CPUExecutionProvider"] and engine.info.task == "detect"
    # A black 320 x 160 image: letterboxed at scale 0.2 into 64 x 64, 16 px of padding above and below.
    image = np.zeros((160, 320, 3), dtype=np.uint8)
    dets = engine.detect([image], conf=0.25, iou=0.45)[0]
    # In 64-px input space: box A (12,16)-(28,24); B (13,16)-(29,24) overlaps A (IoU 0.88) -> removed;
    # C (44,36)-(52,44); D scores 0.05 < conf. Padding is grey (114/255), not black: A's cx moves by the mean.
    mean = float(engine.preprocess([image])[0].mean())
    ax = 20 + 20 * mean
    expected = np.array([[ax - 8, 16, ax + 8, 24], [44, 36, 52, 44]])
    expected = (expected - [0, 16, 0, 16]) / 0.2
    np.testing.assert_allclose(dets.xyxy, expected, atol=1e-3)
    np.testing.assert_allclose(dets.score, [0.9, 0.6], atol=1e-6)
    assert dets.class_id.tolist() == [0, 0] and dets.class_names == {0: "ship"}


def test_letterbox_exact_size_is_a_copy():
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    out = np.empty((3, 64, 64), dtype=np.float32)
    box = letterbox_into(image, out, (64, 64))
    assert box == Letterbox(1.0, 0.0, 0.0, 64, 64)
    np.testing.assert_allclose(out, image.transpose(2, 0, 1) / 255.0, atol=1e-6)


@pytest.mark.parametrize("streams", [1, 3])
def test_batches_keep_images_apart(tmp_path, streams):
    engine = Engine(detect_model(tmp_path / "fake.onnx"), providers=["cpu"], streams=streams)
    assert engine.streams == streams
    images = [np.full((64, 64, 3), v, dtype=np.uint8) for v in (0, 255, 128, 64, 200)]
    engine.max_batch = 2  # three model calls, the next prepared while one runs (or five tiles on three streams)
    results = engine.detect(images, conf=0.5)
    for image, dets in zip(images, results, strict=True):
        cx = (dets.xyxy[0, 0] + dets.xyxy[0, 2]) / 2
        assert cx == pytest.approx(20 + 20 * float(image[0, 0, 0]) / 255.0, abs=1e-3)


def test_oriented_decode(tmp_path):
    base = np.array([[32], [32], [40], [10], [0.9], [0.5]], dtype=np.float32)  # cx cy w h score angle
    eng = Engine(write_fake_yolo(tmp_path / "obb.onnx", base, np.zeros_like(base), task="obb"), providers=["cpu"])
    dets = eng.detect([np.zeros((64, 64, 3), np.uint8)])[0]
    np.testing.assert_allclose(dets.obb, [[32, 32, 40, 10, 0.5]], atol=1e-5)
    raw = np.array([[32, 32], [32, 32], [40, 40], [10, 10], [0.9, 0.8], [0.5, 0.52]], dtype=np.float32)
    box = Letterbox(0.5, 0.0, 0.0, 128, 128)
    dets = decode_yolo(raw, box, "obb", {0: "ship"}, 0.25, 0.45)  # the two overlap: NMS keeps one
    np.testing.assert_allclose(dets.obb, [[64, 64, 80, 20, 0.5]], atol=1e-5)


def test_model_card_sha_mismatch_is_refused(tmp_path):
    model = detect_model(tmp_path / "m.onnx")
    (tmp_path / "m.card.json").write_text('{"file": "m.onnx", "sha256": "0000"}')
    with pytest.raises(ModelLoadError, match="sha256"):
        Engine(model, providers=["cpu"])
    assert len(Engine(model, providers=["cpu"], verify=False).detect([np.zeros((8, 8, 3), np.uint8)])) == 1
    with pytest.raises(ModelLoadError, match="not found"):
        Engine(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="cannot load"):
        Engine(tmp_path / "junk.onnx")


def test_streams_bytes_and_batches_agree(tmp_path):
    """The CPU streams layout, the batched pipeline and encoded input all give the same detections."""
    from PIL import Image

    model = detect_model(tmp_path / "fake.onnx")
    batched, streamed = Engine(model, providers=["cpu"], streams=1), Engine(model, providers=["cpu"], streams=2)
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 255, (48 + 8 * i, 64, 3), dtype=np.uint8) for i in range(4)]
    encoded = []
    for image in images:
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG")
        encoded.append(buf.getvalue())
    expected = batched.detect(images)
    for got in (streamed.detect(images), streamed.detect(encoded), batched.detect(encoded)):
        for a, b in zip(expected, got, strict=True):
            np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1e-4)
            np.testing.assert_allclose(a.score, b.score, atol=1e-6)
    batch, _ = batched.preprocess(images)
    np.testing.assert_allclose(streamed.infer(batch), batched.infer(batch), atol=1e-5)
    streamed.close()
