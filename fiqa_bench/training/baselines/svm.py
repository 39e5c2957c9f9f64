"""The SVM baseline (Best-Rowden and Jain 2018, as ``methods/svm.py`` scores it): an RBF SVR from L2-normalised
embeddings to Eq. 1 labels, fitted on the set's non-held-out identities."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fiqa_bench.training.baselines.data import BaselineSet, card_base, validation_mask
from fiqa_bench.training.baselines.evaluate import spearman, validation_scores


def train_svm(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    C: float = 1.0,
    gamma: float = 1.0,
    epsilon: float = 0.05,
    max_rows: int = 2500,
    seed: int = 0,
) -> dict:
    """SVR (RBF) from L2-normalised embeddings to labels: the model as arrays (see :mod:`fiqa_bench.methods.svm`).

    Rows with a NaN label are dropped; at most ``max_rows`` rows (drawn with ``seed``) are used, since kernel SVR
    training grows quadratically with rows. ``gamma`` acts on unit vectors (``||a - b||^2 = 2 - 2 cos``), so
    gamma = 1 makes the kernel of two unrelated faces (cos ~ 0) e^-2 and of two photos of one person (cos ~ 0.6)
    about e^-0.8.
    """
    from sklearn.svm import SVR

    from fiqa_bench.models.svm_model import l2_rows

    x = l2_rows(np.asarray(embeddings))
    y = np.asarray(labels, np.float64).reshape(-1)
    rows = np.flatnonzero(np.isfinite(y) & np.isfinite(x).all(1))
    if rows.size < 2:
        from fiqa_bench.errors import FiqaBenchError

        raise FiqaBenchError("train_svm: fewer than 2 rows with a finite label")
    if rows.size > int(max_rows):
        rows = np.sort(np.random.default_rng(int(seed)).choice(rows, int(max_rows), replace=False))
    svr = SVR(kernel="rbf", C=float(C), gamma=float(gamma), epsilon=float(epsilon))
    svr.fit(x[rows], y[rows])
    return {
        "support_vectors": svr.support_vectors_.astype(np.float64),
        "dual_coef": svr.dual_coef_.reshape(-1),
        "intercept": float(svr.intercept_[0]),
        "gamma": float(gamma),
        "sklearn": svr,
        "rows": rows,
        "settings": {
            "C": float(C),
            "gamma": float(gamma),
            "epsilon": float(epsilon),
            "max_rows": int(max_rows),
            "fitted_rows": int(rows.size),
            "seed": int(seed),
        },
    }


def save_svm(
    model: Mapping[str, Any],
    path: str | os.PathLike,
    *,
    backbone_key: str,
    backbone_identity: str = "",
    card: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model`` (from :func:`train_svm`) as ``.npz`` (support vectors float32) and ``card`` as ``.json``."""
    from fiqa_bench.data.atomic import atomic_path, write_json
    from fiqa_bench.data.download import file_sha256
    from fiqa_bench.models.svm_model import FORMAT
    from fiqa_bench.training.export import json_safe

    path = Path(path)
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                support_vectors=np.asarray(model["support_vectors"], np.float32),
                dual_coef=np.asarray(model["dual_coef"], np.float64),
                intercept=np.float64(model["intercept"]),
                gamma=np.float64(model["gamma"]),
                backbone_key=np.array(str(backbone_key)),
                backbone_identity=np.array(str(backbone_identity)),
                format=np.array(FORMAT),
            )
    if card is not None:
        write_json(
            path.with_suffix(".json"),
            {**json_safe(dict(card)), "file": path.name, "sha256": file_sha256(path), "bytes": path.stat().st_size},
        )
    return path


#: The hyper-parameter grid of ``train_baseline_svm(search=True)``.
SVM_GRID = {"C": (0.3, 1.0, 3.0), "gamma": (0.5, 1.0, 2.0)}


def train_baseline_svm(
    data: BaselineSet,
    out: str | os.PathLike,
    *,
    C: float = 0.3,
    gamma: float = 1.0,
    epsilon: float = 0.05,
    max_rows: int = 2500,
    val_fraction: float = 0.2,
    seed: int = 0,
    search: bool = False,
    command: str = "",
    data_desc: str = "",
) -> dict:
    """Fit the SVM baseline on the non-held-out identities of ``data`` and write ``out`` (.npz) + card (.json).

    ``search``: first pick C and gamma from :data:`SVM_GRID` by validation Spearman with the Eq. 1 labels (the
    grid's results go on the card). Returns the card.
    """
    from fiqa_bench.models.svm_model import l2_rows, rbf_decision

    t0 = time.perf_counter()
    val = validation_mask(data, val_fraction, seed)
    train_idx = np.flatnonzero(~val)
    labels = np.asarray(data.data.labels, np.float64)
    grid = []
    if search:
        for c in SVM_GRID["C"]:
            for g in SVM_GRID["gamma"]:
                m = train_svm(
                    data.embeddings[train_idx],
                    labels[train_idx],
                    C=c,
                    gamma=g,
                    epsilon=epsilon,
                    max_rows=max_rows,
                    seed=seed,
                )
                pred = m["sklearn"].predict(l2_rows(data.embeddings[val]))
                grid.append({"C": c, "gamma": g, "val_spearman_eq1": spearman(pred, labels[val])})
        best = max(grid, key=lambda r: -np.inf if not np.isfinite(r["val_spearman_eq1"]) else r["val_spearman_eq1"])
        C, gamma = best["C"], best["gamma"]
    model = train_svm(
        data.embeddings[train_idx], labels[train_idx], C=C, gamma=gamma, epsilon=epsilon, max_rows=max_rows, seed=seed
    )
    scores = rbf_decision(
        l2_rows(data.embeddings), model["support_vectors"], model["dual_coef"], model["intercept"], model["gamma"]
    )
    card = {
        "method": "svm",
        **card_base(data, command, data_desc, seed, val_fraction, val),
        "settings": model["settings"],
        "support_vectors": int(len(model["dual_coef"])),
        "target": "Eq. 1 label (cosine to the identity centre), raw",
        "features": "L2-normalised embeddings",
        "grid": grid,
        "validation": validation_scores(scores, data, val),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    save_svm(
        model,
        out,
        backbone_key=str(data.meta.get("backbone_key")),
        backbone_identity=str(data.meta.get("backbone")),
        card=card,
    )
    return card
