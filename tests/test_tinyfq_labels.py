"""Eq. 1 quality labels against a brute-force loop written straight from the definition."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fiqa_bench.training.labels import quality_labels


def _brute_force(emb, ids, leave_one_out=True, groups=None, reference=None):
    """For each image: cosine to the mean of the normalised embeddings of the other images of its identity."""
    n = len(ids)
    groups = list(range(n)) if groups is None else list(groups)
    reference = [True] * n if reference is None else list(reference)
    out = []
    for i in range(n):
        others = []
        for j in range(n):
            if ids[j] != ids[i] or not reference[j]:
                continue
            if leave_one_out and groups[j] == groups[i]:
                continue
            norm = math.sqrt(sum(v * v for v in emb[j]))
            others.append([v / norm for v in emb[j]])
        if not others or (not leave_one_out and len(others) < 2):
            out.append(float("nan"))
            continue
        centre = [sum(col) / len(others) for col in zip(*others)]
        dot = sum(a * b for a, b in zip(emb[i], centre))
        out.append(dot / (math.sqrt(sum(v * v for v in emb[i])) * math.sqrt(sum(c * c for c in centre))))
    return np.array(out)


def _data(seed=0, n_ids=6, dim=16):
    rng = np.random.default_rng(seed)
    sizes = [1, 2, 3, 5, 8, 4][:n_ids]
    emb, ids = [], []
    for k, size in enumerate(sizes):
        centre = rng.normal(size=dim)
        for _ in range(size):
            emb.append(centre + rng.normal(scale=rng.uniform(0.2, 2.0), size=dim))
            ids.append(f"id{k}")
    emb = np.array(emb) * rng.uniform(0.5, 20, size=(len(emb), 1))  # raw norms differ: must not matter
    return emb.astype(np.float32), np.array(ids)


@pytest.mark.parametrize("leave_one_out", [True, False])
def test_labels_equal_brute_force(leave_one_out):
    emb, ids = _data()
    got = quality_labels(emb, ids, leave_one_out)
    want = _brute_force(emb.astype(np.float64).tolist(), ids.tolist(), leave_one_out)
    assert got.dtype == np.float32 and got.shape == (len(ids),)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[~np.isnan(got)], want[~np.isnan(want)], atol=1e-6)
    assert np.isnan(got[0])  # id0 has a single image: no centre


def test_groups_and_reference_equal_brute_force():
    """Degraded copies: left out with their original, and not used to build the centres."""
    emb, ids = _data(seed=1)
    rng = np.random.default_rng(5)
    groups = np.arange(len(ids))
    copies = emb + rng.normal(scale=3.0, size=emb.shape).astype(np.float32)
    all_emb = np.concatenate([emb, copies])
    all_ids = np.concatenate([ids, ids])
    all_groups = np.concatenate([groups, groups])
    reference = np.concatenate([np.ones(len(ids), bool), np.zeros(len(ids), bool)])
    got = quality_labels(all_emb, all_ids, groups=all_groups, reference=reference)
    want = _brute_force(
        all_emb.astype(np.float64).tolist(), all_ids.tolist(), True, all_groups.tolist(), reference.tolist()
    )
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[~np.isnan(got)], want[~np.isnan(want)], atol=1e-6)
    # a noisier copy sits farther from the centre than its clean original (on average)
    ok = ~np.isnan(got[: len(ids)])
    assert got[len(ids) :][ok].mean() < got[: len(ids)][ok].mean()


def test_leave_one_out_removes_self_attraction():
    """Mutually orthogonal embeddings: nobody resembles anybody, so the label must be 0, not 1/sqrt(k)."""
    emb = np.eye(4, dtype=np.float32)
    ids = np.array(["a"] * 4)
    np.testing.assert_allclose(quality_labels(emb, ids, True), 0.0, atol=1e-7)
    np.testing.assert_allclose(quality_labels(emb, ids, False), 0.5, atol=1e-6)  # 1 / sqrt(4): inflated


def test_zero_embedding_and_class_centres():
    emb = np.array([[1, 0], [0, 0], [1, 1], [0, 2]], np.float32)
    ids = np.array(["a", "a", "b", "c"])
    got = quality_labels(emb, ids)
    assert np.isnan(got[1])  # zero embedding
    assert np.isnan(got[2]) and np.isnan(got[3])  # singletons
    centres = {"a": np.array([1.0, 1.0]), "b": np.array([0.0, -3.0])}
    got = quality_labels(emb, ids, class_centres=centres)
    np.testing.assert_allclose(got[[0, 2]], [1 / np.sqrt(2), -1 / np.sqrt(2)], atol=1e-6)
    assert np.isnan(got[1]) and np.isnan(got[3])  # zero embedding; identity without a centre


def test_empty_and_shape_errors():
    assert quality_labels(np.zeros((0, 8), np.float32), np.array([])).shape == (0,)
    with pytest.raises(ValueError, match="identities"):
        quality_labels(np.ones((3, 2), np.float32), ["a", "b"])
