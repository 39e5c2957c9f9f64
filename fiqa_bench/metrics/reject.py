"""NIST-style error-versus-reject curves: FNMR at a threshold fixed at a target FMR, against the fraction rejected.

The curve NIST draws in its face image quality evaluations (FRVT Part 5 / FATE Quality, "FNMR vs. Reject"; the
error-versus-reject characteristic of P. Grother and E. Tabassi, "Performance of biometric quality measures", IEEE
TPAMI 29(4), 2007): the discard procedure of ISO/IEC 29794-1:2024's error-versus-discard characteristic (EDC; see
:mod:`fiqa_bench.metrics.edc`), with the threshold fixed at a target FMR instead of a starting FNMR:

* the decision threshold is fixed **once, before any rejection**, on all comparisons, at the target FMR: the
  conservative reading of :func:`fiqa_bench.metrics.verification.tpr_at_fpr_detailed` (the largest set of accepted
  comparisons whose FMR is at most the target; a comparison is accepted when ``score >= threshold``), so the
  starting FNMR is ``1 - TPR@FPR=target``;
* a mated comparison's quality is its pair quality (the **min** of the two sides' qualities by default, as the EDC's:
  option ``pair_quality``); mated comparisons are rejected in ascending pair quality, **ties together** (every point
  of the curve is a boundary between two distinct pair qualities); the x axis is the fraction of mated comparisons
  rejected and the y axis the false non-matches that remain over the mated comparisons that remain, at the same
  threshold; the curve ends at (1, 0) (everything rejected), as the EDC's does;
* the **ideal** curve rejects the false non-matches first: with ``E`` of ``n`` mated comparisons falsely rejected,
  ``r`` rejected leave ``(E - r) / (n - r)`` (reaching 0 at ``r = E``; NIST's "PERFECT" line ``max(FNMR - x, 0)``
  reaches 0 at the same fraction);
* the scalar is the **fraction that must be rejected to halve the starting FNMR**: the smallest rejection point
  whose FNMR is at most half the starting one (no interpolation between points). It is 1.0 when only rejecting
  every mated comparison gets there (``halved_before_all`` false), and undefined (None with a reason) when the
  starting FNMR is 0 (nothing to halve) or when the pair list has fewer than ``1 / FMR`` impostor comparisons (the
  FMR target cannot be measured, never extrapolated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fiqa_bench.metrics.edc import EDCCurve, edc
from fiqa_bench.metrics.verification import fpr_key, tpr_at_fpr_detailed

__all__ = ["RejectCurve", "halving_fraction", "ideal_curve", "ideal_halving_fraction", "reject_curve"]


@dataclass(frozen=True)
class RejectCurve:
    """One error-versus-reject curve: ``curve`` (rejected fractions of the mated comparisons and the FNMR at each,
    ending at (1, 0)) at ``threshold``, the threshold fixed at ``fmr`` on every comparison (``fmr_achieved``: the
    FMR it gives, at most ``fmr``); ``start_fnmr`` the FNMR before any rejection, ``false_non_matches`` of
    ``genuine`` mated comparisons, ``impostor`` the non-mated ones."""

    fmr: float
    threshold: float
    fmr_achieved: float
    curve: EDCCurve
    genuine: int
    impostor: int
    false_non_matches: int

    @property
    def start_fnmr(self) -> float:
        return self.curve.start_error

    @property
    def halving(self) -> float | None:
        return halving_fraction(self.curve)

    @property
    def ideal_halving(self) -> float | None:
        return ideal_halving_fraction(self.false_non_matches, self.genuine)


def halving_fraction(curve: EDCCurve) -> float | None:
    """The smallest rejected fraction of ``curve`` at which the FNMR is at most half the starting FNMR (None when the
    starting FNMR is 0: nothing to halve)."""
    e0 = float(curve.error_fractions[0])
    if e0 <= 0.0:
        return None
    hit = np.flatnonzero(curve.error_fractions <= e0 / 2.0)
    return float(curve.discard_fractions[hit[0]])  # the last point is (1, 0): there is always one


def ideal_curve(false_non_matches: int, genuine: int) -> tuple[np.ndarray, np.ndarray]:
    """The ideal curve: the false non-matches rejected first, one at a time (``r = 0 .. E``), then the point (1, 0):
    (rejected fractions ``r / n``, FNMR ``(E - r) / (n - r)``)."""
    e, n = int(false_non_matches), int(genuine)
    if n <= 0 or not 0 <= e <= n:
        raise ValueError(f"need 0 <= false non-matches <= genuine comparisons > 0, got {e} and {n}")
    r = np.arange(e + 1, dtype=np.float64)
    left = n - r
    fnmr = np.divide(e - r, left, out=np.zeros_like(r), where=left > 0)
    return np.r_[r / n, 1.0], np.r_[fnmr, 0.0]


def ideal_halving_fraction(false_non_matches: int, genuine: int) -> float | None:
    """The ideal curve's halving fraction: the fewest rejections ``r`` with ``(E - r) / (n - r) <= E / (2n)``, i.e.
    ``r = ceil(n E / (2n - E))``, over ``n`` (exact integer arithmetic); None when ``E = 0``."""
    e, n = int(false_non_matches), int(genuine)
    if e == 0 or n == 0:
        return None
    return (-(-(n * e) // (2 * n - e))) / n


def reject_curve(scores, labels, quality, fmr: float = 1e-3, quality_codes=None) -> RejectCurve | str:
    """The error-versus-reject curve of the comparisons (``scores``, ``labels`` 1 mated / 0 non-mated, pair
    ``quality``) with the threshold fixed at ``fmr`` on all of them before any rejection; or, when the FMR target
    cannot be measured on these comparisons (fewer than ``1 / fmr`` non-mated ones, no mated or no non-mated one),
    the reason as text. ``quality_codes``: optional integer levels ordered like ``quality`` (a shortcut; same
    result)."""
    s = np.asarray(scores)
    y = np.asarray(labels) == 1
    q = np.asarray(quality)
    key = fpr_key(fmr)
    point = tpr_at_fpr_detailed(s, y, [fmr], mode="conservative")[key]
    if point["tpr"] is None:
        return str(point["reason"]).replace("FPR", "FMR").replace("TPR", "FNMR")
    threshold = float(point["threshold"])
    genuine = s[y].astype(np.float64)
    codes = None if quality_codes is None else np.asarray(quality_codes)[y]
    curve = edc(genuine, q[y], "fnm", threshold=threshold, quality_codes=codes)
    n = int(genuine.shape[0])
    return RejectCurve(
        fmr=float(fmr),
        threshold=threshold,
        fmr_achieved=float(point["fpr_achieved"]),
        curve=curve,
        genuine=n,
        impostor=int(y.shape[0] - n),
        false_non_matches=int((genuine < threshold).sum()),
    )


# ------------------------------------------------------------------ on a bootstrap resample (weighted pairs)
def weighted_halving(p, draw, fmr: float) -> float:
    """:func:`halving_fraction` of one bootstrap resample (``p``: :class:`fiqa_bench.metrics.resample.Prepared`,
    ``draw``: its :class:`~fiqa_bench.metrics.resample.Draw`), as if the resample were written out; NaN where the
    resample has no value (the FMR not measurable on its impostor weight, or no false non-match)."""
    from fiqa_bench.metrics.resample import weighted_tpr

    key = fpr_key(fmr)
    tpr = weighted_tpr(p, draw, [key])[key]  # the threshold fixed at the FMR on the resample, as unweighted
    if math.isnan(tpr):
        return math.nan
    ww = draw.genuine_sorted()  # genuine weights, ascending score
    total = float(ww.sum())
    rejected = round(total * (1.0 - tpr))  # integer weights: the weight of the genuine scores at or below the cut
    cum = np.cumsum(ww)
    k = int(np.searchsorted(cum, rejected, side="left")) + 1 if rejected > 0 else 0  # the lowest-scored k
    lv = p.levels[p.g_order]
    wrong = np.arange(ww.shape[0]) < k
    per_level = np.bincount(lv, weights=ww, minlength=p.n_levels)
    err_level = np.bincount(lv[wrong], weights=ww[wrong], minlength=p.n_levels)
    used = per_level > 0
    per_level, err_level = per_level[used], err_level[used]
    discard = np.r_[0.0, np.cumsum(per_level)[:-1]]
    errors_left = err_level.sum() - np.r_[0.0, np.cumsum(err_level)[:-1]]
    fnmr = errors_left / (total - discard)
    got = halving_fraction(EDCCurve(np.r_[discard / total, 1.0], np.r_[fnmr, 0.0], None, int(total), "fnm"))
    return math.nan if got is None else got
