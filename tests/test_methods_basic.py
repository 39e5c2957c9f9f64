"""The first quality methods: random, blur (Laplacian variance), jpeg (Wang-Sheikh-Bovik 2002); random's own tests
are in tests/test_method_random.py.

Reference values come from computations written out here independently of the modules (explicit loops, scipy
instead of OpenCV), and the degradation tests use real faces from the shared data (LFW and CelebA): a quality
measure must rank re-compressed or blurred versions of the same real face in the right order.
"""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from scipy import ndimage

from fiqa_bench import registry
from fiqa_bench.api.cards import InputSpec
from fiqa_bench.faces.align import align_face
from fiqa_bench.methods import jpeg as jpeg_module
from fiqa_bench.methods.blur import BlurQuality
from fiqa_bench.methods.jpeg import JpegQuality, face_region, wang_features, wang_score
from fiqa_bench.methods.random_select import RandomQuality
from fiqa_bench.testing import check_method, synthetic_faces, synthetic_inputs

N_REAL = 50  # faces per dataset for the degradation tests
MIN_MONOTONIC = 0.9  # required share of faces whose scores fall at every degradation step


# ------------------------------------------------------------------------------------------ real faces
def _detect(detector, image: np.ndarray, pad: float):
    """YuNet on a black-padded copy (LFW's tight crops need context); returns (box xywh, landmarks (5, 2))."""
    h, w = image.shape[:2]
    p = int(round(pad * max(h, w)))
    padded = cv2.copyMakeBorder(image, p, p, p, p, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    detector.setInputSize((padded.shape[1], padded.shape[0]))
    _, found = detector.detect(padded)
    if found is None or not len(found):
        return None
    best = found[np.argmax(found[:, 14])]
    return best[:4] - np.float32([p, p, 0, 0]), best[4:14].reshape(5, 2) - np.float32(p)


def _spread(paths: list, n: int) -> list:
    paths = sorted(paths)
    return paths[:: max(1, len(paths) // n)][:n]


@pytest.fixture(scope="module")
def real_faces(shared) -> dict[str, list[SimpleNamespace]]:
    """N_REAL LFW and N_REAL CelebA faces spread over each dataset: decoded BGR image, box and landmarks."""
    model = shared / "models" / "yunet" / "face_detection_yunet_2026may.onnx"
    detector = cv2.FaceDetectorYN.create(str(model), "", (320, 320), 0.6, 0.3, 50)
    sets = {
        "lfw": (_spread(list((shared / "data" / "lfw" / "lfw").glob("*/*.jpg")), N_REAL), 0.25),
        "celeba": (_spread(list((shared / "data" / "celeba-wild" / "images").glob("*/*.jpg")), N_REAL), 0.0),
    }
    out = {}
    for name, (paths, pad) in sets.items():
        faces = []
        for path in paths:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            hit = _detect(detector, image, pad)
            if hit is not None:
                faces.append(SimpleNamespace(image=image, box=hit[0], landmarks=hit[1], path=str(path)))
        assert len(faces) >= 0.9 * N_REAL, f"YuNet found faces in only {len(faces)} of {N_REAL} {name} images"
        out[name] = faces
    return out


def _aligned_rgb(image_bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(align_face(image_bgr, landmarks, 112)[..., ::-1])


def _reencode(image: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def _monotonic_share(scores: np.ndarray) -> float:
    """Share of rows (faces) whose scores strictly fall from each column (degradation level) to the next."""
    return float((np.diff(scores, axis=1) < 0).all(axis=1).mean())


# ------------------------------------------------------------------------------------------ registry
@pytest.mark.parametrize(("name", "cls"), [("random", RandomQuality), ("blur", BlurQuality), ("jpeg", JpegQuality)])
def test_registered_under_their_names(name, cls):
    assert registry.load_class("method", name) is cls
    assert registry.create("method", name).card.name == name


# ------------------------------------------------------------------------------------------ blur
def test_blur_matches_an_independent_laplacian():
    images = synthetic_inputs(BlurQuality.card.input, n=6)
    kernel = np.array([[2, 0, 2], [0, -8, 0], [2, 0, 2]], dtype=np.float64)  # OpenCV's ksize=3 aperture
    expected = []
    for image in images:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
        lap = ndimage.correlate(grey, kernel, mode="mirror")
        region = lap[24:104, 24:88]
        expected.append(((region - region.mean()) ** 2).mean())
    np.testing.assert_allclose(BlurQuality().score(images), expected, rtol=1e-6)


def test_blur_ignores_the_black_border_and_flat_faces_score_zero():
    flat = np.full((1, 112, 112, 3), 90, np.uint8)
    assert BlurQuality().score(flat)[0] == 0.0
    bordered = flat.copy()
    bordered[:, :, :20] = 0  # the black band alignment adds at an image edge
    bordered[:, :20, :] = 0
    assert BlurQuality().score(bordered)[0] == 0.0


def test_blur_rejects_the_wrong_crop_size():
    with pytest.raises(ValueError, match="112"):
        BlurQuality().score(np.zeros((2, 96, 96, 3), np.uint8))


@pytest.mark.shared
@pytest.mark.parametrize("dataset", ["lfw", "celeba"])
def test_blur_falls_with_gaussian_blur_on_real_faces(real_faces, dataset):
    sigmas = (0, 1, 2, 3)
    scores = []
    for face in real_faces[dataset]:
        crops = [
            _aligned_rgb(cv2.GaussianBlur(face.image, (0, 0), s) if s else face.image, face.landmarks) for s in sigmas
        ]
        scores.append(BlurQuality().score(np.stack(crops)))
    share = _monotonic_share(np.array(scores))
    assert share >= MIN_MONOTONIC, f"blur fell monotonically over sigma {sigmas} for only {share:.0%} of faces"


# ------------------------------------------------------------------------------------------ jpeg
def _reference_wang(luma: np.ndarray) -> float:
    """Wang, Sheikh & Bovik (2002) written out with loops, 1-based as in the paper (boundaries at d(:, 8k))."""
    x = luma.astype(np.float64)
    m_rows, n_cols = x.shape

    def one_direction(x, m_rows, n_cols):
        d = [[x[i][j + 1] - x[i][j] for j in range(n_cols - 1)] for i in range(m_rows)]  # d[i][j-1] = d_h(i, j)
        boundary = [abs(d[i][8 * k - 1]) for i in range(m_rows) for k in range(1, n_cols // 8)]
        b = sum(boundary) / len(boundary)
        total = sum(abs(v) for row in d for v in row)
        a = (8.0 * total / (m_rows * (n_cols - 1)) - b) / 7.0
        crossings = sum(1 for row in d for j in range(n_cols - 2) if row[j] * row[j + 1] < 0)
        z = crossings / (m_rows * (n_cols - 2))
        return b, a, z

    bh, ah, zh = one_direction(x, m_rows, n_cols)
    bv, av, zv = one_direction(x.T, n_cols, m_rows)
    b, a, z = (bh + bv) / 2, (ah + av) / 2, (zh + zv) / 2
    return -245.8909 + 261.9373 * b ** (-239.8886 / 1e4) * a ** (160.1664 / 1e4) * z ** (64.2859 / 1e4)


@pytest.mark.parametrize("shape", [(40, 48), (33, 57), (16, 16)])
def test_wang_score_matches_the_paper_written_out(shape):
    rng = np.random.default_rng(sum(shape))
    smooth = ndimage.gaussian_filter(rng.normal(128, 40, size=shape), 1.0)
    luma = np.clip(smooth + rng.normal(0, 3, size=shape), 0, 255)
    assert wang_score(luma) == pytest.approx(_reference_wang(luma), rel=1e-10)


def test_wang_blockiness_sees_the_grid_only_where_it_is():
    rng = np.random.default_rng(3)
    levels = rng.uniform(40, 200, size=(8, 8))
    blocky = np.kron(levels, np.ones((8, 8)))  # constant 8x8 blocks: all differences sit on block boundaries
    b, a, z = wang_features(blocky)
    assert b > 10 and a <= 0 and z == 0
    b_shifted, _, _ = wang_features(blocky[4:, 4:])  # grid no longer at (0, 0): boundaries between measured ones
    assert b_shifted == 0
    assert np.isfinite(wang_score(blocky)) and np.isfinite(wang_score(np.full((32, 32), 7.0)))


def test_jpeg_region_follows_the_landmarks_on_the_block_grid():
    faces = synthetic_faces(6)
    for face in faces:
        x0, y0, x1, y1 = face_region(face)
        h, w = face.image.shape[:2]
        assert x0 % 8 == 0 and y0 % 8 == 0
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        assert x1 - x0 >= 16 and y1 - y0 >= 16
        inside = [(x0 <= x < x1) and (y0 <= y < y1) for x, y in face.landmarks]
        assert sum(inside) >= 4 or face.landmarks[:, 0].min() < 0  # all five, unless the face is off the edge
    face = faces[0]
    box = np.float32([30, 20, 50, 60])
    no_landmarks = SimpleNamespace(image=face.image, landmarks=np.full((5, 2), np.nan), box=box)
    assert face_region(no_landmarks) == (24, 16, 80, 80)
    nothing = SimpleNamespace(image=face.image, landmarks=None, box=None)
    assert face_region(nothing) == (0, 0, face.image.shape[1], face.image.shape[0])


def test_jpeg_scores_the_region_as_documented():
    faces = synthetic_faces(4)
    expected = []
    for face in faces:
        x0, y0, x1, y1 = face_region(face)
        crop = face.image[y0:y1, x0:x1].astype(np.float64)
        luma = 0.299 * crop[..., 2] + 0.587 * crop[..., 1] + 0.114 * crop[..., 0]
        expected.append(_reference_wang(luma))
    np.testing.assert_allclose(JpegQuality().score(faces), expected, rtol=1e-5)


def test_jpeg_handles_tiny_images():
    tiny = SimpleNamespace(image=np.full((10, 12, 3), 50, np.uint8), landmarks=None, box=None)
    out = JpegQuality().score([tiny])
    assert out.shape == (1,) and np.isfinite(out).all()


@pytest.mark.shared
@pytest.mark.parametrize("dataset", ["lfw", "celeba"])
def test_jpeg_falls_with_compression_on_real_faces(real_faces, dataset):
    qualities = (90, 50, 20, 10)
    scores = []
    for face in real_faces[dataset]:
        versions = [
            SimpleNamespace(image=_reencode(face.image, q), landmarks=face.landmarks, box=face.box) for q in qualities
        ]
        scores.append(JpegQuality().score(versions))
    scores = np.array(scores)
    share = _monotonic_share(scores)
    assert share >= MIN_MONOTONIC, f"jpeg fell monotonically over quality {qualities} for only {share:.0%} of faces"
    assert np.median(scores[:, 0] - scores[:, -1]) > 3.0  # a clear margin, not a tie broken by noise


@pytest.mark.shared
def test_jpeg_needs_the_original_grid(real_faces):
    """Why the method takes ``face`` input: on aligned crops the same measure barely sees the compression."""
    drops_grid, drops_aligned = [], []
    for face in real_faces["lfw"][:20]:
        q90, q10 = _reencode(face.image, 90), _reencode(face.image, 10)
        versions = [SimpleNamespace(image=im, landmarks=face.landmarks, box=face.box) for im in (q90, q10)]
        grid = JpegQuality().score(versions)
        crops = [align_face(im, face.landmarks, 112).astype(np.float64) for im in (q90, q10)]
        aligned = [
            wang_score(0.299 * c[24:104, 24:88, 2] + 0.587 * c[24:104, 24:88, 1] + 0.114 * c[24:104, 24:88, 0])
            for c in crops
        ]
        drops_grid.append(grid[0] - grid[1])
        drops_aligned.append(aligned[0] - aligned[1])
    assert np.median(drops_grid) > 3 * np.median(drops_aligned)


# ------------------------------------------------------------------------------------------ on real inputs
@pytest.mark.shared
def test_builtins_pass_the_kit_on_real_faces(real_faces):
    faces = real_faces["lfw"][:6] + real_faces["celeba"][:6]
    crops = np.stack([_aligned_rgb(f.image, f.landmarks) for f in faces])
    check_method(BlurQuality(), crops)
    check_method(JpegQuality(), faces)
    check_method(RandomQuality(), faces)  # input "face": keyed on each face's path (tests/test_method_random.py)


def test_cards_describe_inputs_the_runner_can_prepare():
    assert RandomQuality.card.input == InputSpec("face")  # keyed on the path since issue 22, no crop warped
    assert BlurQuality.card.input == InputSpec("aligned", 112, "RGB")
    assert JpegQuality.card.input.kind == "face"
    assert jpeg_module.CROP_REGION == (24.0, 24.0, 88.0, 104.0)  # the blur method's region, in crop pixels
