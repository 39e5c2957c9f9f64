"""EDC and pAUC against an independent transcription of the definition (ISO/IEC 29794-1, Schlett et al. 2023):
pairs sorted by pair quality, discard points at quality boundaries (ties together), error = errors remaining /
comparisons remaining, (1, 0) appended, stepwise area. The reference below is a plain loop over sorted pairs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fiqa_bench.metrics.edc import (
    edc,
    edc_threshold,
    pair_quality,
    pauc,
    rethreshold_edc,
    summary,
    theoretical_best_area,
)


def reference_edc(scores, quality, error, start):
    """Literal transcription: argsort by quality, loop over the distinct quality levels."""
    s = np.asarray(scores, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    thr = np.quantile(s, start if error == "fnm" else 1 - start)
    order = np.argsort(q, kind="stable")
    s, q = s[order], q[order]
    wrong = (s < thr) if error == "fnm" else (s >= thr)
    n = len(s)
    d, e = [], []
    i = 0
    while i < n:
        d.append(i / n)
        e.append(wrong[i:].sum() / (n - i))
        j = i
        while j < n and q[j] == q[i]:
            j += 1
        i = j
    d.append(1.0)
    e.append(0.0)
    return np.array(d), np.array(e), thr


def reference_pauc(d, e, limit):
    area = 0.0
    for i in range(len(d)):
        if i == len(d) - 1 or d[i + 1] >= limit:
            area += e[i] * (limit - d[i])
            break
        area += e[i] * (d[i + 1] - d[i])
    return area


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("error", ["fnm", "fm"])
def test_edc_equals_the_reference_with_ties(seed, error):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 3000))
    scores = rng.normal(size=n).astype(np.float32)
    quality = rng.integers(0, max(2, n // (3 + seed)), size=n).astype(np.float64)  # many ties
    start = 0.05 if error == "fnm" else 0.01
    curve = edc(scores, quality, error, start_error=start)
    d, e, thr = reference_edc(scores, quality, error, start)
    assert curve.threshold == thr
    np.testing.assert_array_equal(curve.discard_fractions, d)
    np.testing.assert_allclose(curve.error_fractions, e, rtol=0, atol=1e-15)
    for limit in (0.2, 0.3, 0.0, 1.0, 0.55):
        assert abs(pauc(curve, limit) - reference_pauc(d, e, limit)) <= 1e-12


def test_hand_computed_fnm_edc():
    # 8 mated scores; threshold fixed at 0.5 (given): errors are the scores below it (0.1, 0.3, 0.4).
    scores = [0.9, 0.1, 0.8, 0.3, 0.7, 0.4, 0.95, 0.6]
    quality = [5, 1, 4, 1, 3, 2, 5, 4]  # the two errors of quality 1 tie: discarded together
    curve = edc(scores, quality, "fnm", threshold=0.5)
    # levels 1 (2 pairs, 2 errors), 2 (1 pair, 1 error), 3 (1), 4 (2), 5 (2)
    assert curve.discard_fractions.tolist() == [0.0, 2 / 8, 3 / 8, 4 / 8, 6 / 8, 1.0]
    assert curve.error_fractions.tolist() == [3 / 8, 1 / 6, 0.0, 0.0, 0.0, 0.0]
    # pAUC@0.3: 3/8 * 0.25 + 1/6 * 0.05
    assert pauc(curve, 0.3) == pytest.approx(3 / 8 * 0.25 + 1 / 6 * 0.05, abs=1e-15)
    # the theoretical best discards the 3 errors first: area under max(0, 3/8 - d) up to 0.3
    assert theoretical_best_area(3 / 8, 0.3) == pytest.approx((3 / 8) ** 2 / 2 - (3 / 8 - 0.3) ** 2 / 2)
    assert theoretical_best_area(0.1, 0.3) == pytest.approx(0.005)


def test_a_quality_that_finds_the_errors_beats_an_inverted_one():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=2000)
    good = scores + rng.normal(0, 0.2, size=2000)  # quality follows the score: low quality = the errors
    best = pauc(edc(scores, good, "fnm", start_error=0.1), 0.2)
    worst = pauc(edc(scores, -good, "fnm", start_error=0.1), 0.2)
    assert best < 0.5 * 0.1 * 0.2 < worst  # inverted quality keeps the errors longer than random would


def test_threshold_is_numpys_linear_quantile():
    s = np.arange(101, dtype=np.float64)
    assert edc_threshold(s, 0.05, "fnm") == 5.0
    assert edc_threshold(s, 0.05, "fm") == 95.0
    assert edc_threshold([0.0, 1.0], 0.25, "fnm") == 0.25


def test_pair_quality_modes():
    assert pair_quality([1, 4], [3, 2]).tolist() == [1, 2]
    assert pair_quality([1, 4], [3, 2], "mean").tolist() == [2, 3]
    assert pair_quality([1, 4], [3, 2], "product").tolist() == [3, 8]
    with pytest.raises(ValueError):
        pair_quality([1], [1], "max")


def reference_rethreshold(gs, gq, is_, iq, fmr, fractions):
    """Brute force: for each fraction, drop the lowest-quality comparisons (ties together), rethreshold."""
    q = np.r_[gq, iq]
    n = len(q)
    levels = np.unique(q)
    below = np.r_[0, np.cumsum([np.sum(q == v) for v in levels])]
    out_d, out_e, last = [], [], -1
    for f in fractions:
        want = math.ceil(f * n - 1e-9)
        level = next((j for j, b in enumerate(below) if b >= want), len(levels))
        if level >= len(levels) or level == last:
            continue
        last = level
        cut = levels[level]
        g = gs[gq >= cut]
        imp = np.sort(is_[iq >= cut])[::-1]
        if len(g) == 0:
            continue
        k = math.floor(fmr * len(imp) * (1 + 1e-12))
        tau = -np.inf if k >= len(imp) else imp[k]
        out_d.append(below[level] / n)
        out_e.append(np.mean(g <= tau))
    return np.r_[out_d, 1.0], np.r_[out_e, 0.0]


@pytest.mark.parametrize("seed", range(4))
def test_rethreshold_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n_g, n_i = 300, 20_000
    gs = rng.normal(2, 1, n_g)
    is_ = rng.normal(0, 1, n_i)
    gq = rng.integers(0, 50, n_g).astype(float)
    iq = rng.integers(0, 50, n_i).astype(float)
    fractions = np.round(np.arange(0, 51) / 100, 2)
    curve = rethreshold_edc(gs, gq, is_, iq, fmr=1e-3, fractions=fractions)
    d, e = reference_rethreshold(gs, gq, is_, iq, 1e-3, fractions)
    np.testing.assert_allclose(curve.discard_fractions, d, rtol=0, atol=1e-15)
    np.testing.assert_allclose(curve.error_fractions, e, rtol=0, atol=1e-15)


def test_rethreshold_falls_back_when_the_discard_removes_the_top_impostors():
    """The top-impostor shortcut must not change the answer when the high impostor scores are low quality."""
    rng = np.random.default_rng(5)
    is_ = rng.normal(0, 1, 50_000)
    iq = -is_ + rng.normal(0, 0.01, is_.shape[0])  # the highest impostor scores have the lowest quality
    gs = rng.normal(2, 1, 200)
    gq = rng.normal(0, 1, 200)
    fractions = [0.0, 0.1, 0.3, 0.5]
    curve = rethreshold_edc(gs, gq, is_, iq, fmr=1e-3, fractions=fractions)
    d, e = reference_rethreshold(gs, gq, is_, iq, 1e-3, fractions)
    np.testing.assert_allclose(curve.error_fractions, e, rtol=0, atol=1e-15)
    np.testing.assert_allclose(curve.discard_fractions, d, rtol=0, atol=1e-15)


def test_summary_records_raw_and_minus_best():
    scores = [0.9, 0.1, 0.8, 0.3, 0.7, 0.4, 0.95, 0.6]
    quality = [5, 1, 4, 1, 3, 2, 5, 4]
    out = summary(edc(scores, quality, "fnm", threshold=0.5))
    assert set(out["pauc"]) == {"0.20", "0.30"}
    assert out["pauc"]["0.20"] == pytest.approx(3 / 8 * 0.2)
    assert out["pauc_minus_best"]["0.20"] == pytest.approx(3 / 8 * 0.2 - theoretical_best_area(3 / 8, 0.2))
    assert out["start_error"] == 3 / 8 and out["threshold"] == 0.5 and out["comparisons"] == 8
