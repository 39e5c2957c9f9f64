"""Face records and adapter inputs: colour orders, the centre fallback, and what happens when no face is found."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fiqa_bench.api.cards import InputSpec
from fiqa_bench.errors import NoFaceError
from fiqa_bench.faces.align import ARCFACE_TEMPLATE, align_face
from fiqa_bench.faces.pipeline import Face, fallback_landmarks, load_face, to_input


def _colour_image(h=120, w=100):
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (7, 7), 2)
    img[..., 0] //= 3  # make the channels clearly different
    return img


def test_fallback_landmarks_is_the_template_on_the_centred_square():
    np.testing.assert_allclose(fallback_landmarks((112, 112, 3)), ARCFACE_TEMPLATE, atol=1e-5)
    lm = fallback_landmarks((300, 200))  # portrait: 200x200 square, 50 px down
    np.testing.assert_allclose(lm, np.float64(ARCFACE_TEMPLATE) * 200 / 112 + [0, 50], atol=1e-4)
    assert lm.dtype == np.float32


def test_aligning_with_the_fallback_is_a_resize_of_the_centre_square():
    img = _colour_image(160, 224)  # landscape: centred 160x160 square starts at x = 32
    crop = align_face(img, fallback_landmarks(img.shape), 112)
    # Independent reference: sample the square at output pixel centres x_in = 32 + x_out * 160 / 112.
    ys, xs = np.mgrid[0:112, 0:112].astype(np.float32) * (160 / 112)
    ref = cv2.remap(img, xs + 32, ys, cv2.INTER_LINEAR)
    assert np.abs(crop.astype(int) - ref.astype(int)).max() <= 1


@pytest.mark.parametrize("colour", ["RGB", "BGR", "GRAY"])
def test_to_input_colour_orders(colour):
    img = _colour_image()
    face = Face(img, fallback_landmarks(img.shape), path="x.png")
    out = to_input([face, face], InputSpec("aligned", 64, colour))
    assert out.shape == (2, 64, 64, 3) and out.dtype == np.uint8
    bgr = align_face(img, face.landmarks, 64)
    expected = {
        "BGR": bgr,
        "RGB": bgr[..., ::-1],
        "GRAY": np.repeat(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)[..., None], 3, axis=-1),
    }[colour]
    np.testing.assert_array_equal(out[0], expected)
    np.testing.assert_array_equal(out[1], expected)


def test_to_input_face_kind_passes_faces_through():
    img = _colour_image()
    faces = [Face(img, fallback_landmarks(img.shape), box=[1, 2, 3, 4], path="a.png", detected=True)]
    out = to_input(faces, InputSpec(kind="face"))
    assert out == faces and out[0].box.dtype == np.float32
    assert to_input([], InputSpec("aligned", 112, "GRAY")).shape == (0, 112, 112, 3)


@pytest.mark.shared
def test_load_face_detects_and_honours_given_landmarks(shared):
    from fiqa_bench.faces.detect import LFW_PAD, YuNetDetector

    det = YuNetDetector(shared / "models/yunet/face_detection_yunet_2026may.onnx")
    path = shared / "data/lfw/lfw/Aaron_Eckhart/Aaron_Eckhart_0001.jpg"
    face = load_face(path, det, pad=LFW_PAD)
    assert face.detected and not face.fallback and face.box is not None and face.path == str(path)
    given = np.arange(10, dtype=np.float32).reshape(5, 2) + 50
    face2 = load_face(path, det, landmarks=given)
    assert not face2.detected and face2.box is None
    np.testing.assert_array_equal(face2.landmarks, given)
    face3 = load_face(path, det, landmarks=np.full((5, 2), np.nan), pad=LFW_PAD)  # NaN: must detect
    assert face3.detected
    np.testing.assert_array_equal(face3.landmarks, face.landmarks)


@pytest.mark.shared
def test_on_no_face_policies(shared, tmp_path):
    from fiqa_bench.faces.detect import YuNetDetector

    det = YuNetDetector(shared / "models/yunet/face_detection_yunet_2026may.onnx")
    path = tmp_path / "wall.png"
    path.write_bytes(cv2.imencode(".png", np.full((90, 90, 3), 200, np.uint8))[1].tobytes())
    with pytest.raises(NoFaceError, match="wall.png"):
        load_face(path, det)
    assert load_face(path, det, on_no_face="skip") is None
    face = load_face(path, det, on_no_face="center")
    assert face.fallback and not face.detected
    np.testing.assert_allclose(face.landmarks, fallback_landmarks((90, 90)))
    with pytest.raises(ValueError):
        load_face(path, det, on_no_face="guess")
