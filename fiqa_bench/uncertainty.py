"""Bootstrap confidence intervals over **subjects** (identities) for every declared metric, and paired comparisons.

Our benchmarks are small: one genuine pair can be a whole TPR point. Pairs that share a person are not independent,
so the unit resampled is the subject, with replacement (seeded): a resample draws ``S`` subjects out of the ``S``
present, subject ``s`` drawn ``c_s`` times. A genuine pair of subject ``s`` then counts ``c_s`` times, an impostor
pair of subjects ``s, t`` counts ``c_s * c_t`` times (every copy of one against every copy of the other); a pair of a
subject not drawn is absent. Each metric is recomputed on that weighted data — exactly as if the resampled pair list
had been written out (the weighted fast paths are tested against materialised resamples) — and the interval is the
percentile interval of the B replicates (default B = 1000, 95%).

The scores are sorted once; each resample is then weighted counting (cumulative sums, ``bincount``), never a new
sort, so B = 1000 on an IJB-C-sized list takes seconds to a minute (``benchmarks/bench_ijbc_scale.py``).
A paired comparison uses the **same** resamples for two runs on the same pairs (same protocol and pair list) and
gives the interval of the difference; a difference whose interval excludes zero is called significant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .metrics.base import MetricOptions, PairData, get_metric
from .metrics.edc import PAUC_LIMITS, pauc, EDCCurve

DEFAULT_B = 1000
DEFAULT_LEVEL = 0.95
METHOD = "percentile"
UNIT = "subject"


@dataclass(frozen=True)
class BootstrapOptions:
    B: int = DEFAULT_B
    level: float = DEFAULT_LEVEL
    seed: int = 0

    def describe(self, valid: dict | None = None) -> dict:
        out = {"B": self.B, "level": self.level, "method": METHOD, "unit": UNIT, "seed": self.seed,
               "weights": "genuine pair of subject s: c_s; impostor pair of s, t: c_s * c_t"}
        if valid is not None:
            out["valid_replicates"] = valid
        return out


def subject_counts(n_subjects: int, B: int, seed: int) -> np.ndarray:
    """(B, S) int32: how often each subject is drawn in each resample (S draws with replacement)."""
    rng = np.random.default_rng(seed)
    out = np.empty((B, n_subjects), dtype=np.int32)
    for b in range(B):
        out[b] = np.bincount(rng.integers(0, n_subjects, size=n_subjects), minlength=n_subjects)
    return out


def pair_weights(counts: np.ndarray, subject_a: np.ndarray, subject_b: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The weight of every pair in one resample (float64: exact integers)."""
    ca = counts[subject_a].astype(np.float64)
    w = np.where(labels == 1, ca, ca * counts[subject_b])
    return w


def _quantile_of_weighted(sorted_values: np.ndarray, cum_weights: np.ndarray, q: float) -> float:
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
class _Prepared:
    """Per-dataset work done once for all resamples: sorts, orders, quality levels."""

    def __init__(self, data: PairData, options: MetricOptions):
        self.data = data
        self.options = options
        y = data.labels == 1
        self.gen = np.flatnonzero(y)
        self.imp = np.flatnonzero(~y)
        s = data.scores
        self.g_order = self.gen[np.argsort(s[self.gen], kind="stable")]  # genuine ascending
        self.g_sorted = s[self.g_order].astype(np.float64)
        self._i_order = None
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
            self.pair_counts = np.bincount(sa.astype(np.int64) * n_subj + sb, minlength=n_subj * n_subj) \
                .reshape(n_subj, n_subj).astype(np.float64)
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
        self.i_order
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


class _Draw:
    """One resample: the subject counts, and pair weights computed only where a metric asks for them."""

    def __init__(self, p: _Prepared, counts: np.ndarray, index: int | None = None):
        self.p = p
        self.counts = counts
        self.index = index
        self._w = None

    @property
    def w(self) -> np.ndarray:
        if self._w is None:
            d = self.p.data
            self._w = pair_weights(self.counts, d.subject_a, d.subject_b, d.labels)
        return self._w

    def genuine_sorted(self) -> np.ndarray:
        """Weights of the genuine pairs in ascending score order."""
        return self.counts[self.p.g_subject].astype(np.float64)


def _tpr_values(p: "_Prepared", draw: "_Draw", targets: list[str]) -> dict[str, float]:
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


def _weighted_edc(p: _Prepared, draw: "_Draw", error: str, start: float) -> EDCCurve | None:
    """Fixed-threshold EDC of one class on weighted pairs, as if the resample were written out."""
    if error == "fnm":
        order = p.g_order  # ascending scores
        vals = p.g_sorted
        ww = draw.genuine_sorted()
        cum = np.cumsum(ww)
        if cum.shape[0] == 0 or cum[-1] == 0:
            return None
        thr = _quantile_of_weighted(vals, cum, start)
        wrong = vals < thr
    else:
        order = p.i_order[::-1]  # ascending scores
        vals = p.i_sorted_desc[::-1]
        ww = draw.w[order]
        cum = np.cumsum(ww)
        if cum.shape[0] == 0 or cum[-1] == 0:
            return None
        thr = _quantile_of_weighted(vals, cum, 1.0 - start)
        wrong = vals >= thr
    lv = p.levels[order]
    per_level = np.bincount(lv, weights=ww, minlength=p.n_levels)  # empty levels are dropped below
    err_level = np.bincount(lv[wrong], weights=ww[wrong], minlength=p.n_levels)
    used = per_level > 0
    per_level, err_level = per_level[used], err_level[used]
    n = per_level.sum()
    discard = np.r_[0.0, np.cumsum(per_level)[:-1]]
    errors_left = err_level.sum() - np.r_[0.0, np.cumsum(err_level)[:-1]]
    e = errors_left / (n - discard)
    return EDCCurve(np.r_[discard / n, 1.0], np.r_[e, 0.0], thr, int(n), error)


def _weighted_rethreshold(p: _Prepared, w: np.ndarray, fmr: float) -> EDCCurve | None:
    """Re-threshold EDC on weighted pairs (fiqa_bench.metrics.edc.rethreshold_edc's rule, weights as counts)."""
    per_level = np.bincount(p.levels, weights=w, minlength=p.n_levels)
    present = per_level > 0  # levels this resample has: the written-out resample would know only these
    remap = np.maximum(np.cumsum(present) - 1, 0)  # pairs of empty levels weigh 0 wherever they land
    per_level = per_level[present]
    n_levels = per_level.shape[0]
    n = per_level.sum()
    if n == 0:
        return None
    below = np.r_[0.0, np.cumsum(per_level)]
    g_lv, g_w = remap[p.levels[p.g_order]], w[p.g_order]
    i_lv, i_w = remap[p.levels[p.i_order]], w[p.i_order]
    i_at = np.r_[0.0, np.cumsum(np.bincount(i_lv, weights=i_w, minlength=n_levels))]
    i_at = i_at[-1] - i_at  # impostor weight in levels >= j
    g_at = np.r_[0.0, np.cumsum(np.bincount(g_lv, weights=g_w, minlength=n_levels))]
    g_at = g_at[-1] - g_at
    m = min(i_w.shape[0], 8 * int(math.floor(fmr * i_w.sum())) + 1024)  # the highest impostors (see edc.py)
    top_lv, top_w = i_lv[:m], i_w[:m]
    d_out, e_out, last = [], [], -1
    for f in np.round(np.arange(0, 51) / 100.0, 2):
        want = math.ceil(f * n - 1e-9)
        level = int(np.searchsorted(below, want, side="left"))
        if level >= n_levels or level == last:
            continue
        last = level
        n_g, n_i = g_at[level], i_at[level]
        if n_g == 0:
            continue
        k = math.floor(fmr * n_i * (1 + 1e-12))
        cum = np.cumsum(np.where(top_lv >= level, top_w, 0.0))
        if cum.shape[0] and cum[-1] > k:
            j = int(np.searchsorted(cum, k, side="right"))
        else:
            cum = np.cumsum(np.where(i_lv >= level, i_w, 0.0))
            j = int(np.searchsorted(cum, k, side="right"))
        v = -math.inf if j >= cum.shape[0] else p.i_sorted_desc[j]
        gk = (g_lv >= level) & (p.g_sorted <= v)
        d_out.append(below[level] / n)
        e_out.append(float(g_w[gk].sum() / n_g))
    return EDCCurve(np.r_[d_out, 1.0], np.r_[e_out, 0.0], None, int(n), "fnm-rethreshold")


def _materialised(data: PairData, w: np.ndarray) -> PairData:
    """The resample written out: every pair repeated by its weight (the reference for the fast paths)."""
    idx = np.repeat(np.arange(data.scores.shape[0]), w.astype(np.int64))
    return PairData(scores=data.scores[idx], labels=data.labels[idx], folds=data.folds[idx], quality=data.quality[idx])


def replicate_values(key: str, p: _Prepared, draw, value: dict) -> dict[str, float]:
    """Headline values (short name -> number, NaN where undefined) of metric ``key`` on one resample (a
    :class:`_Draw`)."""
    metric = get_metric(key)
    shorts = [short for short, _ in metric.columns(value)]
    o = p.options
    if key == "tpr_at_fpr" and o.fpr_reading == "conservative":
        return _tpr_values(p, draw, shorts)
    if key in ("edc_fnm", "edc_fm"):
        curve = _weighted_edc(p, draw, "fnm" if key == "edc_fnm" else "fm",
                              o.fnm_start if key == "edc_fnm" else o.fm_start)
        return {s: (pauc(curve, float(s)) if curve is not None else math.nan) for s in shorts}
    if key == "edc_fnm_rethreshold":
        curve = _weighted_rethreshold(p, draw.w, o.rethreshold_fmr)
        return {s: (pauc(curve, float(s)) if curve is not None else math.nan) for s in shorts}
    # any other metric (accuracy, the nearest TPR reading, a new metric): the resample written out
    sample = _materialised(p.data, draw.w)
    why = metric.unavailable(sample)
    if why is not None:
        return {s: math.nan for s in shorts}
    try:
        again = metric.compute(sample, o)
    except ValueError:
        return {s: math.nan for s in shorts}
    got = dict(metric.columns(again))
    return {s: (math.nan if got.get(s) is None else float(got[s])) for s in shorts}


def replicates(data: PairData, metrics: dict[str, dict], options: MetricOptions,
               boot: BootstrapOptions, *, progress: bool = False) -> dict[str, np.ndarray]:
    """``{key: (B, columns) float64}``: every metric's headline values on every resample (NaN where undefined).
    ``progress``: a progress bar of the resamples on stderr (tqdm, like the stages' bars)."""
    if data.subject_a is None or data.subject_b is None:
        raise ValueError("a bootstrap over subjects needs each pair's subjects")
    n_subjects = int(max(data.subject_a.max(initial=-1), data.subject_b.max(initial=-1))) + 1
    counts = subject_counts(n_subjects, boot.B, boot.seed)
    p = _Prepared(data, options)
    if p.top is not None:  # every resample's total impostor weight in one product
        cf = counts.astype(np.float64)
        p.w_neg = np.einsum("bs,bs->b", cf @ p.pair_counts, cf)
    keys = [k for k, v in metrics.items() if isinstance(v, dict) and "unavailable" not in v]
    out = {k: np.full((boot.B, len(get_metric(k).columns(metrics[k]))), np.nan) for k in keys}
    from .stages import progress_bar

    for b in progress_bar(range(boot.B), boot.B, "bootstrap", progress, unit="resample"):
        draw = _Draw(p, counts[b], b)
        for k in keys:
            vals = replicate_values(k, p, draw, metrics[k])
            out[k][b] = [vals[s] for s, _ in get_metric(k).columns(metrics[k])]
    return out


def percentile_interval(values: np.ndarray, level: float) -> list[float] | None:
    ok = values[np.isfinite(values)]
    if ok.shape[0] == 0:
        return None
    lo, hi = np.percentile(ok, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return [float(lo), float(hi)]


def intervals_from(metrics: dict[str, dict], reps: dict[str, np.ndarray], boot: BootstrapOptions) -> dict[str, dict]:
    """``metrics`` with ``intervals`` ({short name: [low, high] or None}) and ``bootstrap`` (method, B, level, seed,
    valid replicates) added to every metric that has replicates."""
    out = dict(metrics)
    for key, matrix in reps.items():
        shorts = [short for short, _ in get_metric(key).columns(metrics[key])]
        value = dict(metrics[key])
        value["intervals"] = {s: percentile_interval(matrix[:, j], boot.level) for j, s in enumerate(shorts)}
        value["bootstrap"] = boot.describe({s: int(np.isfinite(matrix[:, j]).sum()) for j, s in enumerate(shorts)})
        out[key] = value
    return out


def bootstrap(data: PairData, metrics: dict[str, dict], options: MetricOptions,
              boot: BootstrapOptions, *, progress: bool = False) -> tuple[dict[str, dict], dict[str, np.ndarray]]:
    """(metrics with intervals, replicate matrices). The replicates go into the run's ``.npz`` (``boot_<key>``), so
    two runs on the same pairs, subjects, B and seed can be compared resample by resample (:mod:`fiqa_bench.compare`).
    Always computed here; :func:`fiqa_bench.replicate_store.bootstrap_reusing` is the same with the replicate
    store (what ``fiqa-bench run`` uses)."""
    if boot.B <= 0:
        return metrics, {}
    reps = replicates(data, metrics, options, boot, progress=progress)
    return intervals_from(metrics, reps, boot), reps


def add_intervals(data: PairData, metrics: dict[str, dict], options: MetricOptions,
                  boot: BootstrapOptions) -> dict[str, dict]:
    """``metrics`` with bootstrap intervals (see :func:`bootstrap`)."""
    return bootstrap(data, metrics, options, boot)[0]
