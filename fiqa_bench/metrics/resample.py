"""Weighted pairs: one bootstrap resample of subjects as pair weights, and the metrics' fast paths on it.

A resample draws subjects with replacement; subject ``s`` drawn ``c_s`` times makes its genuine pairs count ``c_s``
times and an impostor pair of ``s, t`` count ``c_s * c_t`` times (:func:`pair_weights`). :class:`Prepared` holds the
work done once per pair list (sorts, orders, quality levels); :class:`Draw` is one resample. :func:`weighted_tpr` (and
:func:`fiqa_bench.metrics.edc.weighted_edc` and ``weighted_rethreshold``) compute a metric on a draw as if the
resample had been written out, by weighted counting instead of a new sort: the declared metrics use them as their
``replicate`` fast paths (:attr:`fiqa_bench.metrics.base.Metric.replicate`), each tested against the written-out
resample (``tests/test_uncertainty.py``). The bootstrap itself (subject counts,
intervals) is :mod:`fiqa_bench.pipeline.uncertainty`.
"""

from __future__ import annotations

import math

import numpy as np

from fiqa_bench.metrics.base import MetricOptions, PairData

__all__ = ["Draw", "Prepared", "pair_weights", "quantile_of_weighted", "weighted_tpr"]


def pair_weights(counts: np.ndarray, subject_a: np.ndarray, subject_b: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The weight of every pair in one resample (float64: exact integers)."""
    ca = counts[subject_a].astype(np.float64)
    w = np.where(labels == 1, ca, ca * counts[subject_b])
    return w


def quantile_of_weighted(sorted_values: np.ndarray, cum_weights: np.ndarray, q: float) -> float:
    """``np.quantile(np.repeat(sorted_values, weights), q)`` (linear method) without materialising the repeat:
    ``cum_weights`` is the cumulative weight along ``sorted_values`` (ascending)."""
    n = int(round(cum_weights[-1]))
    h = (n - 1) * q
    lo = math.floor(h)
    g = h - lo

    def at(i: int) -> float:
        return float(sorted_values[int(np.searchsorted(cum_weights, i, side="right"))])

    a = at(lo)
    b = at(min(lo + 1, n - 1))
    d = b - a
    return b - d * (1.0 - g) if g >= 0.5 else a + d * g


# ------------------------------------------------------------------------------------------ weighted metrics
class Prepared:
    """Per-dataset work done once for all resamples: sorts, orders, quality levels."""

    def __init__(self, data: PairData, options: MetricOptions):
        self.data = data
        self.options = options
        assert data.subject_a is not None and data.subject_b is not None  # a bootstrap over identities needs them
        y = data.labels == 1
        self.gen = np.flatnonzero(y)
        self.imp = np.flatnonzero(~y)
        s = data.scores
        self.g_order = self.gen[np.argsort(s[self.gen], kind="stable")]  # genuine ascending
        self.g_sorted = s[self.g_order].astype(np.float64)
        self._i_order: np.ndarray | None = None
        self.g_subject = data.subject_a[self.g_order]
        # At IJB-C scale the impostor side of TPR@FPR needs only the highest impostors (the FPR budget is at most
        # 10%) and the total impostor weight, which is the quadratic form c' N c of the subject-pair counts N
        # (computed for all resamples at once: one matrix product, exact in float64 for these integers).
        self.top = None
        self.w_neg = None  # (B,) total impostor weight per resample, set by replicates() when top is used
        n_subj = int(max(data.subject_a.max(initial=-1), data.subject_b.max(initial=-1))) + 1
        if self.imp.shape[0] > 200_000 and n_subj <= 6000:
            k = min(self.imp.shape[0], int(0.1 * self.imp.shape[0] * 1.3) + 4096)
            si = s[self.imp]
            part = np.argpartition(-si, k - 1)[:k] if k < si.shape[0] else np.arange(si.shape[0])
            top = self.imp[part[np.lexsort((part, -si[part].astype(np.float64)))]]  # descending, stable
            self.top = (data.subject_a[top].astype(np.intp), data.subject_b[top].astype(np.intp))
            self.top_sorted_desc = s[top].astype(np.float64)
            sa, sb = data.subject_a[self.imp], data.subject_b[self.imp]
            self.pair_counts = (
                np.bincount(sa.astype(np.int64) * n_subj + sb, minlength=n_subj * n_subj)
                .reshape(n_subj, n_subj)
                .astype(np.float64)
            )
        self.levels = None
        self._quality_levels(data)

    @property
    def i_order(self) -> np.ndarray:
        """Impostor pairs in descending score order (stable), sorted on first use only."""
        if self._i_order is None:
            s = self.data.scores
            self._i_order = self.imp[np.argsort(-s[self.imp].astype(np.float64), kind="stable")]
            self._i_sorted_desc = s[self._i_order].astype(np.float64)
        return self._i_order

    @property
    def i_sorted_desc(self) -> np.ndarray:
        _ = self.i_order  # sorts on first use, which sets _i_sorted_desc
        return self._i_sorted_desc

    def _quality_levels(self, data: PairData) -> None:
        if data.has_quality:
            if data.quality_codes is not None:
                codes = np.asarray(data.quality_codes)
                present = np.bincount(codes) > 0
                codes = (np.cumsum(present) - 1)[codes]
                self.levels, self.n_levels = codes, int(present.sum())
            else:
                import pandas as pd

                codes, uniques = pd.factorize(data.quality, sort=True)
                self.levels, self.n_levels = codes, len(uniques)


class Draw:
    """One resample: the subject counts, and pair weights computed only where a metric asks for them."""

    def __init__(self, p: Prepared, counts: np.ndarray, index: int | None = None):
        self.p = p
        self.counts = counts
        self.index = index
        self._w: np.ndarray | None = None

    @property
    def w(self) -> np.ndarray:
        if self._w is None:
            d = self.p.data
            assert d.subject_a is not None and d.subject_b is not None  # checked in Prepared
            self._w = pair_weights(self.counts, d.subject_a, d.subject_b, d.labels)
        return self._w

    def genuine_sorted(self) -> np.ndarray:
        """Weights of the genuine pairs in ascending score order."""
        return self.counts[self.p.g_subject].astype(np.float64)


def weighted_tpr(p: Prepared, draw: Draw, targets: list[str]) -> dict[str, float]:
    """Conservative TPR@FPR on weighted pairs (the reading a deployed threshold honours)."""
    wg = draw.genuine_sorted()
    cum_i = None
    desc = None
    if p.top is not None:
        c = draw.counts
        if p.w_neg is not None and draw.index is not None:
            W_neg = float(p.w_neg[draw.index])
        else:
            cf = c.astype(np.float64)
            W_neg = float(cf @ p.pair_counts @ cf)
        cum_i = np.cumsum(c[p.top[0]].astype(np.int64) * c[p.top[1]])
        desc = p.top_sorted_desc
        if cum_i.shape[0] and cum_i[-1] <= 0.1 * W_neg * (1 + 1e-12) + 1:
            cum_i = None  # this resample's budget reaches past the highest impostors kept: use them all
    if cum_i is None:
        wi = draw.w[p.i_order]
        W_neg = wi.sum()
        cum_i = np.cumsum(wi)
        desc = p.i_sorted_desc
    assert desc is not None  # set with cum_i, above
    W_pos = wg.sum()
    out = {}
    if W_pos == 0 or W_neg == 0:
        return {k: math.nan for k in targets}
    cum_g = np.cumsum(wg)
    for key in targets:
        t = float(key)
        if t * W_neg * (1 + 1e-12) < 1:
            out[key] = math.nan
            continue
        allowed = math.floor(t * W_neg * (1 + 1e-12))
        j = int(np.searchsorted(cum_i, allowed, side="right"))  # first impostor whose weight passes the budget
        if j >= cum_i.shape[0]:
            v = -math.inf
        else:
            v = desc[j]
        k = int(np.searchsorted(p.g_sorted, v, side="right"))  # genuine scores <= v are rejected
        rejected = cum_g[k - 1] if k > 0 else 0.0
        out[key] = float((W_pos - rejected) / W_pos)
    return out
