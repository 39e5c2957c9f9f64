"""``rqs``: Rank-based Quality Score (Chen, Deng, Bai and Su 2015) on hand-crafted features.

Chen et al., "Face image quality assessment based on learning to rank" (IEEE Signal Processing Letters 22(1),
2015), learn quality from *orders* rather than values: pairs (better face, worse face) train a linear ranking
SVM per feature type, and a second ranking stage combines the per-feature scores into one Rank-based Quality
Score. Our version (trained by :func:`fiqa_bench.training.baselines.rqs.train_baseline_rqs`):

* **features** (:mod:`fiqa_bench.features.handcrafted`) on the 112x112 aligned crop: HoG (1296-d), Gabor
  energy statistics (80-d), Gist (512-d) and uniform LBP histograms (944-d). Chen et al. also used the features
  of a face alignment network (not reproduced);
* **stage 1**, per feature group ``g``: standardise (training mean and standard deviation), then a linear RankSVM
  ``s_g = w_g . z_g`` (pairwise squared hinge loss on feature differences, Chapelle and Keerthi's L2-loss
  RankSVM);
* **stage 2**: ``RQS = sum_g alpha_g s_g / sigma_g``, a linear RankSVM on the four stage-1 scores (divided by their
  spread ``sigma_g``), fitted on out-of-fold stage-1 scores (two identity folds) so that it does not learn to
  trust the stage-1 models' fit to their own training pairs;
* **orders** (Chen et al. ordered whole databases by quality; we have no such ranked databases): the four versions
  of one photo, clean > light > medium > strong degradation of one kind (:mod:`fiqa_bench.data.degradations`), and
  photos of the same identity ordered by their Eq. 1 label when the labels differ by more than a margin.

The score is unbounded, higher = better. Weights: the bundled ``weights/rqs.npz`` (numpy arrays, no pickle;
training card ``weights/rqs.json``) or ``RQSQuality(weights=PATH)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from fiqa_bench.api import QualityMethod
from fiqa_bench.api.cards import InputSpec, MethodCard, Weights
from fiqa_bench.data.download import file_sha256
from fiqa_bench.errors import AdapterError
from fiqa_bench.models.quality_net import bundled_weights_path
from fiqa_bench.models.rqs_model import FORMAT, linear_score

SIZE = 112
BUNDLED = "rqs.npz"


def bundled_weights() -> Path:
    """Where the bundled weights live inside the installed package (the file may not exist yet)."""
    return bundled_weights_path(BUNDLED)


def load_model(path: str | os.PathLike) -> dict:
    """Read an RQS ``.npz``: ``groups`` (names), per group ``<g>_mean``, ``<g>_scale``, ``<g>_w``, and ``alpha``
    (the stage-2 weight of each group's score, the spread already divided in)."""
    from fiqa_bench.features.handcrafted import DIMS

    path = Path(path)
    if not path.is_file():
        raise AdapterError(f"rqs: weights file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            model = {k: np.asarray(z[k]) for k in z.files}
    except Exception as exc:  # noqa: BLE001
        raise AdapterError(f"rqs: {path} is not a readable .npz ({type(exc).__name__}: {exc})") from exc
    if str(model.get("format", "")) != FORMAT:
        raise AdapterError(f"rqs: {path} is not a {FORMAT} model (format {str(model.get('format', '?'))!r})")
    groups = [str(g) for g in model["groups"]]
    alpha = np.asarray(model["alpha"], np.float64).reshape(-1)
    if len(alpha) != len(groups):
        raise AdapterError(f"rqs: {path}: {len(alpha)} stage-2 weights for {len(groups)} feature groups")
    for g in groups:
        for part in ("mean", "scale", "w"):
            arr = model.get(f"{g}_{part}")
            if arr is None or arr.shape != (DIMS.get(g, -1),) or not np.isfinite(arr).all():
                raise AdapterError(f"rqs: {path}: {g}_{part} missing, not finite or not of length {DIMS.get(g)}")
    return {**model, "groups": groups, "alpha": alpha}


class RQSQuality(QualityMethod):
    """Two-stage linear RankSVM on HoG, Gabor, Gist and LBP of the aligned face (Chen et al. 2015)."""

    OPTION_HELP = {"weights": "an rqs .npz model (default: the bundled one)"}

    card = MethodCard(
        name="rqs",
        version="1",
        summary=(
            "RQS (Chen et al. 2015): HoG 1296 + Gabor 80 + Gist 512 + LBP 944 features of the 112x112 aligned "
            "grey face, a linear RankSVM per feature group, combined by a second linear RankSVM; trained on "
            "degradation-level and Eq. 1 orders"
        ),
        licence="code MIT; the bundled weights also carry the terms of their training data, named in weights/rqs.json",
        paper=(
            "J. Chen, Y. Deng, G. Bai, G. Su, 'Face image quality assessment based on learning to rank', IEEE "
            "Signal Processing Letters 22(1), 2015"
        ),
        input=InputSpec("aligned", SIZE, "RGB"),
        higher_is_better=True,
        score_range="unbounded (a ranking score)",
        weights=Weights(
            filename=BUNDLED,
            bundled=True,
            note="bundled in fiqa_bench/methods/weights/ with its training card rqs.json; or weights=PATH",
        ),
    )

    def __init__(self, weights: str | os.PathLike | None = None) -> None:
        self.weights = Path(weights).expanduser() if weights is not None else None
        self._model: dict | None = None
        self._sha256: str | None = None

    def weights_path(self) -> Path:
        path = self.weights if self.weights is not None else bundled_weights()
        if not path.is_file():
            raise AdapterError(
                f"rqs: weights file not found: {path}"
                + (" (not trained yet: `fiqa-bench train-baseline rqs`)" if self.weights is None else "")
            )
        return path

    def _load(self) -> dict:
        if self._model is None:
            path = self.weights_path()
            self._model = load_model(path)
            self._sha256 = file_sha256(path)
        return self._model

    def identity(self) -> str:
        self._load()
        assert self._sha256 is not None  # set by _load
        return f"{super().identity()}-sha256-{self._sha256[:16]}"

    def score(self, images: Any) -> np.ndarray:
        from fiqa_bench.features.handcrafted import features

        if len(images) == 0:
            return np.zeros(0, np.float32)
        batch = np.asarray(images)
        if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[1:] != (SIZE, SIZE, 3):
            raise AdapterError(
                f"rqs: expected uint8 aligned crops (N, {SIZE}, {SIZE}, 3), got {batch.dtype} {batch.shape}"
            )
        model = self._load()
        return linear_score(features(batch, tuple(model["groups"])), model).astype(np.float32)
