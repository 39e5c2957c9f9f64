"""Independent reference computations for exact assertions: plain Python loops over the pairs and images, written
from the definitions in the docstrings (never by calling the suite's code for the thing they check).

A test compares a run's recorded number with one of these, computed from the run's ``.npz`` (or from embeddings
the test computes itself), so the number is pinned exactly yet any change of the definition is noticed.
"""

from __future__ import annotations

import math

import numpy as np


# ------------------------------------------------------------------------------------------ selection
def best_rows(groups, quality, available, k: int) -> list[int]:
    """The ``k`` highest-quality available rows of every group (ties: the row listed first), ascending by group
    then by rank."""
    out = []
    for g in sorted(set(int(x) for x in groups)):
        members = [r for r in range(len(groups)) if int(groups[r]) == g and available[r]]
        ranked = sorted(members, key=lambda r: (-float(quality[r]), r))
        out += ranked[:k]
    return out


def template_quality_loop(kept_rows, groups, quality, how: str) -> dict[int, float]:
    """{group: quality} from the kept rows: ``mean`` or ``max`` of the kept images' qualities."""
    per: dict[int, list[float]] = {}
    for r in kept_rows:
        per.setdefault(int(groups[r]), []).append(float(quality[r]))
    if how == "max":
        return {g: max(v) for g, v in per.items()}
    return {g: sum(v) / len(v) for g, v in per.items()}


# ------------------------------------------------------------------------------------------ verification
def tpr_at_fpr_conservative(scores, labels, target: float) -> float | None:
    """The largest TPR among the thresholds (every distinct score, and +inf) whose false accepts number at most
    ``floor(target * impostors)``; None when the target is below one impostor's worth of FPR."""
    gen = [float(s) for s, y in zip(scores, labels) if int(y) == 1]
    imp = [float(s) for s, y in zip(scores, labels) if int(y) == 0]
    if target * len(imp) < 1 - 1e-9:
        return None
    allowed = math.floor(target * len(imp) + 1e-9)
    best = 0
    for t in sorted(set(gen + imp)) + [math.inf]:
        false_accepts = sum(1 for s in imp if s >= t)
        if false_accepts <= allowed:
            best = max(best, sum(1 for s in gen if s >= t))
    return best / len(gen)


def kfold_accuracy_loop(scores, labels, folds) -> dict:
    """Per held-out fold: the threshold (midpoints of distinct training scores, one below, one above) with the best
    training accuracy, the largest on ties; its accuracy on the held-out fold. ``mean`` is numpy's mean of those."""
    accs, chosen = [], []
    for fold in sorted(set(int(f) for f in folds)):
        train = [(float(s), int(y)) for s, y, f in zip(scores, labels, folds) if int(f) != fold]
        test = [(float(s), int(y)) for s, y, f in zip(scores, labels, folds) if int(f) == fold]
        u = sorted(set(s for s, _ in train))
        candidates = (
            [min(u[0] - 1.0, np.nextafter(u[0], -np.inf))]
            + [(u[i] + u[i + 1]) / 2.0 for i in range(len(u) - 1)]
            + [max(u[-1] + 1.0, np.nextafter(u[-1], np.inf))]
        )
        best_acc, best_t = -1.0, None
        for t in candidates:
            acc = sum(1 for s, y in train if (s >= t) == (y == 1)) / len(train)
            if acc >= best_acc:
                best_acc, best_t = acc, float(t)
        chosen.append(best_t)
        accs.append(sum(1 for s, y in test if (s >= best_t) == (y == 1)) / len(test))
    return {"folds": accs, "thresholds": chosen, "mean": float(np.mean(accs)), "std": float(np.std(accs))}


# ------------------------------------------------------------------------------------------ EDC
def fnm_edc_pauc_loop(scores, quality, start_error: float, limit: float) -> tuple[float, float]:
    """(threshold, pAUC up to ``limit``) of the FNM-EDC of mated ``scores``: the threshold is numpy's linear
    quantile at ``start_error`` (the ISO definition), an error a score below it; comparisons are discarded in
    ascending quality, ties together; the error fraction at each discard point is held to the next one."""
    s = [float(x) for x in scores]
    q = [float(x) for x in quality]
    thr = float(np.quantile(np.asarray(s, dtype=np.float64), start_error))
    n = len(s)
    points = []  # (discard fraction, error fraction)
    for level in sorted(set(q)):
        left = [i for i in range(n) if q[i] >= level]
        errors = sum(1 for i in left if s[i] < thr)
        points.append(((n - len(left)) / n, errors / len(left)))
    points.append((1.0, 0.0))
    area = 0.0
    for (d, e), (d_next, _) in zip(points, points[1:] + [(1.0, 0.0)]):
        if d < limit:
            area += e * (min(d_next, limit) - d)
    return thr, area


# ------------------------------------------------------------------------------------------ embeddings
def unit(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x)


def cosine(a, b) -> float:
    return float(np.dot(unit(a), unit(b)))


def embed_rows(bench, backbone, rows) -> dict[int, np.ndarray]:
    """Each row's embedding, one image at a time: the image decoded, aligned on the protocol's landmarks and
    given to ``backbone`` (the run's input; pooling and scoring are what the tests check against it)."""
    from fiqa_bench.faces import Face, load_image, to_input

    lms = bench.landmarks()
    paths = bench.faces["path"].astype(str).tolist()
    out = {}
    for r in rows:
        face = Face(load_image(bench.root / paths[r]), lms[r], None, paths[r], detected=False)
        out[int(r)] = np.asarray(backbone.embed(to_input([face], backbone.card.input)), dtype=np.float64)[0]
    return out
