"""pytest-benchmark timings of the metric kernels at a tenth of IJB-C's size.

Run: ``pytest benchmarks/test_bench_metrics.py --benchmark-only`` (the default test run skips benchmarks).
The full-size stage timings and peak memory come from ``benchmarks/bench_ijbc_scale.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from fiqa_bench.metrics import kfold_accuracy, tpr_at_fpr
from fiqa_bench.pipeline.pairscore import pair_scores, pool_templates

N_PAIRS = 1_565_849  # IJB-C / 10
N_TEMPLATES = 2_312
N_IMAGES = 46_938


@pytest.fixture(scope="module")
def scores_labels():
    rng = np.random.default_rng(0)
    labels = np.zeros(N_PAIRS, dtype=np.int8)
    labels[rng.choice(N_PAIRS, 1956, replace=False)] = 1
    scores = (rng.normal(0, 0.05, N_PAIRS) + 0.3 * labels).astype(np.float32)
    return scores, labels


@pytest.fixture(scope="module")
def templates():
    rng = np.random.default_rng(1)
    groups = rng.integers(0, N_TEMPLATES, N_IMAGES)
    media = groups * 8 + rng.integers(0, 3, N_IMAGES)
    feats = rng.standard_normal((N_IMAGES, 512), dtype=np.float32)
    enrol = np.arange(353)
    a = np.repeat(enrol, N_PAIRS // 353)
    b = rng.integers(353, N_TEMPLATES, a.shape[0])
    return feats, groups, media, a, b


@pytest.mark.parametrize("mode", ["conservative", "nearest"])
def test_bench_tpr_at_fpr(benchmark, scores_labels, mode):
    result = benchmark(tpr_at_fpr, *scores_labels, mode=mode)
    assert result["1e-5"] is not None


def test_bench_kfold_accuracy(benchmark):
    rng = np.random.default_rng(2)
    labels = np.repeat([1, 0], 2500)
    scores = rng.normal(0, 1, 5000) + 2 * labels
    result = benchmark(kfold_accuracy, scores, labels, np.arange(5000) % 10)
    assert 0.8 < result["mean"] < 1


def test_bench_pool_templates(benchmark, templates):
    feats, groups, media, _, _ = templates
    ids, _ = benchmark(pool_templates, feats, groups, media)
    assert ids.shape[0] == N_TEMPLATES


def test_bench_pair_scores(benchmark, templates):
    feats, groups, media, a, b = templates
    ids, pooled = pool_templates(feats, groups, media)
    out = benchmark(pair_scores, ids, pooled, a, b)
    assert out.shape == a.shape
