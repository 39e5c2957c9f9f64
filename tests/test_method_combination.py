"""The ``combination`` method: mean of the reference-CDF-normalised blur, pose and jpeg scores.

The reference percentile is recomputed here with an explicit search over the stored quantiles (not np.interp),
from raw scores of the three standalone methods on crops aligned here. On real faces: the calibration holds on
faces it was not fitted on (normalised scores uniform: KS statistic 0.075 / 0.036 / 0.082 for blur / pose / jpeg on
210 held-out faces when written), and blurring or re-compressing a face lowers its combined score (gaussian
sigma 2: 82% of faces, median drop 0.20; JPEG quality 10: 90%, median drop 0.15 — not 100%, because blurring can
raise the jpeg measure and blocking can raise the blur measure, which the mean lets through; the test uses every
second held-out face).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import stats

from fiqa_bench import registry
from fiqa_bench.faces import load_face, make_detector
from fiqa_bench.faces.align import align_face
from fiqa_bench.faces.pipeline import Face
from fiqa_bench.methods import combination as combination_module
from fiqa_bench.methods.blur import BlurQuality
from fiqa_bench.methods.combination import (
    LEVELS,
    MEASURES,
    QUANTILES,
    CombinationQuality,
    combine,
    component_scores,
    normalise,
)
from fiqa_bench.methods.jpeg import JpegQuality
from fiqa_bench.methods.pose import PoseQuality
from fiqa_bench.testing import check_method, synthetic_faces


def reference_percentile(table, x: float) -> float:
    """Share of the reference below x: linear between the stored 1%-quantiles, 0 / 1 outside, written out."""
    q = [float(v) for v in table]
    if x <= q[0]:
        return 0.0
    if x >= q[-1]:
        return 1.0
    k = 0
    while q[k + 1] < x:
        k += 1
    return (k + (x - q[k]) / (q[k + 1] - q[k])) / (len(q) - 1)


def reference_combination(faces) -> np.ndarray:
    crops = np.stack([np.ascontiguousarray(align_face(f.image, f.landmarks, 112)[..., ::-1]) for f in faces])
    raw = {"blur": BlurQuality().score(crops), "pose": PoseQuality().score(faces), "jpeg": JpegQuality().score(faces)}
    return np.array(
        [np.mean([reference_percentile(QUANTILES[m], float(raw[m][i])) for m in MEASURES]) for i in range(len(faces))]
    )


# ------------------------------------------------------------------------------------------ tables and recipe
def test_tables_are_strictly_increasing_quantiles():
    assert set(QUANTILES) == set(MEASURES)
    for m in MEASURES:
        table = np.asarray(QUANTILES[m])
        assert table.shape == (101,) and (np.diff(table) > 0).all()
    assert 0 < QUANTILES["pose"][0] and QUANTILES["pose"][-1] <= 1  # pose is a cosine
    np.testing.assert_allclose(LEVELS, np.arange(101) / 100)


def test_normalise_is_the_piecewise_linear_reference_cdf():
    rng = np.random.default_rng(0)
    for m in MEASURES:
        table = np.asarray(QUANTILES[m])
        np.testing.assert_allclose(normalise(m, table), LEVELS, atol=1e-12)
        x = np.concatenate([rng.uniform(table[0] - 1, table[-1] + 1, 200), [table[0] - 5, table[-1] * 2]])
        np.testing.assert_allclose(normalise(m, x), [reference_percentile(table, v) for v in x], atol=1e-12)
        assert (np.diff(normalise(m, np.sort(x))) >= 0).all()
    with pytest.raises(ValueError, match="measure"):
        normalise("noise", [1.0])


def test_score_is_the_mean_of_the_three_percentiles():
    faces = synthetic_faces(6)
    np.testing.assert_allclose(CombinationQuality().score(faces), reference_combination(faces), rtol=1e-5)


def test_components_are_the_standalone_methods():
    faces = synthetic_faces(4)
    raw = component_scores(faces)
    crops = np.stack([np.ascontiguousarray(align_face(f.image, f.landmarks, 112)[..., ::-1]) for f in faces])
    np.testing.assert_array_equal(raw["blur"], BlurQuality().score(crops))
    np.testing.assert_array_equal(raw["pose"], PoseQuality().score(faces))
    np.testing.assert_array_equal(raw["jpeg"], JpegQuality().score(faces))
    assert all(v.shape == (0,) for v in component_scores([]).values())
    # crops given by the caller (the pinned-score tests' committed ones) take the place of the warp, nothing else
    given = component_scores(faces, crops=crops)
    assert all(np.array_equal(given[m], raw[m]) for m in MEASURES)
    np.testing.assert_array_equal(combine(given), CombinationQuality().score(faces))
    with pytest.raises(ValueError, match="3 crops for 4 faces"):
        component_scores(faces, crops=crops[:3])


def test_a_face_scores_the_same_whatever_it_is_batched_with():
    """No batch statistics: a fixed reference, so ruined neighbours change nothing."""
    faces = synthetic_faces(3)
    alone = CombinationQuality().score(faces[:1])
    ruined = [Face(cv2.GaussianBlur(f.image, (0, 0), 5), f.landmarks, f.box) for f in faces[1:]]
    assert CombinationQuality().score(faces[:1] + ruined)[0] == alone[0]


def test_registered_conformant_and_identity_follows_the_tables(monkeypatch):
    assert registry.load_class("method", "combination") is CombinationQuality
    check_method(CombinationQuality())
    before = CombinationQuality().identity()
    changed = dict(QUANTILES, jpeg=tuple(v + 0.1 for v in QUANTILES["jpeg"]))
    monkeypatch.setattr(combination_module, "QUANTILES", changed)
    assert CombinationQuality().identity() != before


# ------------------------------------------------------------------------------------------ real faces
def _between_calibration_picks(paths: list, n: int, n_calibration: int) -> list:
    """Files half-way between those of the calibration sample (benchmarks/calibrate_combination.py)."""
    paths = sorted(paths)
    k = max(1, len(paths) // n_calibration)
    return paths[k // 2 :: k][:n]


@pytest.fixture(scope="module")
def heldout_faces(shared) -> list[Face]:
    """150 CelebA-wild + 60 LFW faces (the calibration's 5:2 mix) that the calibration did not see."""
    det = make_detector("yunet", model_path=shared / "models/yunet/face_detection_yunet_2026may.onnx")
    faces = []
    for folder, pad, n, n_cal in [("data/celeba-wild/images", 0.0, 150, 1500), ("data/lfw/lfw", 0.25, 60, 600)]:
        for path in _between_calibration_picks(list((Path(shared) / folder).glob("*/*.jpg")), n, n_cal):
            face = load_face(path, det, pad=pad, on_no_face="skip")
            if face is not None:
                faces.append(face)
    assert len(faces) >= 200
    return faces


@pytest.mark.shared
def test_calibration_holds_on_held_out_real_faces(heldout_faces):
    raw = component_scores(heldout_faces)
    for m in MEASURES:
        u = normalise(m, raw[m])
        ks = stats.kstest(u, "uniform")
        assert ks.statistic < 0.12, f"{m}: KS {ks.statistic:.3f} against uniform"


@pytest.mark.shared
def test_recipe_and_conformance_on_real_faces(heldout_faces):
    faces = heldout_faces[:8] + heldout_faces[-8:]
    np.testing.assert_allclose(CombinationQuality().score(faces), reference_combination(faces), rtol=1e-5)
    check_method(CombinationQuality(), faces[:12])


def _reencode(image: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


@pytest.mark.shared
@pytest.mark.parametrize(
    ("degrade", "min_share"),
    [(lambda im: cv2.GaussianBlur(im, (0, 0), 2.0), 0.75), (lambda im: _reencode(im, 10), 0.85)],
    ids=["gaussian-sigma2", "jpeg-q10"],
)
def test_degrading_a_real_face_lowers_its_score(heldout_faces, degrade, min_share):
    faces = heldout_faces[::2]
    before = CombinationQuality().score(faces)
    after = CombinationQuality().score([Face(degrade(f.image), f.landmarks, f.box, f.path) for f in faces])
    assert (after < before).mean() >= min_share
    assert np.median(before - after) > 0.1  # at least 10 percentile points
