"""Template pooling and pair scoring against plain-loop float64 references (insightface's recipe)."""

from __future__ import annotations

import numpy as np
import pytest

from fiqa_bench.errors import FiqaBenchError
from fiqa_bench.pipeline.pairscore import pair_scores, pool_templates


def reference_pool(features, groups, media, weights=None, by_media=True):
    """insightface's image2template_feature as a loop: mean per media, sum over media, L2-normalise."""
    feats = np.asarray(features, dtype=np.float64)
    if weights is not None:
        feats = feats * np.asarray(weights, dtype=np.float64)[:, None]
    out = {}
    for t in sorted(set(groups.tolist())):
        in_t = groups == t
        if by_media:
            total = sum(feats[in_t & (media == m)].mean(axis=0) for m in sorted(set(media[in_t].tolist())))
        else:
            total = feats[in_t].mean(axis=0)
        norm = np.linalg.norm(total)
        out[t] = total / norm if norm > 0 else total
    return out


def random_layout(rng, n_images=600, n_templates=40, dim=16):
    groups = rng.choice(rng.permutation(10_000)[:n_templates], size=n_images)
    media = rng.integers(0, 5, size=n_images) + 100 * groups  # a few media per template
    features = rng.standard_normal((n_images, dim)).astype(np.float32)
    return features, groups.astype(np.int64), media.astype(np.int64)


@pytest.mark.parametrize("seed", range(3))
def test_pool_all_matches_insightface_loop(seed):
    rng = np.random.default_rng(seed)
    features, groups, media = random_layout(rng)
    ids, pooled = pool_templates(features, groups, media, mode="all")
    ref = reference_pool(features, groups, media)
    assert ids.tolist() == sorted(ref)
    assert pooled.dtype == np.float32 and pooled.shape == (len(ref), features.shape[1])
    np.testing.assert_allclose(pooled, np.stack([ref[t] for t in ids.tolist()]), atol=2e-6)


def test_pool_mean_and_weights():
    rng = np.random.default_rng(5)
    features, groups, media = random_layout(rng)
    weights = rng.uniform(0.1, 2.0, size=len(groups))
    ids, pooled = pool_templates(features, groups, media, mode="mean", weights=weights)
    ref = reference_pool(features, groups, media, weights=weights, by_media=False)
    np.testing.assert_allclose(pooled, np.stack([ref[t] for t in ids.tolist()]), atol=2e-6)
    # Media do matter for mode="all": a template with one 1-image media and one 3-image media.
    f = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]], dtype=np.float32)
    g = np.array([7, 7, 7, 7])
    m = np.array([1, 2, 2, 2])
    _, all_mode = pool_templates(f, g, m, mode="all")  # (1, 0) + (0, 1) -> 45 degrees
    _, mean_mode = pool_templates(f, g, m, mode="mean")  # (1, 3) / 4
    np.testing.assert_allclose(all_mode[0], [2**-0.5, 2**-0.5], atol=1e-7)
    np.testing.assert_allclose(mean_mode[0], np.array([1.0, 3.0]) / 10**0.5, atol=1e-7)
    _, no_media = pool_templates(f, g, None, mode="all")  # without media: one media per template
    np.testing.assert_allclose(no_media, mean_mode, atol=1e-7)


def test_pool_is_independent_of_image_order():
    rng = np.random.default_rng(9)
    features, groups, media = random_layout(rng)
    perm = rng.permutation(len(groups))
    ids1, p1 = pool_templates(features, groups, media)
    ids2, p2 = pool_templates(features[perm], groups[perm], media[perm])
    assert ids1.tolist() == ids2.tolist()
    np.testing.assert_allclose(p1, p2, atol=1e-6)


def test_pool_refuses_bad_input():
    with pytest.raises(ValueError, match="mode"):
        pool_templates(np.ones((2, 3), np.float32), [1, 2], mode="best")
    with pytest.raises(ValueError, match="groups has 1 entries"):
        pool_templates(np.ones((2, 3), np.float32), [1])
    with pytest.raises(ValueError, match="integer ids"):
        pool_templates(np.ones((2, 3), np.float32), ["a", "b"])


def reference_scores(ids, feats, a, b):
    row = {t: i for i, t in enumerate(np.asarray(ids).tolist())}
    f = np.asarray(feats, dtype=np.float64)
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-300)
    return np.array([f[row[x]] @ f[row[y]] for x, y in zip(np.asarray(a).tolist(), np.asarray(b).tolist())])


def pair_layout(rng, n_templates, n_heavy, pairs_per_heavy, n_random):
    """A few heavy templates (IJB enrolment style: many pairs each) plus random pairs."""
    ids = np.sort(rng.choice(50_000, size=n_templates, replace=False)).astype(np.int64)
    heavy = rng.choice(ids, size=n_heavy, replace=False)
    a = np.r_[np.repeat(heavy, pairs_per_heavy), rng.choice(ids, size=n_random)]
    b = rng.choice(ids, size=a.shape[0])
    return ids, a, b


CASES = ["grouped-sorted", "grouped-unsorted", "shuffled", "heavy-side-is-b", "ids-unsorted", "sparse-ids"]


@pytest.mark.parametrize("case", CASES)
def test_pair_scores_match_reference(case):
    rng = np.random.default_rng(CASES.index(case))
    ids, a, b = pair_layout(rng, n_templates=300, n_heavy=12, pairs_per_heavy=150, n_random=700)
    feats = rng.standard_normal((len(ids), 24)).astype(np.float32)
    if case == "grouped-sorted":
        order = np.argsort(a, kind="stable")
        a, b = a[order], b[order]
    elif case == "shuffled":
        perm = rng.permutation(len(a))
        a, b = a[perm], b[perm]
    elif case == "heavy-side-is-b":
        a, b = b, a
    elif case == "ids-unsorted":
        perm = rng.permutation(len(ids))
        ids, feats = ids[perm], feats[perm]
    elif case == "sparse-ids":  # ids spread too widely for a lookup table: binary search path
        ids = ids * 1_000_003
        a, b = a * 1_000_003, b * 1_000_003
    got = pair_scores(ids, feats, a, b, chunk=97)
    assert got.dtype == np.float32 and got.shape == a.shape
    np.testing.assert_allclose(got, reference_scores(ids, feats, a, b), atol=2e-6)


def test_pair_scores_dense_only_and_sparse_only():
    rng = np.random.default_rng(1)
    # Dense only: 20 templates, each row with many pairs -> every run goes through the GEMM kernel.
    ids = np.arange(20)
    feats = rng.standard_normal((20, 8)).astype(np.float32)
    a = np.repeat(ids, 30)
    b = rng.choice(ids, size=a.shape[0])
    np.testing.assert_allclose(pair_scores(ids, feats, a, b), reference_scores(ids, feats, a, b), atol=2e-6)
    # Sparse only: 3000 templates, 500 random pairs -> every pair through the gather kernel.
    ids = np.arange(3000) + 10
    feats = rng.standard_normal((3000, 8)).astype(np.float32)
    a, b = rng.choice(ids, size=500), rng.choice(ids, size=500)
    np.testing.assert_allclose(pair_scores(ids, feats, a, b, chunk=64), reference_scores(ids, feats, a, b), atol=2e-6)


def test_pair_scores_normalise_and_zero_vectors():
    feats = np.array([[3.0, 4.0], [0.0, 2.0], [0.0, 0.0]], dtype=np.float32)
    got = pair_scores([1, 2, 3], feats, [1, 1, 3], [2, 1, 1])
    np.testing.assert_allclose(got, [0.8, 1.0, 0.0], atol=1e-7)  # cos of (3,4)/5 and (0,1); zero -> 0
    assert pair_scores([1], feats[:1], [], []).shape == (0,)


def test_pair_scores_unknown_template_is_an_error():
    feats = np.eye(3, dtype=np.float32)
    with pytest.raises(FiqaBenchError, match=r"column b names 2 template id\(s\).*\[4, 9\]"):
        pair_scores([1, 2, 3], feats, [1, 2, 3, 1], [2, 4, 9, 4])
    with pytest.raises(FiqaBenchError, match="column a names 1"):
        pair_scores([10**9, 2 * 10**9, 3 * 10**9], feats, [5], [10**9])
    with pytest.raises(ValueError, match="duplicates"):
        pair_scores([2, 1, 2], feats, [1], [2])


def test_pool_then_score_end_to_end():
    """Pooled features scored through both kernels agree with the loop reference on raw images."""
    rng = np.random.default_rng(4)
    features, groups, media = random_layout(rng, n_images=900, n_templates=60, dim=32)
    ids, pooled = pool_templates(features, groups, media)
    ref = reference_pool(features, groups, media)
    a = np.r_[np.repeat(ids[:5], 40), rng.choice(ids, 100)]
    b = rng.choice(ids, a.shape[0])
    expected = [ref[x] @ ref[y] for x, y in zip(a.tolist(), b.tolist())]
    np.testing.assert_allclose(pair_scores(ids, pooled, a, b, chunk=50), expected, atol=3e-6)
