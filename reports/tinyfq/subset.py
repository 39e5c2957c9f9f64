"""A labelled set's rows for one ablation row: the photos with their first COPIES degraded copies, of a FRACTION
of the identities.

Why a subset and not a new `fiqa-bench label` run: the labels do not change. Eq. 1 centres are built from the
undegraded photos only and each photo is left out together with its copies, so dropping copies, or whole
identities, leaves every remaining row's label as it was; and a photo's copies are drawn in order from its own
generator (numpy.random.default_rng([seed, photo index]) in fiqa_bench.training.dataset.label_photos), so the first
K copies of a set built with more are the copies a `--degraded-copies K` run draws, provided the photo list is the
same. Embedding once for the largest set and selecting rows costs nothing.

    python reports/tinyfq/subset.py SET OUT --copies 1 [--identity-fraction 0.5] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np

from fiqa_bench.training.dataset import TrainingSet


def copy_index(sources: np.ndarray, degradations: list) -> np.ndarray:
    """Per row: 0 for the photo itself, k for its k-th degraded copy (rows of a photo are consecutive, photo
    first, as label_photos writes them)."""
    out = np.zeros(len(sources), np.int64)
    for i in range(1, len(sources)):
        out[i] = 0 if degradations[i] is None else (out[i - 1] + 1 if sources[i] == sources[i - 1] else -1)
    if (out < 0).any():
        raise ValueError("a degraded copy does not follow its photo: not a set written by fiqa-bench label")
    return out


def select(ts: TrainingSet, copies: int, identity_fraction: float = 1.0, seed: int = 0) -> np.ndarray:
    """Row indices: copy index <= ``copies``, identities a seeded ``identity_fraction`` of the sorted ones."""
    keep = copy_index(ts.sources, ts.degradations) <= int(copies)
    if identity_fraction < 1.0:
        ids = np.unique(ts.identities)
        k = int(round(identity_fraction * ids.size))
        chosen = np.random.default_rng([int(seed), 31]).choice(ids, k, replace=False)
        keep &= np.isin(ts.identities, chosen)
    return np.flatnonzero(keep)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("set")
    ap.add_argument("out")
    ap.add_argument("--copies", type=int, required=True)
    ap.add_argument("--identity-fraction", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    ts = TrainingSet.load(a.set)
    rows = select(ts, a.copies, a.identity_fraction, a.seed)
    sub = ts.subset(rows)
    own = (
        f"python reports/tinyfq/subset.py {a.set} {a.out} --copies {a.copies}"
        + (f" --identity-fraction {a.identity_fraction}" if a.identity_fraction < 1.0 else "")
        + (f" --seed {a.seed}" if a.seed else "")
    )
    # the card of a model trained on the subset records both commands as its data command
    sub.meta = {
        **ts.meta,
        "command": f"{ts.meta.get('command', a.set)} && {own}",
        "subset": {"copies": a.copies, "identity_fraction": a.identity_fraction, "seed": a.seed},
    }
    sub.save(a.out)
    print(f"{len(rows)} of {len(ts)} rows, {np.unique(sub.identities).size} identities -> {a.out}")


if __name__ == "__main__":
    main()
