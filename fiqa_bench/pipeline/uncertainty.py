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

import numpy as np

from fiqa_bench.metrics.base import MetricOptions, PairData, get_metric
from fiqa_bench.metrics.resample import Draw, Prepared

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
        out = {
            "B": self.B,
            "level": self.level,
            "method": METHOD,
            "unit": UNIT,
            "seed": self.seed,
            "weights": "genuine pair of subject s: c_s; impostor pair of s, t: c_s * c_t",
        }
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


def _materialised(data: PairData, w: np.ndarray) -> PairData:
    """The resample written out: every pair repeated by its weight (the reference for the fast paths)."""
    idx = np.repeat(np.arange(data.scores.shape[0]), w.astype(np.int64))
    return PairData(scores=data.scores[idx], labels=data.labels[idx], folds=data.folds[idx], quality=data.quality[idx])


def replicate_values(key: str, p: Prepared, draw: Draw, value: dict) -> dict[str, float]:
    """Headline values (short name -> number, NaN where undefined) of metric ``key`` on one resample (a
    :class:`~fiqa_bench.metrics.resample.Draw`): the metric's weighted fast path where it declares one
    (:attr:`~fiqa_bench.metrics.base.Metric.replicate`), else the metric computed on the resample written out."""
    metric = get_metric(key)
    shorts = [short for short, _ in metric.columns(value)]
    o = p.options
    if metric.replicate is not None:
        fast = metric.replicate(draw, shorts, o)
        if fast is not None:
            return fast
    # a metric without a fast path for these options (accuracy, the nearest TPR reading, a new metric): the
    # resample written out
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


def replicates(
    data: PairData,
    metrics: dict[str, dict],
    options: MetricOptions,
    boot: BootstrapOptions,
    *,
    progress: bool = False,
    counts: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """``{key: (B, columns) float64}``: every metric's headline values on every resample (NaN where undefined).
    ``progress``: a progress bar of the resamples on stderr (tqdm, like the stages' bars). ``counts``: the (B, S)
    subject counts to use (:func:`subject_counts` of a larger pair list whose subject codes ``data`` shares, so that
    subsets of it are resampled together, resample by resample); default: drawn here from ``boot``."""
    if data.subject_a is None or data.subject_b is None:
        raise ValueError("a bootstrap over subjects needs each pair's subjects")
    n_subjects = int(max(data.subject_a.max(initial=-1), data.subject_b.max(initial=-1))) + 1
    if counts is None:
        counts = subject_counts(n_subjects, boot.B, boot.seed)
    else:
        counts = counts[:, :n_subjects]
    p = Prepared(data, options)
    if p.top is not None:  # every resample's total impostor weight in one product
        cf = counts.astype(np.float64)
        p.w_neg = np.einsum("bs,bs->b", cf @ p.pair_counts, cf)
    keys = [k for k, v in metrics.items() if isinstance(v, dict) and "unavailable" not in v]
    out = {k: np.full((boot.B, len(get_metric(k).columns(metrics[k]))), np.nan) for k in keys}
    from fiqa_bench.pipeline.stages import progress_bar

    for b in progress_bar(range(boot.B), boot.B, "bootstrap", progress, unit="resample"):
        draw = Draw(p, counts[b], b)
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


def bootstrap(
    data: PairData, metrics: dict[str, dict], options: MetricOptions, boot: BootstrapOptions, *, progress: bool = False
) -> tuple[dict[str, dict], dict[str, np.ndarray]]:
    """(metrics with intervals, replicate matrices). The replicates go into the run's ``.npz`` (``boot_<key>``), so
    two runs on the same pairs, subjects, B and seed can be compared resample by resample
    (:mod:`fiqa_bench.results.compare`).
    Always computed here; :func:`fiqa_bench.pipeline.replicate_store.bootstrap_reusing` is the same with the replicate
    store (what ``fiqa-bench run`` uses)."""
    if boot.B <= 0:
        return metrics, {}
    reps = replicates(data, metrics, options, boot, progress=progress)
    return intervals_from(metrics, reps, boot), reps


def add_intervals(
    data: PairData, metrics: dict[str, dict], options: MetricOptions, boot: BootstrapOptions
) -> dict[str, dict]:
    """``metrics`` with bootstrap intervals (see :func:`bootstrap`)."""
    return bootstrap(data, metrics, options, boot)[0]
