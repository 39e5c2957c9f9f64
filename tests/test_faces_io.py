"""Image decoding: formats, channel/bit-depth normalisation and clear errors for bad files."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fiqa_bench.errors import FiqaBenchError, ImageError
from fiqa_bench.faces.io import load_image

LFW_IMAGE = "data/lfw/lfw/Aaron_Eckhart/Aaron_Eckhart_0001.jpg"


def _read_pgm(path):
    """Independent binary-PGM (P5, 8-bit) reader: header fields, then raw bytes."""
    data = path.read_bytes()
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end : end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    assert fields[0] == b"P5" and int(fields[3]) == 255
    w, h = int(fields[1]), int(fields[2])
    return np.frombuffer(data[pos + 1 : pos + 1 + w * h], np.uint8).reshape(h, w)


@pytest.mark.shared
def test_jpeg_loads_as_bgr_uint8(shared):
    path = shared / LFW_IMAGE
    img = load_image(path)
    assert img.dtype == np.uint8 and img.shape == (150, 150, 3)
    np.testing.assert_array_equal(img, cv2.imread(str(path), cv2.IMREAD_COLOR))


@pytest.mark.shared
def test_grey_pgm_loads_as_three_equal_channels(shared):
    path = shared / "data/orl/s1/1.pgm"
    img = load_image(path)
    assert img.dtype == np.uint8 and img.shape == (112, 92, 3)
    grey = _read_pgm(path)
    for c in range(3):
        np.testing.assert_array_equal(img[:, :, c], grey)


@pytest.mark.shared
def test_non_ascii_path(shared, tmp_path):
    src = shared / LFW_IMAGE
    dst = tmp_path / "Zoë_Ünïcödé_日本語.jpg"
    dst.write_bytes(src.read_bytes())
    np.testing.assert_array_equal(load_image(dst), load_image(src))


def test_sixteen_bit_png_becomes_eight_bit(tmp_path):
    values = (np.arange(256, dtype=np.uint16) * 257).reshape(16, 16)  # 0, 257, ..., 65535
    path = tmp_path / "deep.png"
    ok, buf = cv2.imencode(".png", values)
    assert ok
    path.write_bytes(buf.tobytes())
    img = load_image(path)
    assert img.dtype == np.uint8 and img.shape == (16, 16, 3)
    expected = np.arange(256, dtype=np.uint8).reshape(16, 16)  # 257 * k >> 8 == k
    for c in range(3):
        np.testing.assert_array_equal(img[:, :, c], expected)


def test_alpha_channel_dropped(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = 10, 20, 30, 77  # B, G, R, alpha
    path = tmp_path / "alpha.png"
    path.write_bytes(cv2.imencode(".png", rgba)[1].tobytes())
    img = load_image(path)
    assert img.shape == (8, 8, 3)
    assert (img.reshape(-1, 3) == [10, 20, 30]).all()


def _assert_image_error(path, *words):
    with pytest.raises(ImageError) as info:
        load_image(path)
    err = info.value
    assert isinstance(err, FiqaBenchError)
    assert err.path == str(path)
    assert str(path) in str(err)
    for w in words:
        assert w in err.reason.lower(), err.reason


def test_missing_file(tmp_path):
    _assert_image_error(tmp_path / "nope.jpg", "not found")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    _assert_image_error(path, "empty")


def test_directory(tmp_path):
    _assert_image_error(tmp_path, "directory")


@pytest.mark.shared
@pytest.mark.parametrize("keep", [0.5, 0.9, -2])
def test_truncated_jpeg(shared, tmp_path, keep):
    data = (shared / LFW_IMAGE).read_bytes()
    n = len(data) + keep if keep < 0 else int(len(data) * keep)  # -2: only the end-of-image marker missing
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[:n])
    _assert_image_error(path, "truncated")


def test_truncated_png(tmp_path):
    img = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    data = cv2.imencode(".png", img)[1].tobytes()
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    _assert_image_error(path, "cannot decode")


def test_garbage_bytes(tmp_path):
    path = tmp_path / "noise.jpg"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    _assert_image_error(path, "cannot decode")
