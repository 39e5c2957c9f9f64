"""Balancing the quality-score distribution of the training set (Peng et al., section 3.4, Table 7, Fig. 5).

A good FR model puts most images close to their identity centre, so Eq. 1 labels pile up in a narrow band and a
regressor trained on them learns little about the tails. Section 3.4 rebalances them; our reading:

* **Scores.** Labels are cosines in [-1, 1]; the paper bins "from 0 to 1.0". We clip to [0, 1]
  (:func:`to_unit_interval`): a negative cosine means the image is farther from its identity than an unrelated
  face, i.e. unrecognisable, and lands in the lowest bin. Training targets use the same mapping (a sigmoid cannot
  output a negative value). NaN labels (no centre, see :mod:`.labels`) are always dropped.
* **random** strategy (Table 7): a uniform random subset of ``target_size`` images (without replacement), no
  identity filter: the histogram keeps its shape (Fig. 5/7, top row).
* **smooth** strategy (Table 7, section 3.4): (1) keep identities with at least ``min_images`` images (100 for
  MS-Celeb-1M in the paper; Table 7 notes the smooth sets have far fewer identities because of this filter);
  (2) cut [0, 1] into ``bins`` (100) equal-width bins; (3) flatten the histogram towards a common per-bin cap
  ``T``: a bin holding more than ``T`` images is down-sampled to ``T`` (without replacement: "the sampling rate
  is dependent on the number of images in a bin"), and the bins holding the lowest ``low_fraction`` (10%) and
  the highest ``high_fraction`` (5%) of the images are over-sampled by repetition up to
  ``min(T, max_repeat x their count)``; other bins keep what they have. ``T`` is chosen so that the result has
  ``target_size`` images (default: as many as after the identity filter, "the same number of training images
  for both strategies"). The paper says it down-samples "the remaining 80%" (100 - 10 - 5 = 85); we down-sample
  every over-full bin, tails included, which is what flattens the histogram (Fig. 5, bottom row).

Over-sampled images are repeated; :func:`sample_indices` returns row indices into the input (with repeats), so
augmentation (e.g. flips) can make repeats differ. Everything is drawn from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

STRATEGIES = ("random", "smooth")


def to_unit_interval(labels: np.ndarray) -> np.ndarray:
    """Cosine labels -> [0, 1] scores: negatives clipped to 0 (NaN stays NaN)."""
    return np.clip(np.asarray(labels, dtype=np.float64), 0.0, 1.0)


def bin_index(scores: np.ndarray, bins: int = 100) -> np.ndarray:
    """Equal-width bin of each score in [0, 1] (a score of exactly 1 falls in the last bin)."""
    s = to_unit_interval(scores)
    return np.minimum((s * bins).astype(np.int64), bins - 1)


def score_histogram(labels: np.ndarray, bins: int = 100) -> np.ndarray:
    """Counts per equal-width bin of [0, 1] of the finite labels (after :func:`to_unit_interval`)."""
    labels = np.asarray(labels, dtype=np.float64)
    return np.bincount(bin_index(labels[np.isfinite(labels)], bins), minlength=bins)


def flatness(counts: np.ndarray) -> float:
    """Coefficient of variation of the non-empty bins' counts (0 = perfectly flat)."""
    c = np.asarray(counts, dtype=np.float64)
    c = c[c > 0]
    return float(c.std() / c.mean()) if c.size else 0.0


def identity_filter(identities: np.ndarray | Sequence, min_images: int) -> np.ndarray:
    """Mask of rows whose identity has at least ``min_images`` rows."""
    ids = np.asarray(identities, dtype=object).astype(str)
    _, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    return counts[inverse] >= int(min_images)


def _tail_bins(b: np.ndarray, bins: int, low_fraction: float, high_fraction: float) -> np.ndarray:
    """Bins containing the lowest ``low_fraction`` / highest ``high_fraction`` of the images (by score order)."""
    tail = np.zeros(bins, bool)
    if b.size == 0:
        return tail
    order = np.sort(b)
    n_low = int(np.ceil(low_fraction * b.size))
    n_high = int(np.ceil(high_fraction * b.size))
    if n_low:
        tail[: order[n_low - 1] + 1] = True
    if n_high:
        tail[order[b.size - n_high] :] = True
    return tail


def _cap_for(counts: np.ndarray, limits: np.ndarray, target: int) -> float:
    """Smallest cap T with sum(min(limits, T)) >= target (bisection over the real line)."""
    if limits.sum() <= target:
        return float(limits.max(initial=0))
    lo, hi = 0.0, float(limits.max())
    for _ in range(100):
        mid = (lo + hi) / 2
        if np.minimum(limits, mid).sum() >= target:
            hi = mid
        else:
            lo = mid
    return hi


def _smooth(
    scores: np.ndarray,
    rows: np.ndarray,
    target: int,
    rng: np.random.Generator,
    bins: int,
    low_fraction: float,
    high_fraction: float,
    max_repeat: int,
) -> np.ndarray:
    b = bin_index(scores[rows], bins)
    counts = np.bincount(b, minlength=bins)
    tail = _tail_bins(b, bins, low_fraction, high_fraction)
    limits = np.where(tail, counts * int(max_repeat), counts).astype(np.float64)
    cap = _cap_for(counts, limits, target)
    want = np.minimum(limits, cap)
    # integer sizes that sum to exactly min(target, limits.sum()): floor, then largest remainders
    size = np.floor(want).astype(np.int64)
    short = int(min(target, int(limits.sum()))) - int(size.sum())
    if short > 0:
        room = np.flatnonzero(size < limits)
        frac = (want - size)[room]
        size[room[np.argsort(-frac, kind="stable")[:short]]] += 1
    picked = []
    for k in np.flatnonzero(size):
        members = rows[b == k]
        m, need = members.size, int(size[k])
        if need <= m:
            picked.append(rng.choice(members, need, replace=False))
        else:  # every member once, then repeats drawn evenly
            reps, rest = divmod(need, m)
            picked.append(np.concatenate([np.tile(members, reps), rng.choice(members, rest, replace=False)]))
    out = np.concatenate(picked) if picked else np.zeros(0, np.int64)
    return np.sort(out)


def sample_indices(
    labels: np.ndarray,
    identities: np.ndarray | Sequence | None = None,
    *,
    strategy: str = "smooth",
    target_size: int | None = None,
    min_images: int = 100,
    bins: int = 100,
    low_fraction: float = 0.10,
    high_fraction: float = 0.05,
    max_repeat: int = 10,
    seed: int = 0,
) -> np.ndarray:
    """Row indices (int64, sorted, repeats allowed) of the rebalanced training set; see the module docstring.

    ``target_size`` defaults to the number of usable rows (finite label; for ``smooth``, identity kept).
    ``identities`` is needed by ``smooth`` (identity filter); ``min_images=0`` switches the filter off.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    labels = np.asarray(labels, dtype=np.float64).reshape(-1)
    rng = np.random.default_rng(seed)
    usable = np.isfinite(labels)
    if strategy == "random":
        rows = np.flatnonzero(usable)
        target = rows.size if target_size is None else int(target_size)
        if target > rows.size:
            raise ValueError(f"random sampling cannot draw {target} distinct images from {rows.size}")
        return np.sort(rng.choice(rows, target, replace=False))
    if identities is None:
        if min_images > 1:
            raise ValueError("smooth sampling filters identities: pass identities (or min_images=0)")
    else:
        if len(identities) != labels.size:
            raise ValueError(f"{len(identities)} identities for {labels.size} labels")
        usable &= identity_filter(identities, min_images)
    rows = np.flatnonzero(usable)
    target = rows.size if target_size is None else int(target_size)
    return _smooth(to_unit_interval(labels), rows, target, rng, bins, low_fraction, high_fraction, max_repeat)


def plot_histograms(
    before: np.ndarray,
    after: np.ndarray,
    path: str | os.PathLike,
    *,
    bins: int = 100,
    titles: tuple[str, str] = ("before sampling", "after sampling"),
) -> None:
    """Fig. 5 style: the score histograms of two label arrays side by side, written as a PNG (atomically)."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    from fiqa_bench.data.atomic import atomic_path

    fig = Figure(figsize=(9, 3.2), dpi=100)
    edges = np.linspace(0.0, 1.0, bins + 1)
    for i, (labels, title) in enumerate(zip((before, after), titles)):
        ax = fig.add_subplot(1, 2, i + 1)
        counts = score_histogram(labels, bins)
        ax.bar(edges[:-1], counts, width=1.0 / bins, align="edge", color="#4477aa")
        ax.set_title(f"{title} (n={int(counts.sum())})")
        ax.set_xlabel("quality score")
        ax.set_ylabel("images")
        ax.set_xlim(0.0, 1.0)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
