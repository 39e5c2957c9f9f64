"""Bootstrap over subjects: the weighted fast paths equal the metrics recomputed on the resample written out
(every pair repeated by its weight), intervals are seeded and reproducible, and a paired comparison uses the same
resamples for both runs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fiqa_bench.metrics.base import MetricOptions, PairData, get_metric
from fiqa_bench.metrics.resample import Draw as _Draw
from fiqa_bench.metrics.resample import Prepared as _Prepared
from fiqa_bench.metrics.resample import pair_weights
from fiqa_bench.metrics.resample import quantile_of_weighted as _quantile_of_weighted
from fiqa_bench.pipeline.uncertainty import (
    BootstrapOptions,
    _materialised,
    add_intervals,
    replicate_values,
    subject_counts,
)


def synthetic(seed: int, n_subjects: int = 40, templates: int = 3, ties: bool = False) -> PairData:
    """Templates of subjects; genuine pairs within a subject, impostor pairs across; scores and qualities."""
    rng = np.random.default_rng(seed)
    subj = np.repeat(np.arange(n_subjects), templates)
    t = np.arange(subj.shape[0])
    ia, ib = np.triu_indices(t.shape[0], 1)
    labels = (subj[ia] == subj[ib]).astype(np.int8)
    scores = np.where(labels == 1, rng.normal(0.6, 0.15, ia.shape[0]), rng.normal(0.1, 0.12, ia.shape[0]))
    if ties:
        scores = np.round(scores, 2)
    tq = rng.random(t.shape[0])
    if ties:
        tq = np.round(tq, 1)
    q = np.minimum(tq[ia], tq[ib])
    folds = (subj[ia] % 5).astype(np.int64)
    return PairData(
        scores=scores.astype(np.float32),
        labels=labels,
        folds=folds,
        quality=q,
        a=ia,
        b=ib,
        subject_a=subj[ia],
        subject_b=subj[ib],
    )


def test_weights_follow_subjects():
    counts = np.array([2, 0, 1, 3])
    w = pair_weights(counts, np.array([0, 0, 1, 2, 3]), np.array([0, 2, 3, 3, 3]), np.array([1, 0, 0, 0, 1]))
    assert w.tolist() == [2, 2, 0, 3, 3]


def test_weighted_quantile_is_numpys_on_the_repeat():
    rng = np.random.default_rng(0)
    for _ in range(200):
        v = np.sort(rng.normal(size=int(rng.integers(1, 30))))
        w = rng.integers(0, 4, size=v.shape[0]).astype(float)
        if w.sum() == 0:
            continue
        q = float(rng.random())
        ref = np.quantile(np.repeat(v, w.astype(int)), q)
        assert _quantile_of_weighted(v, np.cumsum(w), q) == pytest.approx(ref, abs=1e-15)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("key", ["tpr_at_fpr", "edc_fnm", "edc_fm", "edc_fnm_rethreshold", "accuracy"])
def test_fast_paths_equal_the_written_out_resample(key, ties):
    data = synthetic(3, ties=ties)
    options = MetricOptions(fm_start=1e-2, rethreshold_fmr=1e-2)
    metric = get_metric(key)
    value = metric.compute(data, options)
    p = _Prepared(data, options)
    counts = subject_counts(40, 25, seed=7)
    for b in range(25):
        draw = _Draw(p, counts[b])
        w = draw.w
        fast = replicate_values(key, p, draw, value)
        sample = _materialised(data, w)
        ref = dict(metric.columns(metric.compute(sample, options)))
        for short, v in fast.items():
            r = ref.get(short)
            if r is None:
                assert math.isnan(v)
            else:
                assert v == pytest.approx(r, abs=1e-12), (b, short)


def test_intervals_are_recorded_seeded_and_bracket_the_value():
    data = synthetic(1)
    options = MetricOptions(fm_start=1e-2)
    metrics = {k: get_metric(k).compute(data, options) for k in ("tpr_at_fpr", "edc_fnm")}
    boot = BootstrapOptions(B=200, seed=3)
    a = add_intervals(data, metrics, options, boot)
    b = add_intervals(data, metrics, options, boot)
    assert a == b  # seeded: the same intervals again
    c = add_intervals(data, metrics, options, BootstrapOptions(B=200, seed=4))
    assert c["edc_fnm"]["intervals"] != a["edc_fnm"]["intervals"]
    lo, hi = a["tpr_at_fpr"]["intervals"]["1e-1"]
    assert lo <= a["tpr_at_fpr"]["values"]["1e-1"] <= hi and lo < hi
    assert a["tpr_at_fpr"]["bootstrap"]["B"] == 200 and a["tpr_at_fpr"]["bootstrap"]["unit"] == "subject"
    # 1e-4 is below 1/impostors in every resample: no interval, said by the valid count
    assert a["tpr_at_fpr"]["intervals"]["1e-4"] is None
    assert a["tpr_at_fpr"]["bootstrap"]["valid_replicates"]["1e-4"] == 0


def test_the_highest_impostors_shortcut_equals_the_full_weights():
    """Above 200,000 impostors TPR@FPR uses the top impostors and c' N c for the total: same values."""
    data = synthetic(5, n_subjects=700, templates=1)  # 244,650 impostor pairs, no genuine ones...
    rng = np.random.default_rng(0)
    labels = data.labels.copy()
    labels[rng.choice(labels.shape[0], 400, replace=False)] = 1  # ...so label some genuine, subject_a = subject_b
    data.labels = labels
    data.subject_b = np.where(labels == 1, data.subject_a, data.subject_b)
    options = MetricOptions()
    value = get_metric("tpr_at_fpr").compute(data, options)
    fast_p = _Prepared(data, options)
    assert fast_p.top is not None
    slow_p = _Prepared(data, options)
    slow_p.top = None
    counts = subject_counts(700, 30, seed=1)
    for b in range(30):
        fast = replicate_values("tpr_at_fpr", fast_p, _Draw(fast_p, counts[b]), value)
        slow = replicate_values("tpr_at_fpr", slow_p, _Draw(slow_p, counts[b]), value)
        for k in fast:
            assert (math.isnan(fast[k]) and math.isnan(slow[k])) or fast[k] == slow[k]
