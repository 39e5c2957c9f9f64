"""Score-balanced sampling (section 3.4): smooth flattens the histogram, random keeps its shape; seeded."""

from __future__ import annotations

import numpy as np
import pytest

from fiqa_bench.training.sampling import (
    bin_index,
    flatness,
    identity_filter,
    plot_histograms,
    sample_indices,
    score_histogram,
    to_unit_interval,
)


def _labels(seed=0, n_ids=60, per_id=(20, 150)):
    """Cosine labels piled up around 0.7 (a good FR model), a thin low tail with negatives, some NaN."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(per_id[0], per_id[1], n_ids)
    ids = np.repeat([f"id{i}" for i in range(n_ids)], sizes)
    labels = rng.normal(0.7, 0.07, ids.size)
    low = rng.random(ids.size) < 0.03
    labels[low] = rng.uniform(-0.4, 0.5, low.sum())
    labels[rng.random(ids.size) < 0.01] = np.nan
    return np.clip(labels, -1, 1), ids


def test_bins_and_unit_interval():
    assert bin_index(np.array([-0.5, 0.0, 0.004, 0.01, 0.5, 0.999, 1.0])).tolist() == [0, 0, 0, 1, 50, 99, 99]
    assert np.isnan(to_unit_interval(np.array([np.nan])))[0]
    counts = score_histogram(np.array([0.1, 0.1, np.nan, 0.95]))
    assert counts.sum() == 3 and counts[10] == 2 and counts[95] == 1


def test_smooth_is_flatter_and_keeps_the_size():
    labels, ids = _labels()
    idx = sample_indices(labels, ids, strategy="smooth", min_images=50, seed=1)
    kept = identity_filter(ids, 50) & np.isfinite(labels)
    assert idx.size == kept.sum()  # default target: as many images as after the identity filter
    assert set(ids[idx]) == set(ids[kept])  # only identities with >= 50 images, all of them
    before, after = score_histogram(labels[kept]), score_histogram(labels[idx])
    assert flatness(after) < 0.6 * flatness(before)
    assert after.max() < 0.6 * before.max()  # the crowded middle is down-sampled
    assert after[:50].sum() > 2 * before[:50].sum()  # the low tail is over-sampled


def test_tails_are_oversampled_at_most_max_repeat_times():
    labels, ids = _labels(seed=2)
    idx = sample_indices(labels, ids, strategy="smooth", min_images=0, max_repeat=3, seed=0)
    assert np.bincount(idx).max() <= 3
    lowest = np.argsort(np.where(np.isfinite(labels), labels, np.inf))[:5]
    assert all((idx == i).sum() >= 1 for i in lowest)  # the worst images are never dropped


def test_random_strategy_is_a_uniform_subset():
    labels, ids = _labels(seed=3)
    idx = sample_indices(labels, ids, strategy="random", target_size=1000, seed=4)
    assert idx.size == 1000 and np.unique(idx).size == 1000 and np.isfinite(labels[idx]).all()
    # the shape of the histogram is kept: mean and spread of the subset match the whole
    finite = labels[np.isfinite(labels)]
    assert abs(np.median(labels[idx]) - np.median(finite)) < 0.02
    with pytest.raises(ValueError, match="distinct"):
        sample_indices(labels, ids, strategy="random", target_size=10**6)


def test_target_size_and_seeded_reproducibility():
    labels, ids = _labels(seed=5)
    a = sample_indices(labels, ids, strategy="smooth", min_images=30, target_size=777, seed=9)
    b = sample_indices(labels, ids, strategy="smooth", min_images=30, target_size=777, seed=9)
    c = sample_indices(labels, ids, strategy="smooth", min_images=30, target_size=777, seed=10)
    assert a.size == 777
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_errors():
    labels, ids = _labels()
    with pytest.raises(ValueError, match="strategy"):
        sample_indices(labels, ids, strategy="flat")
    with pytest.raises(ValueError, match="identities"):
        sample_indices(labels, None, strategy="smooth")


def test_plot_histograms_writes_a_png(tmp_path):
    labels, ids = _labels()
    idx = sample_indices(labels, ids, strategy="smooth", min_images=50)
    out = tmp_path / "fig5.png"
    plot_histograms(labels, labels[idx], out)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert not list(tmp_path.glob(".*tmp"))  # written atomically, no leftovers
