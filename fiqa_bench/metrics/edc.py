"""The error-versus-discard characteristic (EDC, ISO/IEC 29794-1:2024) and its partial area (pAUC).

A quality method is useful when discarding the comparisons of its lowest-quality samples removes errors faster
than it removes comparisons. The EDC plots the error that remains against the fraction of comparisons discarded.
Defined here as ISO/IEC 29794-1 and the reference code of Schlett et al. ("Considerations on the evaluation of
biometric quality assessment algorithms", IEEE T-BIOM 2023; dasec/quality-assessment-evaluation ``edc.py``) do
(written anew here):

* pairwise quality = the **min** of the two samples' qualities (``mean`` and ``product`` as options);
* the comparison threshold is fixed **once, before any discard**: for the FNM-EDC (mated comparisons only) the
  ``start_error`` quantile of the mated scores (``numpy.quantile``, linear interpolation), for the FM-EDC
  (non-mated comparisons only) the ``1 - start_error`` quantile of the non-mated scores;
* an error is a mated score ``< threshold`` (false non-match) or a non-mated score ``>= threshold`` (false match);
* comparisons are discarded in ascending pair quality, **ties together** (every discard point is a boundary
  between two distinct pair qualities); error = errors remaining / comparisons remaining; the curve ends at the
  point (1, 0) (everything discarded);
* pAUC: the area under the step function up to a discard-fraction limit (0.20 and 0.30 here), reported raw and
  minus the area under the theoretical best curve ``max(0, e0 - d)`` (errors discarded first), ``e0`` the error at
  no discard.

The **re-threshold** variant used by CR-FIQA and MagFace papers ("ERC", FNMR at a fixed FMR) recomputes the
threshold at every discard step: see :func:`rethreshold_edc`. It answers another question (how good the remaining
comparisons are at their own operating point) and gives other numbers: results label it separately.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from fiqa_bench.metrics.base import MetricOption, fraction_key
from fiqa_bench.metrics.resample import quantile_of_weighted
from fiqa_bench.results.fields import ANY, Map, Num, Text

PAIR_QUALITY_MODES = ("min", "mean", "product")

# The settings of the EDC family, declared once and shared by the three EDC metrics (fiqa_bench.metrics.base).

PAIR_QUALITY = MetricOption(
    "pair_quality",
    "min",
    "Pairwise quality for EDC from the two sides' qualities.",
    choices=PAIR_QUALITY_MODES,
    digest=("edc", "pair_quality"),
    every_run=True,
)
FNM_START = MetricOption(
    "fnm_start",
    0.05,
    "FNM-EDC: starting FNMR that fixes the threshold.",
    flag="--edc-fnmr",
    min=0.0,
    max=1.0,
    digest=("edc", "fnm_start"),
    every_run=True,
)
FM_START = MetricOption(
    "fm_start",
    1e-3,
    "FM-EDC: starting FMR that fixes the threshold.",
    flag="--edc-fmr",
    min=0.0,
    max=1.0,
    digest=("edc", "fm_start"),
    every_run=True,
)
RETHRESHOLD_FMR = MetricOption(
    "rethreshold_fmr",
    1e-3,
    "Re-threshold EDC (CR-FIQA/MagFace): the FMR the threshold is recomputed at.",
    flag="--erc-fmr",
    min=0.0,
    max=1.0,
    digest=("edc", "rethreshold_fmr"),
    every_run=True,
)
EDC_ERRORS = ("fnm", "fm")
PAUC_LIMITS = (0.20, 0.30)
pair_quality_note = (
    "pair quality: min of the two sides' qualities by default (mean, product: options); on template "
    "protocols a side's quality is that of the image(s) kept for it (top1: the kept image; topk: "
    "the mean of the k kept; weighted and all: the best image of the template)"
)

__all__ = [
    "EDCCurve",
    "PAIR_QUALITY_MODES",
    "PAUC_LIMITS",
    "edc",
    "edc_threshold",
    "pair_quality",
    "pauc",
    "pauc_values",
    "rethreshold_edc",
    "theoretical_best_area",
    "weighted_edc",
    "weighted_rethreshold",
]


@dataclass(frozen=True)
class EDCCurve:
    """One EDC: ``discard_fractions`` ascending from 0 and ``error_fractions`` at each (the last point is (1, 0));
    ``threshold`` the comparison threshold (None for the re-threshold variant), ``comparisons`` the count."""

    discard_fractions: np.ndarray
    error_fractions: np.ndarray
    threshold: float | None
    comparisons: int
    kind: str

    @property
    def start_error(self) -> float:
        return float(self.error_fractions[0])


def pair_quality(quality_a, quality_b, mode: str = "min") -> np.ndarray:
    """The quality of a comparison from its two samples' qualities (float64)."""
    a = np.asarray(quality_a, dtype=np.float64)
    b = np.asarray(quality_b, dtype=np.float64)
    if mode == "min":
        return np.minimum(a, b)
    if mode == "mean":
        return (a + b) / 2.0
    if mode == "product":
        return a * b
    raise ValueError(f"pair quality mode must be one of {PAIR_QUALITY_MODES}, got {mode!r}")


def _check(scores, quality) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores)
    q = np.asarray(quality)
    if s.ndim != 1 or q.shape != s.shape:
        raise ValueError(f"scores and pair qualities must be 1-d of one length, got {s.shape} and {q.shape}")
    if s.shape[0] == 0:
        raise ValueError("an EDC needs at least one comparison")
    if not (np.isfinite(s).all() and np.isfinite(q).all()):
        raise ValueError("scores and pair qualities must be finite")
    return s, q


def edc_threshold(scores, start_error: float, error: str) -> float:
    """The fixed comparison threshold: ``np.quantile`` of the class's scores at ``start_error`` (FNM) or
    ``1 - start_error`` (FM)."""
    if error not in EDC_ERRORS:
        raise ValueError(f"error must be one of {EDC_ERRORS}, got {error!r}")
    if not 0.0 <= start_error <= 1.0:
        raise ValueError(f"start_error must lie in [0, 1], got {start_error!r}")
    s = np.asarray(scores, dtype=np.float64)
    return float(np.quantile(s, start_error if error == "fnm" else 1.0 - start_error))


def _quality_codes(q: np.ndarray, codes: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Ascending integer level of every pair quality (equal qualities, equal level), without sorting all pairs:
    hash the values and sort the few distinct ones (pair qualities take at most as many values as there are
    templates). ``codes``: levels the caller already has (e.g. template quality ranks, whose min is the rank of
    the min); levels may have gaps — empty levels are never a discard point."""
    if codes is not None:
        codes = np.asarray(codes)
        if codes.shape != q.shape or codes.dtype.kind not in "iu":
            raise ValueError("quality codes must be integers, one per comparison")
        return codes, int(codes.max()) + 1 if codes.shape[0] else 0
    import pandas as pd

    codes, uniques = pd.factorize(q, sort=True)
    return codes, int(len(uniques))


def edc(
    scores,
    quality,
    error: str = "fnm",
    start_error: float | None = 0.05,
    threshold: float | None = None,
    quality_codes=None,
) -> EDCCurve:
    """The EDC of one class of comparisons (``fnm``: mated scores, ``fm``: non-mated scores) and their pair
    qualities. Give ``start_error`` (the threshold is then :func:`edc_threshold`) or an explicit ``threshold``.
    ``quality_codes``: optional integer levels ordered like ``quality`` (a shortcut at IJB-C scale; same result)."""
    s, q = _check(scores, quality)
    if error not in EDC_ERRORS:
        raise ValueError(f"error must be one of {EDC_ERRORS}, got {error!r}")
    if threshold is None:
        if start_error is None:
            raise ValueError("give start_error or threshold")
        threshold = edc_threshold(s, start_error, error)
    threshold = float(threshold)
    wrong = s < threshold if error == "fnm" else s >= threshold
    codes, n_levels = _quality_codes(q, quality_codes)
    n = s.shape[0]
    per_level = np.bincount(codes, minlength=n_levels)
    errors_per_level = np.bincount(codes[wrong], minlength=n_levels)
    used = per_level > 0
    per_level, errors_per_level = per_level[used], errors_per_level[used]
    # discard point j: every comparison of the j lowest quality levels is gone
    discard_counts = np.r_[0, np.cumsum(per_level)[:-1]]
    errors_left = int(wrong.sum()) - np.r_[0, np.cumsum(errors_per_level)[:-1]]
    remaining = n - discard_counts
    error_fractions = errors_left / remaining
    discard_fractions = discard_counts / n
    return EDCCurve(np.r_[discard_fractions, 1.0], np.r_[error_fractions, 0.0], threshold, n, error)


def pauc(curve: EDCCurve, limit: float) -> float:
    """Area under the EDC's step function (each error fraction held until the next discard point) from 0 to
    ``limit``."""
    if not 0.0 <= limit <= 1.0:
        raise ValueError(f"the pAUC limit must lie in [0, 1], got {limit!r}")
    d = curve.discard_fractions
    e = curve.error_fractions
    if limit == 0.0:
        return 0.0
    right = np.minimum(np.r_[d[1:], 1.0], limit)
    widths = np.clip(right - d, 0.0, None)
    widths[d >= limit] = 0.0
    return float(np.sum(e * widths))


def theoretical_best_area(start_error: float, limit: float) -> float:
    """Area under ``max(0, e0 - d)`` from 0 to ``limit``: the EDC of a quality method that discards the errors
    first (the line the reference code subtracts)."""
    e0 = float(start_error)
    area = e0 * e0 / 2.0
    if limit < e0:
        area -= (e0 - limit) ** 2 / 2.0
    return area


def rethreshold_edc(
    genuine_scores,
    genuine_quality,
    impostor_scores,
    impostor_quality,
    fmr: float = 1e-3,
    fractions=None,
    genuine_codes=None,
    impostor_codes=None,
) -> EDCCurve:
    """The re-threshold variant (CR-FIQA / MagFace "ERC"): FNMR at FMR ``fmr`` with the threshold recomputed on the
    comparisons that remain at every discard step.

    Genuine and impostor comparisons are discarded together in ascending pair quality (ties together): at each
    fraction ``f`` of ``fractions`` (default 0, 0.01, ..., 0.50 of all comparisons), every comparison whose pair
    quality is below the quality at rank ``ceil(f * N)`` is gone. The threshold then rejects the
    ``floor(fmr * impostors left) + 1``-th highest remaining impostor score and everything at or below it (so
    FMR <= ``fmr``, the conservative reading), and the error is the fraction of remaining genuine comparisons
    rejected. The curve's last point is (1, 0); its x values are the fractions actually discarded.
    """
    gs, gq = _check(genuine_scores, genuine_quality)
    is_, iq = _check(impostor_scores, impostor_quality)
    if fractions is None:
        fractions = np.round(np.arange(0, 51) / 100.0, 2)
    fractions = np.asarray(fractions, dtype=np.float64)
    n = gq.shape[0] + iq.shape[0]
    if genuine_codes is not None and impostor_codes is not None:
        codes = np.concatenate([np.asarray(genuine_codes), np.asarray(impostor_codes)])
        present = np.bincount(codes) > 0  # compact the levels: an empty level is no discard point
        remap = np.cumsum(present) - 1
        codes, n_levels = remap[codes], int(present.sum())
    else:
        q_all = np.concatenate([gq, iq.astype(gq.dtype, copy=False)])  # in their own dtype: IJB-C has 15.6 M
        codes, n_levels = _quality_codes(q_all)
        del q_all
    per_level = np.bincount(codes, minlength=n_levels)
    below = np.r_[0, np.cumsum(per_level)]  # comparisons in the levels below level j
    g_codes = codes[: gs.shape[0]]
    i_codes = codes[gs.shape[0] :]
    n_imp = is_.shape[0]
    # candidates for the threshold: the highest impostor scores (a threshold at FMR <= fmr lies among them unless
    # the discard removed most of them; then the whole remaining set is searched)
    m = min(n_imp, 8 * int(math.floor(fmr * n_imp)) + 1024)
    top = np.argpartition(-is_, m - 1)[:m] if m < n_imp else np.arange(n_imp)
    top = top[np.argsort(-is_[top], kind="stable")]
    top_scores = is_[top].astype(np.float64)
    top_codes = i_codes[top]
    n_i_at = n_imp - np.r_[0, np.cumsum(np.bincount(i_codes, minlength=n_levels))]  # impostors in levels >= j
    d_out, e_out = [], []
    last_level = -1
    for f in fractions:
        want = int(math.ceil(f * n - 1e-9))
        level = int(np.searchsorted(below, want, side="left"))  # first level whose start discards >= want
        if level >= n_levels or level == last_level:
            continue
        last_level = level
        g_keep = g_codes >= level
        n_g = int(g_keep.sum())
        n_i = int(n_i_at[level])
        if n_g == 0:
            continue
        k = int(math.floor(fmr * n_i * (1.0 + 1e-12)))  # allowed false matches
        if k >= n_i:
            tau = -np.inf
        else:
            kept_top = top_scores[top_codes >= level]
            if kept_top.shape[0] > k:
                tau = float(kept_top[k])
            else:
                rest = is_[i_codes >= level].astype(np.float64)
                tau = float(np.partition(rest, n_i - 1 - k)[n_i - 1 - k])
        rejected = int((gs[g_keep] <= tau).sum())
        d_out.append(below[level] / n)
        e_out.append(rejected / n_g)
    return EDCCurve(np.r_[d_out, 1.0], np.r_[e_out, 0.0], None, n, "fnm-rethreshold")


# ------------------------------------------------------------------ on a bootstrap resample (weighted pairs)
def weighted_edc(p, draw, error: str, start: float) -> EDCCurve | None:
    """Fixed-threshold EDC of one class on one bootstrap resample (``p``: :class:`fiqa_bench.metrics.resample.Prepared`,
    ``draw``: its :class:`~fiqa_bench.metrics.resample.Draw`), as if the resample were written out."""
    if error == "fnm":
        order = p.g_order  # ascending scores
        vals = p.g_sorted
        ww = draw.genuine_sorted()
        cum = np.cumsum(ww)
        if cum.shape[0] == 0 or cum[-1] == 0:
            return None
        thr = quantile_of_weighted(vals, cum, start)
        wrong = vals < thr
    else:
        order = p.i_order[::-1]  # ascending scores
        vals = p.i_sorted_desc[::-1]
        ww = draw.w[order]
        cum = np.cumsum(ww)
        if cum.shape[0] == 0 or cum[-1] == 0:
            return None
        thr = quantile_of_weighted(vals, cum, 1.0 - start)
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


def weighted_rethreshold(p, w: np.ndarray, fmr: float) -> EDCCurve | None:
    """Re-threshold EDC on weighted pairs (:func:`rethreshold_edc`'s rule, weights ``w`` as counts; ``p``:
    :class:`fiqa_bench.metrics.resample.Prepared`)."""
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


def pauc_values(curve: EDCCurve | None, shorts) -> dict[str, float]:
    """{discard limit: pAUC of ``curve`` up to it} for the short names ``shorts`` (NaN without a curve)."""
    return {s: (pauc(curve, float(s)) if curve is not None else math.nan) for s in shorts}


def summary(curve: EDCCurve, limits=PAUC_LIMITS, subtract_best: bool = True) -> dict:
    """What a results file records of an EDC: pAUC at each limit (raw and, for fixed-threshold EDCs, minus the
    theoretical best), the error at no discard, the threshold and the comparison count."""
    raw = {f"{limit:.2f}": pauc(curve, limit) for limit in limits}
    out: dict[str, Any] = {"pauc": raw}
    if subtract_best:
        out["pauc_minus_best"] = {k: v - theoretical_best_area(curve.start_error, float(k)) for k, v in raw.items()}
    out.update(
        {
            "start_error": curve.start_error,
            "threshold": curve.threshold,
            "comparisons": curve.comparisons,
            "points": int(curve.discard_fractions.shape[0]),
        }
    )
    return out


#: The fields :func:`summary` records (the pAUCs are headline columns, checked in the metric's bounds).
SUMMARY_FIELDS = {
    "pauc": Map(ANY, key=fraction_key, key_expected="a discard limit like '0.20'"),
    "pauc_minus_best": Map(Num()),
    "start_error": Num(0, 1),
    "threshold": Num(null=True),
    "comparisons": Num(0, integer=True),
    "points": Num(0, integer=True),
}


def fixed_threshold_metric(key: str, error: str, label: str, digits: int, description: str):
    """The declared metric of a fixed-threshold EDC (``fnm``: mated comparisons, ``fm``: non-mated): both EDC modules
    are this one recipe with their class and starting error."""
    from fiqa_bench.metrics.base import Metric

    def compute(data, options) -> dict:
        chosen = data.labels == (1 if error == "fnm" else 0)
        start = options.fnm_start if error == "fnm" else options.fm_start
        codes = data.quality_codes[chosen] if data.quality_codes is not None else None
        curve = edc(data.scores[chosen], data.quality[chosen], error, start_error=start, quality_codes=codes)
        return {
            **summary(curve),
            "start_target": start,
            "pair_quality": options.pair_quality,
            "note": pair_quality_note,
        }

    def replicate(draw, shorts, options) -> dict:
        start = options.fnm_start if error == "fnm" else options.fm_start
        return pauc_values(weighted_edc(draw.p, draw, error, start), shorts)

    return Metric(
        label=label,
        joiner="@",
        key=key,
        title=label,
        needs=frozenset({"scores", "labels", "quality"}),
        higher_is_better=False,
        compute=compute,
        columns=lambda value: list((value.get("pauc") or {}).items()),
        scale=1.0,
        digits=digits,
        unit="",
        description=description,
        bounds=(0.0, 1.0),
        required=("pauc",),
        value_fields={**SUMMARY_FIELDS, "start_target": Num(0, 1), "pair_quality": Text(), "note": Text()},
        options=(PAIR_QUALITY, FNM_START if error == "fnm" else FM_START),
        replicate=replicate,
        tags=("edc",),  # the EDC family shares one LaTeX table (fiqa_bench.writers.latex)
    )
