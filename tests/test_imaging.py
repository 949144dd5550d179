import numpy as np
import pytest

from shipdet.imaging import Stretch, band_percentiles, to_rgb8


def test_to_rgb8_stretches_each_band_between_its_percentiles():
    rng = np.random.default_rng(1)
    arr = np.stack([rng.integers(100, 1100, (40, 50)), rng.integers(0, 5000, (40, 50)),
                    rng.integers(2000, 3000, (40, 50))], axis=-1).astype(np.uint16)
    out = to_rgb8(arr)
    assert out.shape == (40, 50, 3) and out.dtype == np.uint8
    for b in range(3):
        lo, hi = np.percentile(arr[..., b], (2, 98))
        assert (out[..., b][arr[..., b] <= lo] == 0).all() and (out[..., b][arr[..., b] >= hi] == 255).all()
    assert np.array_equal(to_rgb8(arr[..., :1]), np.repeat(to_rgb8(arr[..., :1])[..., :1], 3, axis=2))


@pytest.mark.parametrize(("dtype", "bands"), [(np.uint16, 3), (np.uint16, 4), (np.int16, 3), (np.uint16, 1),
                                              (np.uint8, 3), (np.float32, 3)])
def test_stretch_table_gives_the_values_of_to_rgb8(dtype, bands):
    rng = np.random.default_rng(0)
    low, high = (0, 255) if dtype == np.uint8 else (-3000, 12000) if dtype == np.int16 else (0, 12000)
    arr = rng.integers(low, high, (64, 48, bands)).astype(dtype)
    limits = band_percentiles(arr)
    stretch = Stretch(limits)
    assert np.array_equal(stretch(arr), to_rgb8(arr, limits))
    assert np.array_equal(stretch(arr[5:20, 3:9]), to_rgb8(arr[5:20, 3:9], limits))  # a window, same table
