"""serfiq: the paper's formula, seeded dropout passes of the real MobileFaceNet head, direction on real faces."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from _real_faces import degraded, lfw_faces
from fiqa_bench.methods.serfiq import SerFiq, serfiq_quality


def _reference(e: np.ndarray) -> np.ndarray:
    """2 * sigmoid(-(2/m^2) * sum_{i<j} ||x_i - x_j||) written out pair by pair."""
    out = []
    for passes in e:
        x = [p / np.linalg.norm(p) for p in passes.astype(np.float64)]
        m = len(x)
        total = sum(np.linalg.norm(x[i] - x[j]) for i, j in itertools.combinations(range(m), 2))
        out.append(2.0 / (1.0 + np.exp((2.0 / m**2) * total)))
    return np.array(out)


def test_formula_matches_a_pair_by_pair_computation():
    e = np.random.default_rng(0).normal(size=(4, 7, 5)).astype(np.float32)
    np.testing.assert_allclose(serfiq_quality(e), _reference(e), rtol=1e-6)
    same = np.repeat(e[:, :1], 6, axis=1)  # all passes agree: the top of the range
    np.testing.assert_allclose(serfiq_quality(same), 1.0, atol=1e-6)
    # more spread, lower quality (the formula's direction)
    rng = np.random.default_rng(1)
    tight = e[:1, :1] + 0.01 * rng.normal(size=(1, 7, 5))
    loose = e[:1, :1] + 1.0 * rng.normal(size=(1, 7, 5))
    assert serfiq_quality(tight)[0] > serfiq_quality(loose)[0]
    assert serfiq_quality(np.zeros((0, 3, 2))).shape == (0,)
    with pytest.raises(ValueError, match="stochastic embeddings"):
        serfiq_quality(e[0])


@pytest.fixture(scope="module")
def backbone(shared):
    pytest.importorskip("torch")
    from fiqa_bench.backbones.torch_mobilefacenet import TorchMobileFaceNet

    return TorchMobileFaceNet()


@pytest.fixture(scope="module")
def faces(shared):
    return lfw_faces(shared)


def test_scores_are_the_formula_on_the_backbones_passes(backbone, faces):
    from _real_faces import rgb_crops

    q = SerFiq(backbone, passes=100, dropout=0.5, seed=0).score(faces)
    passes = backbone.stochastic_embed(rgb_crops(faces), 100, 0.5, 0)
    np.testing.assert_allclose(q, _reference(passes), rtol=1e-5)
    assert q.dtype == np.float32 and ((q > 0) & (q <= 1)).all()


def test_degraded_faces_score_lower(backbone, faces):
    method = SerFiq(backbone)
    clean = method.score(faces)
    for kind in ("blur", "downscale"):
        assert (clean > method.score(degraded(faces, kind))).all(), kind


def test_seeded(backbone, faces):
    a = SerFiq(backbone, seed=0).score(faces[:3])
    np.testing.assert_array_equal(a, SerFiq(backbone, seed=0).score(faces[:3]))
    assert np.abs(SerFiq(backbone, seed=1).score(faces[:3]) - a).max() > 1e-4
    assert "seed=1" in SerFiq(backbone, seed=1).identity() and backbone.identity() in SerFiq(backbone).identity()


def test_options_are_validated(backbone):
    with pytest.raises(ValueError, match="passes"):
        SerFiq(backbone, passes=1)
    with pytest.raises(ValueError, match="dropout"):
        SerFiq(backbone, dropout=1.0)


def test_conformance_kit(backbone):
    from fiqa_bench.testing import check_method

    check_method(SerFiq(backbone))
