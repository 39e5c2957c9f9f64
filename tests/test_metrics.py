"""Metrics against independent computations: scikit-learn's roc_curve, a literal transcription of
insightface's TPR@FPR reading, brute-force loops over thresholds, and small cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from fiqa_bench.metrics import (
    fpr_key,
    kfold_accuracy,
    roc,
    tpr_at_fpr,
    tpr_at_fpr_detailed,
    verification_accuracy_at,
)


def tied_scores(rng, n, levels=40, dtype=np.float32):
    """Scores on a coarse grid so that many pairs tie, genuine ones shifted up."""
    labels = rng.random(n) < 0.3
    raw = rng.integers(0, levels, size=n) + labels * rng.integers(0, levels // 2, size=n)
    return (raw / levels).astype(dtype), labels.astype(np.int64)


# ---------------------------------------------------------------------------------------------- roc


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_roc_matches_sklearn_with_ties(seed, dtype):
    rng = np.random.default_rng(seed)
    scores, labels = tied_scores(rng, 500, dtype=dtype)
    fpr, tpr, thr = roc(scores, labels)
    ref_fpr, ref_tpr, ref_thr = roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr, rtol=0, atol=1e-15)
    np.testing.assert_allclose(tpr, ref_tpr, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(thr, ref_thr.astype(np.float64))


def test_roc_matches_sklearn_continuous_scores():
    rng = np.random.default_rng(7)
    labels = rng.random(3000) < 0.1
    scores = rng.normal(size=3000) + 1.5 * labels
    fpr, tpr, thr = roc(scores, labels)
    ref = roc_curve(labels, scores, drop_intermediate=False)
    assert len(fpr) == 3001  # every score distinct: one point each plus (0, 0)
    for mine, theirs in zip((fpr, tpr, thr), ref):
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-15)


def test_roc_hand_computed():
    # scores 0.9(G) 0.7(I) 0.7(G) 0.2(I): the tie at 0.7 is one point.
    fpr, tpr, thr = roc([0.9, 0.7, 0.7, 0.2], [1, 0, 1, 0])
    assert fpr.tolist() == [0.0, 0.0, 0.5, 1.0]
    assert tpr.tolist() == [0.0, 0.5, 1.0, 1.0]
    assert thr.tolist() == [math.inf, 0.9, 0.7, 0.2]


def test_roc_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        roc([0.1, 0.2], [1, 1])


# ------------------------------------------------------------------------------------- tpr_at_fpr


def brute_force_points(scores, labels):
    """Every ROC point by a plain loop: (tp, fp, threshold) at each distinct score and at +inf."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    points = [(0, 0, math.inf)]
    for t in sorted(set(s.tolist()), reverse=True):
        accepted = s >= t
        points.append((int((accepted & y).sum()), int((accepted & ~y).sum()), t))
    return points, int(y.sum()), int((~y).sum())


def brute_force_conservative(scores, labels, target):
    points, n_pos, n_neg = brute_force_points(scores, labels)
    ok = [(tp, fp, t) for tp, fp, t in points if fp / n_neg <= target]
    tp, fp, t = max(ok, key=lambda p: (p[0], -p[2]))  # most true accepts; lowest threshold among them
    return tp / n_pos, fp / n_neg


def insightface_nearest(scores, labels, target):
    """Transcription of insightface's IJB reading (sklearn ROC with its defaults, i.e. drop_intermediate=True,
    flipud, min over (|fpr - x|, index))."""
    fpr, tpr, _ = roc_curve(labels, scores)
    fpr, tpr = np.flipud(fpr), np.flipud(tpr)
    _, min_index = min(zip(abs(fpr - target), range(len(fpr))))
    return tpr[min_index], fpr[min_index]


TARGETS = (1e-1, 3e-2, 1e-2, 5e-3, 2e-3)


@pytest.mark.parametrize("seed", range(6))
def test_tpr_at_fpr_conservative_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    scores, labels = tied_scores(rng, 2000, levels=60 + 40 * seed)
    got = tpr_at_fpr_detailed(scores, labels, TARGETS, mode="conservative")
    for target in TARGETS:
        tpr, fpr = brute_force_conservative(scores, labels, target)
        point = got[fpr_key(target)]
        assert point["tpr"] == pytest.approx(tpr, abs=1e-15)
        assert point["fpr_achieved"] == pytest.approx(fpr, abs=1e-15)
        assert point["fpr_achieved"] <= target
        assert point["reason"] is None


@pytest.mark.parametrize("seed", range(6))
def test_tpr_at_fpr_nearest_matches_insightface(seed):
    rng = np.random.default_rng(100 + seed)
    scores, labels = tied_scores(rng, 2000, levels=60 + 40 * seed)
    got = tpr_at_fpr_detailed(scores, labels, TARGETS, mode="nearest")
    for target in TARGETS:
        tpr, fpr = insightface_nearest(scores, labels, target)
        point = got[fpr_key(target)]
        assert point["tpr"] == pytest.approx(tpr, abs=1e-15)
        assert point["fpr_achieved"] == pytest.approx(fpr, abs=1e-15)


@pytest.mark.parametrize("mode", ["conservative", "nearest"])
def test_threshold_reproduces_reported_point(mode):
    rng = np.random.default_rng(11)
    scores, labels = tied_scores(rng, 3000, levels=80)
    s, y = scores.astype(np.float64), labels.astype(bool)
    for key, point in tpr_at_fpr_detailed(scores, labels, TARGETS, mode=mode).items():
        accepted = scores >= point["threshold"]
        assert (accepted & y).sum() / y.sum() == pytest.approx(point["tpr"], abs=1e-15)
        assert (accepted & ~y).sum() / (~y).sum() == pytest.approx(point["fpr_achieved"], abs=1e-15)
        # The threshold is a score (or just above the top one) ...
        assert point["threshold"] in set(s.tolist()) or point["threshold"] > s.max()
        # ... and, read conservatively, the lowest one: the next lower score would exceed the target.
        lower = s[s < point["threshold"]]
        if mode == "conservative" and lower.size:
            assert ((s >= lower.max()) & ~y).sum() / (~y).sum() > float(key)


def test_continuous_scores_large_impostor_set():
    """Untied float32 scores: conservative equals the brute force, nearest equals insightface's recipe exactly
    (which, with sklearn's dropped collinear points, need not lie within one impostor of the target)."""
    rng = np.random.default_rng(3)
    n_neg, n_pos = 200_000, 2_000
    scores = np.r_[rng.normal(0, 1, n_neg), rng.normal(3, 1, n_pos)].astype(np.float32)
    labels = np.r_[np.zeros(n_neg, int), np.ones(n_pos, int)]
    cons = tpr_at_fpr_detailed(scores, labels, mode="conservative")
    near = tpr_at_fpr_detailed(scores, labels, mode="nearest")
    for target in (1e-1, 1e-2, 1e-3, 1e-4, 1e-5):
        key = fpr_key(target)
        ref_tpr, _ = brute_force_conservative_fast(scores, labels, target)
        assert cons[key]["tpr"] == pytest.approx(ref_tpr, abs=1e-15)
        ref_near, ref_fpr = insightface_nearest(scores, labels, target)
        assert near[key]["tpr"] == ref_near and near[key]["fpr_achieved"] == ref_fpr


def brute_force_conservative_fast(scores, labels, target):
    """Conservative reading from sklearn's ROC (an independent ROC implementation)."""
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    ok = fpr <= target
    return tpr[ok].max(), fpr[ok][np.argmax(tpr[ok])]


def test_hand_computed_case():
    # 4 genuine, 8 impostor scores (FPRs are multiples of 1/8, exact in binary floating point); sorted:
    #   0.95 G | 0.90 I | 0.80 G | 0.70 G | 0.60 I | 0.60 I | 0.50 G | 0.40 I | 0.35 I | 0.30 I | ...
    genuine = [0.95, 0.80, 0.70, 0.50]
    impostor = [0.90, 0.60, 0.60, 0.40, 0.35, 0.30, 0.20, 0.10]
    scores = np.array(genuine + impostor)
    labels = np.array([1] * 4 + [0] * 8)
    targets = (0.125, 0.25, 0.3125, 0.375, 0.4375)
    cons = tpr_at_fpr_detailed(scores, labels, targets, mode="conservative")
    # FPR <= 1/8 -> at most 1 false accept: threshold 0.70 accepts 0.95, 0.90(I), 0.80, 0.70 -> TPR 3/4.
    assert cons["1.25e-1"] == {"tpr": 0.75, "fpr_achieved": 0.125, "threshold": 0.70, "reason": None}
    # FPR <= 2/8 -> at most 2, but the two 0.60 impostors tie: taking them makes 3, so still 0.70.
    assert cons["2.5e-1"] == {"tpr": 0.75, "fpr_achieved": 0.125, "threshold": 0.70, "reason": None}
    assert cons["3.125e-1"]["tpr"] == 0.75
    # FPR <= 3/8 -> 3 false accepts allowed: threshold 0.50 accepts all 4 genuine.
    assert cons["3.75e-1"] == {"tpr": 1.0, "fpr_achieved": 0.375, "threshold": 0.50, "reason": None}
    # FPR <= 3.5/8: the next reachable FPR is 4/8, so the point stays at 3/8.
    assert cons["4.375e-1"] == {"tpr": 1.0, "fpr_achieved": 0.375, "threshold": 0.50, "reason": None}

    near = tpr_at_fpr_detailed(scores, labels, targets, mode="nearest")
    # Reachable FPRs: 0, 1/8, 3/8, 4/8, ... 2/8 is equally near 1/8 and 3/8 -> the larger (3/8).
    assert near["2.5e-1"] == {"tpr": 1.0, "fpr_achieved": 0.375, "threshold": 0.50, "reason": None, "measurable": True}
    # 2.5/8 is nearer 3/8 than 1/8: nearest reads TPR 1.0 where conservative reads 0.75.
    assert near["3.125e-1"]["fpr_achieved"] == 0.375 and near["3.125e-1"]["tpr"] == 1.0
    # 3.5/8: 3/8 and 4/8 would be equally near, but roc_curve drops the 4/8 point (0.40 lies on the straight
    # impostor-only run 3/8 -> 5/8), so insightface reads 3/8 (threshold 0.50).
    assert near["4.375e-1"] == {
        "tpr": 1.0,
        "fpr_achieved": 0.375,
        "threshold": 0.50,
        "reason": None,
        "measurable": True,
    }
    assert near["1.25e-1"] == {**cons["1.25e-1"], "measurable": True}


def test_zero_false_accepts_threshold_is_finite():
    # The two top scores are tied impostors: with one false accept allowed (FPR 1/10) nothing can be
    # accepted, so the point is (0, 0) and the threshold sits just above the top score.
    scores = [0.9, 0.9, 0.5, 0.4] + [0.1] * 8
    labels = [0, 0, 1, 1] + [0] * 8
    point = tpr_at_fpr_detailed(scores, labels, (0.1,))["1e-1"]
    assert point["tpr"] == 0.0 and point["fpr_achieved"] == 0.0
    assert math.isfinite(point["threshold"]) and point["threshold"] > 0.9
    assert point["threshold"] == pytest.approx(0.9, abs=1e-12)


def test_all_genuine_gives_none_with_reason():
    got = tpr_at_fpr_detailed([0.9, 0.8, 0.7], [1, 1, 1])
    assert list(got) == ["1e-1", "1e-2", "1e-3", "1e-4", "1e-5"]
    for point in got.values():
        assert point["tpr"] is None and point["threshold"] is None and point["fpr_achieved"] is None
        assert "no impostor pairs" in point["reason"]
    assert set(tpr_at_fpr([0.9, 0.8, 0.7], [1, 1, 1]).values()) == {None}


def test_all_impostor_gives_none_with_reason():
    got = tpr_at_fpr_detailed(np.linspace(0, 1, 50), np.zeros(50, int), (0.1,))
    assert got["1e-1"]["tpr"] is None and "no genuine pairs" in got["1e-1"]["reason"]


@pytest.mark.parametrize("mode", ["conservative", "nearest"])
def test_too_few_impostors_gives_none(mode):
    rng = np.random.default_rng(0)
    n_neg = 999
    scores = np.r_[rng.normal(size=n_neg), rng.normal(2, 1, 100)]
    labels = np.r_[np.zeros(n_neg, int), np.ones(100, int)]
    got = tpr_at_fpr_detailed(scores, labels, mode=mode)
    assert got["1e-1"]["tpr"] is not None and got["1e-2"]["tpr"] is not None
    for key, need in (("1e-3", 1000), ("1e-4", 10000), ("1e-5", 100000)):
        assert f"at least {need} impostor pairs" in got[key]["reason"] and "has 999" in got[key]["reason"]
        if mode == "conservative":
            assert got[key]["tpr"] is None  # never extrapolated
        else:  # what insightface prints, flagged as not a measurement
            assert got[key]["tpr"] == insightface_nearest(scores, labels, float(key))[0]
            assert got[key]["measurable"] is False
    # One more impostor makes 1e-3 measurable.
    more = tpr_at_fpr_detailed(np.r_[scores, -5.0], np.r_[labels, 0], mode=mode)
    assert more["1e-3"]["reason"] is None and more["1e-4"]["reason"] is not None


def test_fpr_key_format():
    assert [fpr_key(t) for t in (1e-1, 1e-2, 1e-3, 1e-4, 1e-5)] == ["1e-1", "1e-2", "1e-3", "1e-4", "1e-5"]
    assert fpr_key(5e-3) == "5e-3" and fpr_key(0.25) == "2.5e-1" and fpr_key(1) == "1e0"
    with pytest.raises(ValueError):
        fpr_key(0)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        tpr_at_fpr([0.1, np.nan], [0, 1])
    with pytest.raises(ValueError, match="differ in length"):
        tpr_at_fpr([0.1, 0.2], [0, 1, 1])
    with pytest.raises(ValueError, match="0/1"):
        tpr_at_fpr([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match="mode"):
        tpr_at_fpr([0.1, 0.2], [0, 1], mode="interpolated")


# ---------------------------------------------------------------------------------- kfold accuracy


def brute_force_kfold(scores, labels, folds):
    """Loop over every fold and every candidate threshold (midpoints of distinct training scores plus
    one below and one above them); ties go to the largest threshold; accept when score >= threshold."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    accs, thrs = [], []
    for fold in sorted(set(np.asarray(folds).tolist())):
        test = np.asarray(folds) == fold
        train_s, train_y = s[~test], y[~test]
        u = sorted(set(train_s.tolist()))
        candidates = [u[0] - 1.0] + [(u[i] + u[i + 1]) / 2 for i in range(len(u) - 1)] + [u[-1] + 1.0]
        best_acc, best_t = -1.0, None
        for t in candidates:
            acc = sum(((x >= t) == lab) for x, lab in zip(train_s, train_y)) / len(train_s)
            if acc >= best_acc:
                best_acc, best_t = acc, t
        thrs.append(best_t)
        accs.append(sum(((x >= best_t) == lab) for x, lab in zip(s[test], y[test])) / test.sum())
    return accs, thrs


@pytest.mark.parametrize("seed", range(3))
def test_kfold_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    scores, labels = tied_scores(rng, 400, levels=30)
    folds = np.repeat(np.arange(10), 40)
    rng.shuffle(folds)
    got = kfold_accuracy(scores, labels, folds)
    accs, thrs = brute_force_kfold(scores, labels, folds)
    np.testing.assert_allclose(got["folds"], accs, rtol=0, atol=1e-15)
    np.testing.assert_allclose(got["thresholds"], thrs, rtol=0, atol=1e-12)
    assert got["mean"] == pytest.approx(np.mean(accs), abs=1e-15)
    assert got["std"] == pytest.approx(np.std(accs, ddof=0), abs=1e-15)


def test_kfold_hand_computed():
    # Fold 0: G 0.9, G 0.6, I 0.5, I 0.1      Fold 1: G 0.8, G 0.3, I 0.7, I 0.2
    scores = [0.9, 0.6, 0.5, 0.1, 0.8, 0.3, 0.7, 0.2]
    labels = [1, 1, 0, 0, 1, 1, 0, 0]
    folds = [0, 0, 0, 0, 1, 1, 1, 1]
    got = kfold_accuracy(scores, labels, folds)
    # Train on fold 1 (0.2 I, 0.3 G, 0.7 I, 0.8 G): best training accuracy 3/4, reached at the midpoints
    # 0.25 and 0.75; ties go to the largest -> 0.75. On fold 0: 0.9 accepted (right), 0.6 rejected (wrong),
    # 0.5 and 0.1 rejected (right) -> 3/4.
    # Train on fold 0 (0.1 I, 0.5 I, 0.6 G, 0.9 G): 0.55 separates perfectly. On fold 1: 0.8 G and 0.7 I
    # accepted, 0.3 G and 0.2 I rejected -> 2/4.
    assert got["thresholds"] == pytest.approx([0.75, 0.55])
    assert got["folds"] == [0.75, 0.5]
    assert got["mean"] == 0.625
    assert got["std"] == 0.125  # population std of (0.75, 0.5)


def test_kfold_with_given_threshold_grid():
    rng = np.random.default_rng(5)
    scores, labels = tied_scores(rng, 300, levels=25)
    folds = np.arange(300) % 5
    grid = np.arange(0.0, 1.6, 0.05)
    got = kfold_accuracy(scores, labels, folds, thresholds=grid)
    for fold, thr, acc in zip(range(5), got["thresholds"], got["folds"]):
        train = folds != fold
        train_accs = [verification_accuracy_at(scores[train], labels[train], t) for t in grid]
        best = max(train_accs)
        assert thr == pytest.approx(grid[[i for i, a in enumerate(train_accs) if a == best][-1]])
        assert acc == pytest.approx(verification_accuracy_at(scores[~train], labels[~train], thr))


def test_kfold_needs_two_folds():
    with pytest.raises(ValueError, match="at least 2 folds"):
        kfold_accuracy([0.1, 0.9], [0, 1], [0, 0])


def test_verification_accuracy_at_hand_computed():
    # threshold 0.5: 0.9 G accept (right), 0.5 G accept (right: >=), 0.4 G reject (wrong), 0.7 I accept
    # (wrong), 0.1 I reject (right) -> 3/5
    assert verification_accuracy_at([0.9, 0.5, 0.4, 0.7, 0.1], [1, 1, 1, 0, 0], 0.5) == 0.6


def _insightface_cases():
    """Random, tied and sparse score lists (few genuine pairs: where the drop_intermediate points matter)."""
    rng = np.random.default_rng(2026)
    for i in range(240):
        n_pos = int(rng.integers(1, 80))
        n_neg = int(rng.integers(1, 30_000 if i % 12 == 0 else 3_000))
        kind = i % 4
        if kind == 0:  # continuous
            s = np.r_[rng.normal(2, 1, n_pos), rng.normal(0, 1, n_neg)].astype(np.float32)
        elif kind == 1:  # heavy ties on a coarse grid
            s = (np.r_[rng.integers(0, 8, n_pos), rng.integers(-3, 5, n_neg)] / 4).astype(np.float32)
        elif kind == 2:  # moderate ties
            s = np.r_[rng.normal(2, 1, n_pos), rng.normal(0, 1, n_neg)].round(1).astype(np.float32)
        else:  # sparse genuine scores far above the impostors
            s = np.r_[rng.normal(4, 1, n_pos), rng.normal(0, 1, n_neg)].round(2).astype(np.float64)
        y = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
        order = rng.permutation(y.shape[0])
        yield s[order], y[order]


def test_nearest_equals_the_insightface_recipe_on_random_tied_and_sparse_lists():
    """``nearest`` = roc_curve with its defaults, flipped, argmin |fpr - target| (first minimum), to 1e-12."""
    targets = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 0.3, 0.5, 0.9, 1.0)
    for scores, labels in _insightface_cases():
        got = tpr_at_fpr_detailed(scores, labels, targets, mode="nearest")
        for t in targets:
            ref_tpr, ref_fpr = insightface_nearest(scores, labels, t)
            assert abs(got[fpr_key(t)]["tpr"] - ref_tpr) <= 1e-12
            assert abs(got[fpr_key(t)]["fpr_achieved"] - ref_fpr) <= 1e-12


def test_conservative_equals_sklearn_curve_reading_on_the_same_lists():
    """``conservative`` = the largest TPR among sklearn's (full) ROC points with FPR <= target."""
    for scores, labels in _insightface_cases():
        n_neg = int((labels == 0).sum())
        got = tpr_at_fpr_detailed(scores, labels, (1e-1, 1e-2, 1e-3), mode="conservative")
        for t in (1e-1, 1e-2, 1e-3):
            if t * n_neg < 1:
                assert got[fpr_key(t)]["tpr"] is None
                continue
            ref_tpr, _ = brute_force_conservative_fast(scores, labels, t)
            assert got[fpr_key(t)]["tpr"] == ref_tpr


def test_nearest_differs_from_the_undropped_curve_when_genuine_pairs_are_sparse():
    """The defect the reading had: on sklearn's full curve the nearest point differs from insightface's."""
    scores = np.r_[[3.0, 2.9, 2.8], np.linspace(1.0, 0.0, 1000)]
    labels = np.r_[[1, 1, 1], np.zeros(1000, int)]
    labels[3 + 150] = 1  # one genuine pair among the impostors, at FPR ~0.15
    scores = scores.astype(np.float64)
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    fpr, tpr = np.flipud(fpr), np.flipud(tpr)
    full = tpr[min(zip(abs(fpr - 0.1), range(len(fpr))))[1]]
    near = tpr_at_fpr_detailed(scores, labels, (0.1,), mode="nearest")["1e-1"]["tpr"]
    assert near == insightface_nearest(scores, labels, 0.1)[0]
    assert near != full
