"""The fast path of ``onnx_contract.preprocess`` gives the same bits as the contract's formula written out."""

import numpy as np
import pytest

from fiqa_bench.models.onnx_contract import preprocess


def _formula(images: np.ndarray) -> np.ndarray:
    """``(x - 127.5) / 128`` per pixel, RGB NCHW, in float64 then rounded once to float32 (independent path)."""
    x = images.astype(np.float64)
    return ((x - 127.5) / 128.0).astype(np.float32).transpose(0, 3, 1, 2)


@pytest.mark.parametrize("shape", [(1, 64, 64, 3), (7, 32, 32, 3), (3, 112, 112, 3)])
def test_uint8_fast_path_is_bit_identical_to_the_formula(shape):
    rng = np.random.default_rng(sum(shape))
    images = rng.integers(0, 256, shape, dtype=np.uint8)
    images[0, 0, 0] = (0, 255, 128)  # both ends and the value next to the mean
    out = preprocess(images)
    assert out.dtype == np.float32 and out.shape == (shape[0], 3, shape[1], shape[2])
    assert out.flags["C_CONTIGUOUS"]
    assert out.tobytes() == np.ascontiguousarray(_formula(images)).tobytes()
    assert out[0, :, 0, 0].tolist() == [-127.5 / 128, 127.5 / 128, 0.5 / 128]


def test_channel_order_is_kept():
    images = np.zeros((1, 2, 2, 3), np.uint8)
    images[..., 0] = 255  # the first channel (R in RGB input) stays channel 0
    out = preprocess(images)
    assert out[0, 0].tolist() == [[127.5 / 128] * 2] * 2 and out[0, 1].tolist() == [[-127.5 / 128] * 2] * 2


def test_other_dtypes_use_the_formula():
    images = np.arange(2 * 4 * 4 * 3, dtype=np.float64).reshape(2, 4, 4, 3)
    assert preprocess(images).tobytes() == np.ascontiguousarray(_formula(images)).tobytes()
