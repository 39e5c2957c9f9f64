"""Verification metrics: a functional API, plain numpy in, plain Python numbers out.

Conventions used everywhere in this module:

* a *score* is a similarity: higher means "more likely the same person";
* a pair is *accepted* (predicted genuine) when ``score >= threshold``;
* ``labels`` are 1 (or True) for genuine pairs and 0 (or False) for impostor pairs;
* FPR = false accepts / impostor pairs, TPR = true accepts / genuine pairs, both fractions (not percent).

TPR at a fixed FPR can be read off an ROC curve in more than one way; the two readings in use are both
offered (see :func:`tpr_at_fpr_detailed`) so that numbers can be compared with papers that used either.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

DEFAULT_FPR_TARGETS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5)
#: Every FPR target a run reports (1e-6 only where the pair list has a million impostors): the one place they live.
FPR_TARGETS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
TPR_MODES = ("conservative", "nearest")

__all__ = [
    "DEFAULT_FPR_TARGETS",
    "FPR_TARGETS",
    "reported_fpr_targets",
    "TPR_MODES",
    "fpr_key",
    "roc",
    "tpr_at_fpr",
    "tpr_at_fpr_detailed",
    "kfold_accuracy",
    "verification_accuracy_at",
]

# Relative slack when turning an FPR target into a count of allowed false accepts, so that e.g.
# 0.29 * 100 (= 28.999999999999996 in binary floating point) allows 29 false accepts, not 28.
_COUNT_SLACK = 1e-12


def fpr_key(target: float) -> str:
    """The stable key for an FPR target in results files: 1e-1 -> "1e-1", 5e-3 -> "5e-3", 0.25 -> "2.5e-1"."""
    target = float(target)
    if not (target > 0 and math.isfinite(target)):
        raise ValueError(f"FPR target must be a positive finite number, got {target!r}")
    mantissa, exponent = f"{target:.12e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def _check_scores_labels(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    """Validate without copying big float32 arrays; labels come back as a bool array."""
    s = np.asarray(scores)
    if s.dtype.kind not in "fiu":
        raise ValueError(f"scores must be numeric, got dtype {s.dtype}")
    if s.dtype.kind != "f":
        s = s.astype(np.float64)
    y = np.asarray(labels)
    if s.ndim != 1 or y.ndim != 1:
        raise ValueError(f"scores and labels must be 1-d, got shapes {s.shape} and {y.shape}")
    if s.shape[0] != y.shape[0]:
        raise ValueError(f"scores ({s.shape[0]}) and labels ({y.shape[0]}) differ in length")
    if np.isnan(s).any():
        raise ValueError(f"scores contain {int(np.isnan(s).sum())} NaN value(s)")
    if y.dtype != np.bool_:
        if y.dtype.kind not in "iufb" or not ((y == 0) | (y == 1)).all():
            raise ValueError("labels must be 0/1 (or boolean): 1 genuine, 0 impostor")
        y = y.astype(bool)
    return s, y


def roc(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The full ROC curve: ``(fpr, tpr, thresholds)``, thresholds decreasing.

    One point per distinct score (exact ties form one point), preceded by the point (0, 0) at threshold
    ``+inf``: the same arrays as ``sklearn.metrics.roc_curve(labels, scores, drop_intermediate=False)``.
    Needs at least one genuine and one impostor pair.
    """
    s, y = _check_scores_labels(scores, labels)
    n_pos = int(y.sum())
    n_neg = y.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"an ROC needs both classes; got {n_pos} genuine and {n_neg} impostor pairs")
    order = np.argsort(s, kind="stable")[::-1]
    s_sorted = s[order]
    tps_all = np.cumsum(y[order], dtype=np.int64)
    del order
    last_of_group = np.r_[np.flatnonzero(s_sorted[1:] != s_sorted[:-1]), s_sorted.shape[0] - 1]
    tps = np.r_[0, tps_all[last_of_group]]
    fps = np.r_[0, last_of_group + 1 - tps[1:]]
    thresholds = np.r_[np.inf, s_sorted[last_of_group].astype(np.float64)]
    return fps / n_neg, tps / n_pos, thresholds


class _SortedClasses:
    """Genuine and impostor scores, each sorted ascending once; every operating point is then a few
    binary searches. Sorting the two classes separately avoids an argsort (and its int64 index array)
    over all pairs, which matters for IJB-C's 15.7 million pairs."""

    def __init__(self, scores, labels) -> None:
        s, y = _check_scores_labels(scores, labels)
        self.genuine = np.sort(s[y])
        self.impostor = s[~y]  # a fresh copy: sort it in place
        self.impostor.sort()
        self.n_pos = self.genuine.shape[0]
        self.n_neg = self.impostor.shape[0]

    def _reject_all_threshold(self) -> float:
        top = max(
            float(self.genuine[-1]) if self.n_pos else -np.inf, float(self.impostor[-1]) if self.n_neg else -np.inf
        )
        return float(np.nextafter(top, np.inf))

    def best_point(self, max_false_accepts: int) -> tuple[int, int, float]:
        """(true accepts, false accepts, threshold) of the ROC point with the most true accepts among
        those with at most ``max_false_accepts`` false accepts; the threshold is the lowest one reaching it.

        A finite threshold is returned even for the accept-nothing point (just above the top score), so
        results stay valid JSON.
        """
        g, imp = self.genuine, self.impostor
        k = int(max_false_accepts)
        if k >= self.n_neg:  # every pair may be accepted
            low = min(float(g[0]) if self.n_pos else np.inf, float(imp[0]) if self.n_neg else np.inf)
            return self.n_pos, self.n_neg, low
        v = imp[self.n_neg - 1 - k]  # the (k+1)-th highest impostor score must be rejected
        j_imp = int(np.searchsorted(imp, v, side="right"))
        j_gen = int(np.searchsorted(g, v, side="right"))
        above = [float(arr[j]) for arr, j in ((g, j_gen), (imp, j_imp)) if j < arr.shape[0]]
        threshold = min(above) if above else self._reject_all_threshold()
        return self.n_pos - j_gen, self.n_neg - j_imp, threshold

    def _curve_window(self, high: float, low: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool, bool]:
        """ROC points (sklearn's ``_binary_clf_curve``: one per distinct score, descending) for the distinct scores
        in [low, high], with one more point on each side where one exists; and whether those extra points exist."""
        g, imp = self.genuine, self.impostor
        # query in the arrays' own dtype: a float64 query would make numpy convert the whole array (15.6 M)
        low, high = imp.dtype.type(low), imp.dtype.type(high)
        parts = [
            imp[np.searchsorted(imp, low, "left") : np.searchsorted(imp, high, "right")],
            g[np.searchsorted(g, low, "left") : np.searchsorted(g, high, "right")],
        ]
        above = [arr[j] for arr in (g, imp) for j in [int(np.searchsorted(arr, high, "right"))] if j < arr.shape[0]]
        below = [arr[j - 1] for arr in (g, imp) for j in [int(np.searchsorted(arr, low, "left"))] if j > 0]
        if above:
            parts.append(np.asarray([min(above)], dtype=imp.dtype))
        if below:
            parts.append(np.asarray([max(below)], dtype=imp.dtype))
        u = np.unique(np.concatenate(parts))[::-1]
        fps = self.n_neg - np.searchsorted(imp, u, "left")
        tps = self.n_pos - np.searchsorted(g, u, "left")
        return u, fps.astype(np.int64), tps.astype(np.int64), bool(above), bool(below)

    def nearest_point(self, target: float) -> tuple[int, int, float]:
        """(true accepts, false accepts, threshold) of the point insightface reads: sklearn ``roc_curve`` with
        ``drop_intermediate=True`` (plus its (0, 0) point), flipped, ``argmin |fpr - target|`` (first minimum of the
        flipped curve: larger FPR, then larger TPR, wins a tie).

        Only a window of the curve around the target is built; it is widened until no kept point outside it
        can be nearer, so the answer equals the one from the whole curve."""
        imp = self.impostor
        n_neg = self.n_neg
        centre = int(round(target * n_neg))
        width = 256
        while True:
            lo_rank = centre - width  # ranks from the top (0 = highest impostor score)
            hi_rank = centre + width
            high = np.inf if lo_rank <= 0 else float(imp[n_neg - 1 - lo_rank])
            low = -np.inf if hi_rank >= n_neg - 1 else float(imp[n_neg - 1 - hi_rank])
            whole = lo_rank <= 0 and hi_rank >= n_neg - 1
            if whole:  # every score: the window is the whole curve
                low = -np.inf
                high = np.inf
            u, fps, tps, has_above, has_below = self._curve_window(high, low)
            m = u.shape[0]
            # keep[i] for points whose both neighbours are known (sklearn: non-zero second difference), plus the
            # curve's own first and last points
            keep = np.zeros(m, dtype=bool)
            if m >= 3:
                keep[1:-1] = (np.diff(fps, 2) != 0) | (np.diff(tps, 2) != 0)
            first = 1 if has_above else 0  # index range of the window proper (the extra points are only neighbours)
            last = m - 2 if has_below else m - 1
            if not has_above:
                keep[0] = True
            if not has_below:
                keep[m - 1] = True
            idx = np.arange(first, last + 1)
            idx = idx[keep[idx]]
            # candidates: kept points of the window, and the (0, 0) point prepended by roc_curve
            cand_fp = np.r_[0, fps[idx]]
            cand_tp = np.r_[0, tps[idx]]
            cand_thr = np.r_[np.inf, u[idx].astype(np.float64)]
            dist = np.abs(cand_fp / n_neg - target)
            best = dist.min()
            # among equally near points the one latest on the curve (flipped: first) wins
            pick = int(np.flatnonzero(dist == best)[-1])
            # points outside the window: above it their FPR is at most fps[first] - (something); below at least
            # the first point past the window. Certain when none of them can be nearer (or as near and later).
            ok = True
            if has_below and not whole:
                fp_out = int(fps[last + 1]) if last + 1 < m else n_neg
                ok &= abs(fp_out / n_neg - target) > best
            if has_above and not whole:
                fp_out = int(fps[first - 1]) if first >= 1 else 0
                # points above the window come after (0, 0) on the curve but before the window's points
                d_out = abs(fp_out / n_neg - target)
                ok &= d_out > best if pick == 0 else d_out >= best
            if ok or whole:
                tp, fp, thr = int(cand_tp[pick]), int(cand_fp[pick]), float(cand_thr[pick])
                if not np.isfinite(thr):
                    thr = self._reject_all_threshold()
                return tp, fp, thr
            width *= 4

    def next_false_accepts(self, false_accepts: int) -> int | None:
        """The smallest false-accept count reachable on the ROC that is larger than ``false_accepts``."""
        if false_accepts >= self.n_neg:
            return None
        v = self.impostor[self.n_neg - 1 - false_accepts]
        return self.n_neg - int(np.searchsorted(self.impostor, v, side="left"))


def _allowed_false_accepts(target: float, n_neg: int) -> int:
    return int(math.floor(target * n_neg * (1.0 + _COUNT_SLACK)))


def tpr_at_fpr_detailed(
    scores,
    labels,
    fpr_targets: Sequence[float] = DEFAULT_FPR_TARGETS,
    mode: str = "conservative",
) -> dict[str, dict]:
    """TPR at each FPR target, with the operating point actually used.

    Returns ``{fpr_key(target): {"tpr", "fpr_achieved", "threshold", "reason"}}``; the first three are
    Python floats, or ``None`` together with a ``reason`` (text) when the target cannot be measured:

    * no genuine pairs (TPR undefined) or no impostor pairs (FPR undefined);
    * ``target < 1 / n_impostors``: the smallest non-zero FPR this pair list can show is
      ``1 / n_impostors``, so a smaller target says nothing about the system.

    ``mode`` says how the TPR is read off the ROC curve (points at every distinct score, no interpolation):

    * ``"conservative"`` (default): the largest TPR among ROC points whose FPR is **at most** the target,
      i.e. the operating threshold bob.measure's ``far_threshold`` picks. The reported TPR is one a
      deployed system with that threshold reaches while honouring the FPR it promised; ``fpr_achieved``
      may be below the target when impostor scores tie.
    * ``"nearest"``: insightface's IJB evaluation, reproduced exactly: scikit-learn's ``roc_curve`` with its
      defaults (``drop_intermediate=True``: interior points lying on a straight line with both neighbours are
      dropped, which removes most points where genuine scores are sparse), the curve flipped, and the point with
      the smallest ``|fpr - target|``, ties going to the first point of the flipped curve (the larger FPR, then
      the larger TPR). The picked point may lie above the target, and because of the dropped points it can be
      far from it when there are few genuine pairs (then the two readings differ by whole TPR points). Use it
      to compare with numbers from insightface-derived code (most IJB tables in papers). It is computed without
      sorting all pairs (a window of the curve around each target, widened until the nearest kept point is
      certain), so it costs no more than the conservative reading at IJB-C scale. Where the target is below
      ``1 / n_impostors`` the value insightface would print is still given, with ``measurable = False`` and the
      reason.

    The conservative reading is the default because it never credits a method with an FPR above the one
    named in the column header, and because it is monotone in the target; for untied scores on IJB-sized
    impostor sets the two readings differ by at most one impostor's worth of FPR.
    """
    if mode not in TPR_MODES:
        raise ValueError(f"mode must be one of {TPR_MODES}, got {mode!r}")
    targets = [float(t) for t in fpr_targets]
    keys = [fpr_key(t) for t in targets]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate FPR targets: {keys}")
    if any(not (0 < t <= 1) for t in targets):
        raise ValueError(f"FPR targets must lie in (0, 1], got {targets}")
    data = _SortedClasses(scores, labels)
    out: dict[str, dict] = {}
    for key, target in zip(keys, targets):
        reason = None
        if data.n_pos == 0:
            reason = "no genuine pairs: TPR is undefined"
        elif data.n_neg == 0:
            reason = "no impostor pairs: FPR is undefined"
        if reason is not None:
            out[key] = {"tpr": None, "fpr_achieved": None, "threshold": None, "reason": reason}
            continue
        unmeasurable = None
        if target * data.n_neg * (1.0 + _COUNT_SLACK) < 1.0:
            need = math.ceil(1.0 / target - 1e-9)
            unmeasurable = (
                f"FPR {key} needs at least {need} impostor pairs to be measurable; this pair list has {data.n_neg}"
            )
        if mode == "nearest":
            tp, fp, threshold = data.nearest_point(target)
            out[key] = {
                "tpr": tp / data.n_pos,
                "fpr_achieved": fp / data.n_neg,
                "threshold": float(threshold),
                "reason": unmeasurable,
                "measurable": unmeasurable is None,
            }
            continue
        if unmeasurable is not None:
            out[key] = {"tpr": None, "fpr_achieved": None, "threshold": None, "reason": unmeasurable}
            continue
        tp, fp, threshold = data.best_point(_allowed_false_accepts(target, data.n_neg))
        out[key] = {
            "tpr": tp / data.n_pos,
            "fpr_achieved": fp / data.n_neg,
            "threshold": float(threshold),
            "reason": None,
        }
    return out


def reported_fpr_targets(n_impostors: int) -> list[float]:
    """The FPR targets a run reports: 1e-1..1e-5 always (null where unmeasurable), 1e-6 only where measurable."""
    return [f for f in FPR_TARGETS if f >= 1e-5 or f * n_impostors >= 1]


def tpr_at_fpr(
    scores,
    labels,
    fpr_targets: Sequence[float] = DEFAULT_FPR_TARGETS,
    mode: str = "conservative",
) -> dict[str, float | None]:
    """``{"1e-1": tpr, ..., "1e-5": tpr}`` (fractions); ``None`` where the target cannot be measured.

    See :func:`tpr_at_fpr_detailed` for the two readings (``mode``) and when a value is ``None``.
    Runs in O(n log n) with one sort per class; 15.7 million float32 scores take about a second.
    """
    detailed = tpr_at_fpr_detailed(scores, labels, fpr_targets, mode)
    return {key: point["tpr"] for key, point in detailed.items()}


def verification_accuracy_at(scores, labels, threshold: float) -> float:
    """Fraction of pairs classified correctly when pairs with ``score >= threshold`` are accepted."""
    s, y = _check_scores_labels(scores, labels)
    if s.shape[0] == 0:
        raise ValueError("no pairs")
    return float(np.mean((s >= threshold) == y))


def _candidate_thresholds(s: np.ndarray) -> np.ndarray:
    """Midpoints between consecutive distinct scores, plus one threshold below all scores (accept all)
    and one above all (accept none); ascending, float64."""
    u = np.unique(s.astype(np.float64))
    low = min(u[0] - 1.0, np.nextafter(u[0], -np.inf))
    high = max(u[-1] + 1.0, np.nextafter(u[-1], np.inf))
    return np.r_[low, (u[:-1] + u[1:]) / 2.0, high]


def _accuracies(s: np.ndarray, y: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Accuracy at every threshold at once: accepted genuines + rejected impostors, by binary search."""
    gen = np.sort(s[y])
    imp = np.sort(s[~y])
    true_accepts = gen.shape[0] - np.searchsorted(gen, thresholds, side="left")
    true_rejects = np.searchsorted(imp, thresholds, side="left")
    return (true_accepts + true_rejects) / s.shape[0]


def kfold_accuracy(scores, labels, folds, thresholds: Iterable[float] | None = None) -> dict:
    """k-fold verification accuracy (the LFW / YTF protocol).

    For each fold, the threshold that maximises accuracy on the other k-1 folds is applied to the held-out
    fold. Candidate thresholds are ``thresholds`` if given (any grid, e.g. ``np.arange(-1, 1, 0.01)``),
    else the midpoints between consecutive distinct training scores plus one below and one above all of
    them, so every distinct split of the training scores is tried exactly once. Ties in training accuracy
    go to the **largest** (strictest) candidate, as insightface's ``verification.py`` does when it takes
    the first maximum over its ascending distance grid. Pairs with ``score >= threshold`` are accepted.

    Returns ``{"mean", "std", "folds", "thresholds"}``: ``folds`` are the per-fold accuracies (fractions,
    in ascending fold-id order), ``thresholds`` the threshold used for each, and ``std`` is the population
    standard deviation of the fold accuracies (``np.std`` with ``ddof=0``, as insightface reports it; the
    sample std is ``std * sqrt(k / (k - 1))``).
    """
    s, y = _check_scores_labels(scores, labels)
    f = np.asarray(folds)
    if f.shape != s.shape:
        raise ValueError(f"folds ({f.shape}) and scores ({s.shape}) differ in shape")
    fold_ids = np.unique(f)
    if fold_ids.shape[0] < 2:
        raise ValueError(f"k-fold accuracy needs at least 2 folds, got {fold_ids.tolist()}")
    grid = None
    if thresholds is not None:
        grid = np.unique(np.asarray(list(thresholds), dtype=np.float64))
        if grid.shape[0] == 0 or not np.isfinite(grid).all():
            raise ValueError("thresholds must be a non-empty list of finite numbers")
    accuracies, chosen = [], []
    for fold in fold_ids:
        test = f == fold
        train = ~test
        candidates = grid if grid is not None else _candidate_thresholds(s[train])
        train_acc = _accuracies(s[train], y[train], candidates)
        best = np.flatnonzero(train_acc == train_acc.max())[-1]
        threshold = float(candidates[best])
        chosen.append(threshold)
        accuracies.append(float(np.mean((s[test] >= threshold) == y[test])))
    acc = np.asarray(accuracies)
    return {
        "mean": float(acc.mean()),
        "std": float(acc.std(ddof=0)),
        "folds": accuracies,
        "thresholds": chosen,
    }
