"""The RQS baseline (Chen et al. 2015, as ``methods/rqs.py`` scores it): ordered pairs of the set's rows, a
two-stage linear RankSVM on the hand-crafted features of :mod:`fiqa_bench.features.handcrafted`."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fiqa_bench.training.baselines.data import LADDER_RANK, BaselineSet, card_base, validation_mask
from fiqa_bench.training.baselines.evaluate import spearman, validation_scores


def ladder_pairs(data: BaselineSet) -> np.ndarray:
    """(better row, worse row) for every ordered pair of versions of one photo: (P, 2) int64."""
    rank = np.array([LADDER_RANK[None if lv == "clean" else lv] for lv in data.level])
    photo = data.photo
    out = []
    for p in np.unique(photo):
        rows = np.flatnonzero(photo == p)
        for a in rows:
            for b in rows:
                if rank[a] > rank[b]:
                    out.append((a, b))
    return np.array(out, np.int64).reshape(-1, 2)


def label_pairs(data: BaselineSet, margin: float = 0.1, per_identity: int = 30, seed: int = 0) -> np.ndarray:
    """(better, worse) rows of the same identity and different photos whose Eq. 1 labels differ by > ``margin``,
    at most ``per_identity`` pairs per identity (drawn with ``seed``): (P, 2) int64."""
    labels = np.asarray(data.data.labels, np.float64)
    ids = data.data.identities
    photo = data.photo
    rng = np.random.default_rng([int(seed), 31])
    out = []
    for ident in np.unique(ids):
        rows = np.flatnonzero((ids == ident) & np.isfinite(labels))
        if rows.size < 2:
            continue
        grid_a, grid_b = np.meshgrid(rows, rows, indexing="ij")
        a, b = grid_a.ravel(), grid_b.ravel()
        keep = (photo[a] != photo[b]) & (labels[a] - labels[b] > margin)
        a, b = a[keep], b[keep]
        if a.size > per_identity:
            pick = np.sort(rng.choice(a.size, per_identity, replace=False))
            a, b = a[pick], b[pick]
        out += list(zip(a.tolist(), b.tolist()))
    return np.array(out, np.int64).reshape(-1, 2)


def rank_svm(x: np.ndarray, pairs: np.ndarray, C: float, seed: int = 0) -> np.ndarray:
    """Linear RankSVM: ``w`` minimising ``|w|^2 / 2 + C sum max(0, 1 - w . (x_better - x_worse))^2``.

    The pairwise squared hinge (the L2-loss RankSVM of Chapelle and Keerthi 2010, solved in the primal) rather
    than the plain hinge: its solver converges in seconds on tens of thousands of 1000-d pairs, where the plain
    hinge's dual solver did not converge in 20,000 iterations. Solved as a linear SVM without intercept on
    difference vectors, each pair entered once with a random sign (scikit-learn ``LinearSVC``, liblinear).
    """
    from sklearn.svm import LinearSVC

    x = np.asarray(x, np.float64)
    diff = x[pairs[:, 0]] - x[pairs[:, 1]]
    sign = np.where(np.random.default_rng([int(seed), 53]).random(len(pairs)) < 0.5, 1.0, -1.0)
    if (sign > 0).all() or (sign < 0).all():
        sign[0] = -sign[0]
    svc = LinearSVC(
        C=float(C), loss="squared_hinge", penalty="l2", fit_intercept=False, dual=False, tol=1e-5, max_iter=1000
    )
    svc.fit(diff * sign[:, None], sign)
    return svc.coef_.reshape(-1).astype(np.float64)


def pair_accuracy(scores: np.ndarray, pairs: np.ndarray) -> float:
    s = np.asarray(scores, np.float64)
    d = s[pairs[:, 0]] - s[pairs[:, 1]]
    return float(((d > 0) + 0.5 * (d == 0)).mean()) if len(d) else float("nan")


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(0)
    scale = x.std(0)
    scale = np.where(scale > 1e-6 * max(float(scale.max()), 1e-12), scale, 1.0)
    return mean, scale


def fit_rqs(
    feats: Mapping[str, np.ndarray],
    pairs: np.ndarray,
    identities: np.ndarray,
    *,
    C: float = 0.01,
    C2: float = 1.0,
    seed: int = 0,
) -> dict:
    """Two-stage RQS on ``feats`` (group -> (N, D)) and ordered ``pairs`` (rows into the same N).

    Stage 1 per group: standardise, RankSVM (``C``). Stage 2: RankSVM (``C2``) on the four stage-1 scores divided
    by their spread, fitted on out-of-fold stage-1 scores (identities split into two folds; a pair's rows share
    an identity, so no pair crosses folds). Returns the model arrays of :mod:`fiqa_bench.methods.rqs`.
    """
    groups = tuple(feats)
    rng = np.random.default_rng([int(seed), 71])
    unique = np.unique(identities)
    fold_of = dict(zip(unique.tolist(), (rng.permutation(unique.size) % 2).tolist()))
    fold = np.array([fold_of[i] for i in identities])
    pair_fold = fold[pairs[:, 0]]
    n = len(identities)
    model: dict[str, Any] = {"groups": np.array(groups)}
    oof = np.zeros((n, len(groups)))
    for j, g in enumerate(groups):
        x = np.asarray(feats[g], np.float64)
        mean, scale = _standardiser(x)
        z = (x - mean) / scale
        model[f"{g}_mean"], model[f"{g}_scale"] = mean, scale
        model[f"{g}_w"] = rank_svm(z, pairs, C, seed)
        for k in (0, 1):  # out-of-fold scores: fit on the other fold's pairs, score this fold's rows
            w = rank_svm(z, pairs[pair_fold != k], C, seed)
            oof[fold == k, j] = z[fold == k] @ w
    spread = oof.std(0)
    spread = np.where(spread > 0, spread, 1.0)
    alpha = rank_svm(oof / spread, pairs, C2, seed)
    model["alpha"] = alpha / spread  # applied to the raw stage-1 scores
    model["stage2_raw_alpha"] = alpha
    model["stage1_spread"] = spread
    return model


RQS_GRID = (0.001, 0.01, 0.1)


def train_baseline_rqs(
    data: BaselineSet,
    out: str | os.PathLike,
    *,
    C: float | None = None,
    C2: float = 1.0,
    margin: float = 0.1,
    per_identity: int = 30,
    val_fraction: float = 0.2,
    seed: int = 0,
    features_cache: str | os.PathLike | None = None,
    command: str = "",
    data_desc: str = "",
) -> dict:
    """Fit RQS on the non-held-out identities of ``data`` (ladder pairs + Eq. 1 pairs) and write ``out`` (.npz)
    + card (.json). ``C=None``: pick the stage-1 C from :data:`RQS_GRID` by validation pair accuracy.
    ``features_cache``: a ``.npz`` where the hand-crafted features of ``data`` are kept between runs."""
    from fiqa_bench.data.atomic import atomic_path, write_json
    from fiqa_bench.data.download import file_sha256
    from fiqa_bench.features.handcrafted import DIMS, GROUPS, features
    from fiqa_bench.models.rqs_model import FORMAT, linear_score
    from fiqa_bench.training.export import json_safe

    t0 = time.perf_counter()
    feats = None
    cached = False
    if features_cache is not None and Path(features_cache).is_file():
        with np.load(features_cache, allow_pickle=False) as z:
            if int(z["rows"]) == len(data) and str(z["fingerprint"]) == data.data.fingerprint():
                feats = {g: np.asarray(z[g]) for g in GROUPS}
                cached = True
    if feats is None:
        feats = features(np.asarray(data.data.images))
        if features_cache is not None:
            with atomic_path(features_cache, suffix=".npz") as tmp:
                with open(tmp, "wb") as fh:
                    # mypy matches **feats against savez's allow_pickle: bool too (the keys are feature group names)
                    np.savez(fh, rows=len(data), fingerprint=np.array(data.data.fingerprint()), **feats)  # type: ignore[arg-type]
    t_feat = time.perf_counter() - t0
    val = validation_mask(data, val_fraction, seed)
    ladder = ladder_pairs(data)
    all_pairs = np.concatenate([ladder, label_pairs(data, margin, per_identity, seed)])
    n_ladder = len(ladder)
    is_val = val[all_pairs[:, 0]]
    assert (is_val == val[all_pairs[:, 1]]).all()
    train_rows = np.flatnonzero(~val)
    remap = np.full(len(data), -1, np.int64)
    remap[train_rows] = np.arange(train_rows.size)
    train_pairs = remap[all_pairs[~is_val]]
    val_pairs = all_pairs[is_val]
    train_feats = {g: feats[g][train_rows] for g in GROUPS}
    ids = data.data.identities[train_rows]
    grid = []
    if C is None:
        for c in RQS_GRID:
            m = fit_rqs(train_feats, train_pairs, ids, C=c, C2=C2, seed=seed)
            s = linear_score(feats, m)
            grid.append(
                {
                    "C": c,
                    "val_pair_accuracy": pair_accuracy(s, val_pairs),
                    "val_spearman_eq1": spearman(s[val], data.data.labels[val]),
                }
            )
        C = max(grid, key=lambda r: r["val_pair_accuracy"])["C"]
    model = fit_rqs(train_feats, train_pairs, ids, C=C, C2=C2, seed=seed)
    scores = linear_score(feats, model)
    per_group = {}
    for g in GROUPS:  # each stage-1 score alone, for the card
        z = (feats[g].astype(np.float64) - model[f"{g}_mean"]) / model[f"{g}_scale"]
        sg = z @ model[f"{g}_w"]
        per_group[g] = {
            "dim": DIMS[g],
            "val_pair_accuracy": pair_accuracy(sg, val_pairs),
            "val_spearman_eq1": spearman(sg[val], data.data.labels[val]),
        }
    card = {
        "method": "rqs",
        **card_base(data, command, data_desc, seed, val_fraction, val),
        "settings": {"C": float(C), "C2": float(C2), "margin": float(margin), "per_identity": int(per_identity)},
        "pairs": {
            "train": int(len(train_pairs)),
            "val": int(len(val_pairs)),
            "ladder_total": int(n_ladder),
            "label_total": int(len(all_pairs) - n_ladder),
        },
        "stage2_alpha_on_standardised_scores": model["stage2_raw_alpha"].tolist(),
        "grid": grid,
        "per_group": per_group,
        "features": {g: DIMS[g] for g in GROUPS},
        "validation": {**validation_scores(scores, data, val), "pair_accuracy": pair_accuracy(scores, val_pairs)},
        "seconds": round(time.perf_counter() - t0, 1),
        "feature_seconds": round(t_feat, 1),
        "features_from_cache": cached,
    }
    out = Path(out)
    arrays = {
        k: (np.asarray(v, np.float32) if k.endswith(("_mean", "_scale", "_w")) else v)
        for k, v in model.items()
        if k not in ("stage2_raw_alpha", "stage1_spread")
    }
    with atomic_path(out, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            # mypy matches **arrays against savez's allow_pickle: bool too (the keys are the model's array names)
            np.savez(fh, format=np.array(FORMAT), **arrays)  # type: ignore[arg-type]
    write_json(
        out.with_suffix(".json"),
        {**json_safe(card), "file": out.name, "sha256": file_sha256(out), "bytes": out.stat().st_size},
    )
    return card
