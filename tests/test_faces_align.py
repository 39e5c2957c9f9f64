"""ArcFace alignment: the similarity fit is exact, and warped landmarks land on the template."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fiqa_bench.faces.align import (
    ARCFACE_TEMPLATE,
    align_face,
    align_faces,
    arcface_template,
    similarity_transform,
)


def _similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array(
        [[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]], dtype=np.float64
    )


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, dtype=np.float64)
    return pts @ m[:, :2].T + m[:, 2]


def test_template_values_and_scaling():
    assert ARCFACE_TEMPLATE.shape == (5, 2) and ARCFACE_TEMPLATE.dtype == np.float32
    np.testing.assert_allclose(ARCFACE_TEMPLATE[0], [38.2946, 51.6963], atol=1e-4)
    np.testing.assert_allclose(ARCFACE_TEMPLATE[4], [70.7299, 92.2041], atol=1e-4)
    np.testing.assert_array_equal(arcface_template(112), ARCFACE_TEMPLATE)
    t64 = arcface_template(64)
    assert t64.dtype == np.float32 and t64.shape == (5, 2)
    np.testing.assert_allclose(t64, np.float64(ARCFACE_TEMPLATE) * 64 / 112, atol=1e-5)
    with pytest.raises(ValueError):
        arcface_template(0)


def test_recovers_known_similarity_exactly():
    rng = np.random.default_rng(12345)
    for _ in range(50):
        truth = _similarity(rng.uniform(-180, 180), rng.uniform(0.2, 5.0), *rng.uniform(-300, 300, 2))
        src = rng.uniform(0, 250, (5, 2))
        m = similarity_transform(src, _apply(truth, src))
        assert m.shape == (2, 3) and m.dtype == np.float64
        np.testing.assert_allclose(m, truth, atol=1e-9, rtol=1e-9)


def test_least_squares_matches_linear_solution():
    """With noise, Umeyama's answer equals the linear least-squares fit of [[a, -b, tx], [b, a, ty]]."""
    rng = np.random.default_rng(7)
    for _ in range(20):
        src = rng.uniform(0, 200, (5, 2))
        dst = _apply(_similarity(rng.uniform(-60, 60), rng.uniform(0.5, 2), 10, -5), src) + rng.normal(0, 3, (5, 2))
        rows, rhs = [], []
        for (x, y), (u, v) in zip(src, dst):
            rows += [[x, -y, 1, 0], [y, x, 0, 1]]
            rhs += [u, v]
        a, b, tx, ty = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0]
        np.testing.assert_allclose(similarity_transform(src, dst), [[a, -b, tx], [b, a, ty]], atol=1e-8)


def test_never_returns_a_reflection():
    src = np.float64(ARCFACE_TEMPLATE)
    mirrored = src * [-1, 1]
    m = similarity_transform(src, mirrored)
    assert np.linalg.det(m[:, :2]) > 0


@pytest.mark.parametrize(
    "src",
    [np.zeros((5, 2)), np.full((5, 2), np.nan), np.zeros((1, 2))],
    ids=["degenerate", "nan", "one-point"],
)
def test_bad_landmarks_raise(src):
    with pytest.raises(ValueError):
        similarity_transform(src, np.zeros_like(src))


def _blob_image(points: np.ndarray, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Black image with a Gaussian spot centred (sub-pixel) on each point; pixel centres at integers."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w), np.float64)
    for x, y in points:
        img += np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    img = np.clip(img * 250, 0, 255).astype(np.uint8)
    return np.repeat(img[..., None], 3, axis=-1)


def _spot_centroids(img: np.ndarray, near: np.ndarray, radius: int) -> np.ndarray:
    grey = img[..., 0].astype(np.float64)
    out = []
    for x, y in near:
        x0, y0 = int(round(x)), int(round(y))
        ys, xs = np.mgrid[y0 - radius : y0 + radius + 1, x0 - radius : x0 + radius + 1]
        wgt = grey[y0 - radius : y0 + radius + 1, x0 - radius : x0 + radius + 1]
        out.append([(wgt * xs).sum() / wgt.sum(), (wgt * ys).sum() / wgt.sum()])
    return np.array(out)


@pytest.mark.parametrize("size", [112, 64, 160])
def test_warped_landmarks_land_on_template(size):
    """Spots drawn at the landmarks are found at the template after align_face (< 0.15 px): checks the
    transform direction and OpenCV's pixel-centre convention, independently of the fit."""
    truth = _similarity(23.0, 2.1, 40.5, 17.25)
    landmarks = _apply(truth, ARCFACE_TEMPLATE)  # an exact similarity image of the template
    img = _blob_image(landmarks, (330, 300), sigma=2.1 * 1.6)
    crop = align_face(img, landmarks, size)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    template = arcface_template(size)
    found = _spot_centroids(crop, template, radius=max(4, size // 14))
    err = np.linalg.norm(found - template, axis=1)
    assert err.max() < 0.15, err


@pytest.mark.shared
def test_real_face_aligns_identically_after_a_known_warp(shared):
    """Warp a real face by a known similarity, move its landmarks with it: the aligned crop is unchanged.

    Landmarks (fixed numbers, YuNet's on this image) are carried by the transform, so the aligned landmarks
    are exactly where they were (< 1e-6 px); pixels differ only by the second bilinear resampling.
    """
    from fiqa_bench.faces.io import load_image

    img = load_image(shared / "data/lfw/lfw/Aaron_Eckhart/Aaron_Eckhart_0001.jpg")
    lm = np.array([[60.3, 60.8], [99.1, 60.7], [82.2, 83.4], [63.2, 103.0], [95.9, 102.7]])
    warp = _similarity(-31.0, 2.4, 0.0, 0.0)
    corners = _apply(warp, [[0, 0], [149, 0], [0, 149], [149, 149]])
    warp[:, 2] = 20.0 - corners.min(axis=0)  # the whole warped image fits on the canvas
    big = cv2.warpAffine(img, warp, (540, 540), flags=cv2.INTER_CUBIC)
    assert _apply(warp, [[0, 0], [149, 0], [0, 149], [149, 149]]).max() < 520
    lm_big = _apply(warp, lm)
    m_small = similarity_transform(lm, arcface_template(112))
    m_big = similarity_transform(lm_big, arcface_template(112))
    np.testing.assert_allclose(_apply(m_big, lm_big), _apply(m_small, lm), atol=1e-6)
    a = align_face(img, lm).astype(np.float64)
    b = align_face(big, lm_big).astype(np.float64)
    inner = (slice(8, -8), slice(8, -8))  # keep away from the image border, which both crops see differently
    assert np.abs(a[inner] - b[inner]).mean() < 1.5  # measured 0.44 grey levels
    assert np.corrcoef(a[inner].ravel(), b[inner].ravel())[0, 1] > 0.998  # measured 0.9999


def test_align_faces_batches_and_handles_grey_and_empty():
    truth = _similarity(5.0, 1.5, 20, 30)
    lm = _apply(truth, ARCFACE_TEMPLATE)
    img = _blob_image(lm, (250, 250), sigma=3)
    grey = img[..., 0].copy()
    out = align_faces([img, grey], [lm, lm], 96)
    assert out.shape == (2, 96, 96, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0], out[1])
    empty = align_faces([], [], 112)
    assert empty.shape == (0, 112, 112, 3)
    with pytest.raises(ValueError):
        align_faces([img], [], 112)
    with pytest.raises(ValueError):
        align_face(img, lm[:4])
