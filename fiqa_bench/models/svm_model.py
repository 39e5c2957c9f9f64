"""The SVR quality model's format (``svm`` method, Best-Rowden and Jain 2018) shared by the method that scores with it
(``methods/svm.py``) and the trainer that writes it (:mod:`fiqa_bench.training.baselines.svm`): the format tag, the
key that ties a model to the FR backbone it was trained on, and the decision function. Here in the core so that
the trainer never imports a plugin."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

__all__ = ["FORMAT", "backbone_key", "l2_rows", "rbf_decision"]

FORMAT = "fiqa-bench-svr-rbf-1"


def backbone_key(backbone: Any) -> str:
    """What must match between the backbone an SVM was trained on and the one it scores with (JSON text)."""
    card = backbone.card
    weights = getattr(card, "weights", None)
    sha = getattr(weights, "sha256", None) if weights is not None else None
    key = {
        "name": card.name,
        "weights_sha256": sha,
        "input": card.input.describe(),
        "embedding_dim": int(card.embedding_dim),
    }
    if not sha:  # no pinned weights on the card: the full identity is the only safe key
        key["identity"] = backbone.identity()
    return json.dumps(key, sort_keys=True)


def rbf_decision(
    x: np.ndarray, support_vectors: np.ndarray, dual_coef: np.ndarray, intercept: float, gamma: float
) -> np.ndarray:
    """``sum_i a_i exp(-gamma ||s_i - x||^2) + b`` for each row of ``x`` (float64 arithmetic, float64 out)."""
    x = np.asarray(x, np.float64)
    s = np.asarray(support_vectors, np.float64)
    sq = (x * x).sum(1)[:, None] + (s * s).sum(1)[None, :] - 2.0 * (x @ s.T)
    k = np.exp(-float(gamma) * np.maximum(sq, 0.0))
    return k @ np.asarray(dual_coef, np.float64).reshape(-1) + float(intercept)


def l2_rows(embeddings: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm (float64); an all-zero row stays zero.

    :func:`fiqa_bench.mathutil.l2_normalise`, the one normaliser of scoring and labelling.
    """
    from fiqa_bench.mathutil import l2_normalise

    return l2_normalise(embeddings)
