"""The RQS quality model's format (``rqs`` method, Chen et al. 2015) shared by the method that scores with it
(``methods/rqs.py``) and the trainer that writes it (:mod:`fiqa_bench.training.baselines.rqs`): the format tag and
the two-stage linear score. Here in the core so that the trainer never imports a plugin."""

from __future__ import annotations

import numpy as np

__all__ = ["FORMAT", "linear_score"]

FORMAT = "fiqa-bench-rqs-1"


def linear_score(feats: dict[str, np.ndarray], model: dict) -> np.ndarray:
    """``sum_g alpha_g w_g . ((x_g - mean_g) / scale_g)`` in float64."""
    total: np.ndarray | None = None
    for g, a in zip(model["groups"], model["alpha"]):
        z = (np.asarray(feats[g], np.float64) - model[f"{g}_mean"]) / model[f"{g}_scale"]
        s = a * (z @ np.asarray(model[f"{g}_w"], np.float64))
        total = s if total is None else total + s
    assert total is not None  # a model has at least one feature group
    return total
