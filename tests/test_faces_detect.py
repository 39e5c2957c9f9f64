"""Face detection on real images: YuNet and SCRFD find the face, agree, and padding maps back correctly."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from fiqa_bench.errors import UnknownNameError
from fiqa_bench.faces.align import ARCFACE_TEMPLATE, align_face
from fiqa_bench.faces.detect import (
    LFW_PAD,
    Detection,
    ScrfdDetector,
    YuNetDetector,
    detect_face,
    make_detector,
    select_face,
)
from fiqa_bench.faces.io import load_image

YUNET_FILE = "models/yunet/face_detection_yunet_2026may.onnx"
SCRFD_FILE = "models/scrfd/scrfd_500m_kps.onnx"


@pytest.fixture(scope="module")
def yunet(shared):
    return YuNetDetector(shared / YUNET_FILE)


@pytest.fixture(scope="module")
def scrfd(shared):
    return ScrfdDetector(shared / SCRFD_FILE, threads=1)


def _sample(shared, dataset: str, n: int, seed: int) -> list:
    pattern = {"lfw": "data/lfw/lfw/*/*.jpg", "celeba": "data/celeba-wild/images/*/*.jpg"}[dataset]
    files = sorted(shared.glob(pattern))
    rng = np.random.default_rng(seed)
    return [files[i] for i in sorted(rng.choice(len(files), n, replace=False))]


def _plausible(det: Detection) -> None:
    """Landmarks in the documented order on an upright face: image-left eye first, mouth below the eyes."""
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = det.landmarks
    assert lx < rx and mlx < mrx
    assert min(mly, mry) > max(ly, ry)
    assert min(lx, mlx) - 5 < nx < max(rx, mrx) + 5
    x, y, w, h = det.box
    assert w > 0 and h > 0
    assert x - 5 < nx < x + w + 5 and y - 5 < ny < y + h + 5


# ---- pure selection logic (no model) ---------------------------------------------------------------


def _det(cx, cy, size, score):
    lm = np.float32(ARCFACE_TEMPLATE) / 112 * size + [cx - size / 2, cy - size / 2]
    return Detection([cx - size / 2, cy - size / 2, size, size], lm, score)


def test_select_face_prefers_the_central_large_face():
    subject = _det(75, 75, 80, 0.70)
    bystander_corner = _det(140, 140, 60, 0.99)  # sharper but at the corner and smaller
    tiny_centre = _det(80, 70, 12, 0.95)
    assert select_face([bystander_corner, tiny_centre, subject], (150, 150, 3)) is subject
    assert select_face([], (150, 150, 3)) is None
    alone = _det(10, 10, 20, 0.6)
    assert select_face([alone], (150, 150)) is alone


def test_detection_is_immutable_float32():
    d = Detection([1, 2, 3, 4], np.arange(10), 0.5)
    assert d.box.dtype == np.float32 and d.landmarks.shape == (5, 2) and isinstance(d.score, float)
    with pytest.raises(ValueError):
        d.box[0] = 9
    with pytest.raises(AttributeError):
        d.score = 1.0  # type: ignore[misc]
    s = d.shifted(10, -1)
    np.testing.assert_allclose(s.box, [11, 1, 3, 4])
    np.testing.assert_allclose(s.landmarks, np.arange(10).reshape(5, 2) + [10, -1])


def test_make_detector_names():
    assert isinstance(make_detector("yunet"), YuNetDetector)
    assert isinstance(make_detector("SCRFD", score_threshold=0.3), ScrfdDetector)
    with pytest.raises(UnknownNameError, match="yunet"):
        make_detector("mtcnn")


def test_missing_model_path_is_a_clear_error(tmp_path):
    from fiqa_bench.errors import FiqaBenchError

    with pytest.raises(FiqaBenchError, match="nope.onnx"):
        YuNetDetector(tmp_path / "nope.onnx").detect(np.zeros((64, 64, 3), np.uint8))


# ---- real detectors on real faces --------------------------------------------------------------------


@pytest.mark.shared
def test_identity_names_weights_and_thresholds(shared, yunet, scrfd):
    import hashlib

    y_sha = hashlib.sha256((shared / YUNET_FILE).read_bytes()).hexdigest()
    s_sha = hashlib.sha256((shared / SCRFD_FILE).read_bytes()).hexdigest()
    assert yunet.identity().startswith("yunet-") and y_sha[:16] in yunet.identity()
    assert scrfd.identity().startswith("scrfd-") and s_sha[:16] in scrfd.identity()
    assert YuNetDetector(shared / YUNET_FILE, score_threshold=0.7).identity() != yunet.identity()
    assert ScrfdDetector(shared / SCRFD_FILE, nms_threshold=0.5).identity() != scrfd.identity()


@pytest.mark.shared
def test_default_weights_resolve_from_shared(shared, isolated_cache, monkeypatch):
    pytest.importorskip("fiqa_bench.data.download")
    monkeypatch.setenv("FIQA_SHARED", str(shared))
    img = load_image(shared / "data/lfw/lfw/Aaron_Eckhart/Aaron_Eckhart_0001.jpg")
    assert detect_face(YuNetDetector(), img, LFW_PAD) is not None
    assert detect_face(ScrfdDetector(threads=1), img, LFW_PAD) is not None


@pytest.mark.shared
@pytest.mark.parametrize("dataset,pad", [("lfw", LFW_PAD), ("celeba", 0.0)])
def test_both_detectors_find_the_face_and_agree_on_the_eyes(shared, yunet, scrfd, dataset, pad):
    """Independent models, same faces: eye positions agree to a few px (measured on this sample:
    median 4.5 (LFW) and 5.2 px (CelebA), 75th percentile 5.4 and 7.0 px; 10-11% of the eye distance)."""
    dists, iods = [], []
    for path in _sample(shared, dataset, 16, seed=3):
        img = load_image(path)
        a, b = detect_face(yunet, img, pad), detect_face(scrfd, img, pad)
        assert a is not None and b is not None, path
        _plausible(a)
        _plausible(b)
        assert a.score >= 0.6 and b.score >= 0.5
        dists.append(np.linalg.norm(a.landmarks[:2] - b.landmarks[:2], axis=1).max())
        iods.append(np.linalg.norm(a.landmarks[1] - a.landmarks[0]))
    dists = np.array(dists)
    assert np.median(dists) < 7.0, dists
    assert np.percentile(dists, 75) < 10.0, dists
    assert np.median(dists / np.array(iods)) < 0.15


@pytest.mark.shared
@pytest.mark.parametrize("which", ["yunet", "scrfd"])
def test_padding_maps_back_to_image_coordinates(shared, yunet, scrfd, which):
    """Loose CelebA crops need no padding; padding them must give the same landmarks (within the detector's
    own jitter under a change of input: measured median max-abs difference 1.2 px YuNet, 1.6 px SCRFD)."""
    det = {"yunet": yunet, "scrfd": scrfd}[which]
    diffs = []
    for path in _sample(shared, "celeba", 12, seed=5):
        img = load_image(path)
        a, b = detect_face(det, img, 0.0), detect_face(det, img, 0.25)
        assert a is not None and b is not None
        diffs.append(np.abs(a.landmarks - b.landmarks).max())
    diffs = np.array(diffs)
    assert np.median(diffs) < 2.5, diffs
    assert diffs.max() < 12.0, diffs


@pytest.mark.shared
def test_detection_scales_with_the_image(shared, scrfd):
    """SCRFD letterboxes to 640: an image twice as large gives landmarks twice as far (within 1.5 px)."""
    import cv2

    img = load_image(_sample(shared, "celeba", 1, seed=11)[0])
    small = detect_face(scrfd, img)
    big = detect_face(scrfd, cv2.resize(img, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC))
    # pixel centres: x_big = 2 x + 0.5
    np.testing.assert_allclose(big.landmarks, small.landmarks * 2 + 0.5, atol=3.0)


@pytest.mark.shared
@pytest.mark.parametrize("which,limit", [("scrfd", 3.0), ("yunet", 7.0)])
def test_aligned_crop_redetects_where_the_fit_put_the_landmarks(shared, yunet, scrfd, which, limit):
    """Align with a detector's landmarks, detect again on the 112x112 crop: the new landmarks lie where the
    similarity fit sent the old ones. Median (over 16 faces) of the worst of the 5 points, measured: SCRFD
    ~1.7 px, YuNet ~5 px (YuNet's landmarks move by ~3 px std under any change of input, so it limits this
    check, not the warp; the warp itself is exact to < 0.15 px, see test_faces_align)."""
    from fiqa_bench.faces.align import arcface_template, similarity_transform

    det = {"yunet": yunet, "scrfd": scrfd}[which]
    errs = []
    for path in _sample(shared, "lfw", 8, seed=2) + _sample(shared, "celeba", 8, seed=2):
        img = load_image(path)
        first = detect_face(det, img, LFW_PAD)
        m = similarity_transform(first.landmarks, arcface_template(112))
        expected = first.landmarks @ m[:, :2].T + m[:, 2]
        assert np.abs(expected - ARCFACE_TEMPLATE).max() < 15  # the fit residual itself is small
        again = detect_face(det, align_face(img, first.landmarks), LFW_PAD)
        assert again is not None, path
        errs.append(np.linalg.norm(again.landmarks - expected, axis=1).max())
    assert np.median(errs) < limit, errs


@pytest.mark.shared
def test_no_face_in_a_blank_image(yunet, scrfd):
    blank = np.full((200, 200, 3), 128, np.uint8)
    assert yunet.detect(blank) == [] and scrfd.detect(blank) == []
    assert detect_face(yunet, blank, 0.2) is None


@pytest.mark.shared
def test_yunet_is_thread_safe(shared, yunet):
    imgs = [load_image(p) for p in _sample(shared, "celeba", 6, seed=9)]
    expected = [yunet.detect(im)[0].landmarks for im in imgs]
    results: dict[int, list] = {}

    def work(k):
        results[k] = [yunet.detect(im)[0].landmarks for im in imgs[::-1]][::-1]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(3):
        for e, r in zip(expected, results[k]):
            np.testing.assert_array_equal(e, r)


@pytest.mark.shared
def test_yunet_lfw_detection_rate(shared, yunet):
    """Acceptance: >= 98% of a fixed, seeded sample of 500 LFW images get a face at the default LFW pad
    (the full 7701-image rate is measured by benchmarks/bench_faces.py --rate: 100.00%)."""
    files = _sample(shared, "lfw", 500, seed=2024)
    found = sum(detect_face(yunet, load_image(p), LFW_PAD) is not None for p in files)
    assert found / len(files) >= 0.98, found


@pytest.mark.parametrize("cls", [YuNetDetector, ScrfdDetector])
def test_corrupt_weights_are_a_clear_error(tmp_path, cls):
    from fiqa_bench.errors import FiqaBenchError

    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not an onnx model" * 10)
    with pytest.raises(FiqaBenchError, match="broken.onnx"):
        cls(bad).detect(np.zeros((64, 64, 3), np.uint8))


@pytest.mark.shared
def test_detectors_pickle_for_process_pools(shared, yunet, scrfd):
    import pickle

    img = load_image(_sample(shared, "celeba", 1, seed=4)[0])
    for det in (yunet, scrfd):
        det.detect(img)  # loaded state must not block pickling
        clone = pickle.loads(pickle.dumps(det))
        assert clone.identity() == det.identity()
        np.testing.assert_array_equal(clone.detect(img)[0].landmarks, det.detect(img)[0].landmarks)


@pytest.mark.shared
def test_yunet_min_side_enlarges_small_images_and_maps_back(shared, scrfd):
    """YuNet's landmarks are coarse on small faces; enlarging small images first brings them closer to SCRFD's
    (independent model) landmarks. Measured median NME (mean landmark distance / eye distance) on these 32
    faces: 0.10 without enlarging, 0.07 at 640."""
    plain = YuNetDetector(shared / YUNET_FILE, min_side=0)
    enlarged = YuNetDetector(shared / YUNET_FILE, min_side=640)
    errs: dict[int, list] = {0: [], 640: []}
    for dataset, pad in (("lfw", LFW_PAD), ("celeba", 0.0)):
        for path in _sample(shared, dataset, 16, seed=3):
            img = load_image(path)
            ref = detect_face(scrfd, img, 0.5 if dataset == "lfw" else 0.0)
            iod = np.linalg.norm(ref.landmarks[1] - ref.landmarks[0])
            for side, det in ((0, plain), (640, enlarged)):
                found = detect_face(det, img, pad)
                _plausible(found)
                errs[side].append(np.linalg.norm(found.landmarks - ref.landmarks, axis=1).mean() / iod)
    assert np.median(errs[640]) < np.median(errs[0]) - 0.01, {k: np.median(v) for k, v in errs.items()}
    assert np.median(errs[640]) < 0.09
    # Images whose long side is at least min_side are left alone.
    big = load_image(_sample(shared, "celeba", 1, seed=1)[0])
    untouched = YuNetDetector(shared / YUNET_FILE, min_side=max(big.shape[:2]))
    np.testing.assert_array_equal(untouched.detect(big)[0].landmarks, plain.detect(big)[0].landmarks)
    assert untouched.identity() != plain.identity()
