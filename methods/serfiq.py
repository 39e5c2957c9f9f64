"""``serfiq``: SER-FIQ (Terhörst et al., CVPR 2020), quality as the robustness of stochastic embeddings.

A face the FR model is sure about gives nearly the same embedding from every random subnetwork; an unclear face
does not. With dropout active on the final layers, ``m`` forward passes give embeddings ``x_1 .. x_m``
(L2-normalised), and the quality is the paper's definition::

    q = 2 * sigmoid( -(2 / m^2) * sum_{i < j} || x_i - x_j ||_2 )

in (0, 1], higher is better (1 when all passes agree). Written from the paper; the authors' code
(CC BY-NC-SA 4.0) was not used.

Choices the paper leaves to the model, and the ones made here (also on the card):

* **m = 100** passes (the paper's choice).
* **Where dropout goes**: the paper uses the dropout layer the FR model was trained with, before its last
  embedding layer(s) ("same-model" SER-FIQ). The shared MobileFaceNet was trained without dropout, so dropout is
  placed where ArcFace-style models have it: on the 512-d input of the final linear embedding layer (``conv3`` +
  ``bn``). Only that head runs ``m`` times; the trunk runs once (cost about one forward pass).
* **Dropout rate 0.5** (``dropout=``): the usual rate of such a layer; the model was never trained with one, so no
  rate is "the" rate; 0.5 keeps the per-pass variation well above float rounding.
* **Seeded masks**: the ``m`` dropout masks are drawn once from ``seed`` (``--seed``) and are the same for every
  image, so a face's score does not depend on its batch, order or worker, and every face is judged by the same
  ``m`` random subnetworks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fiqa_bench.api.capabilities import BackboneQualityMethod
from fiqa_bench.api.cards import InputSpec, MethodCard


def serfiq_quality(embeddings: np.ndarray) -> np.ndarray:
    """The paper's quality for stochastic embeddings (N, m, D): ``2 sigmoid(-(2/m^2) sum_{i<j} ||x_i - x_j||)`` on
    L2-normalised rows, float64 arithmetic, float32 out."""
    e = np.asarray(embeddings, np.float64)
    if e.ndim != 3:
        raise ValueError(f"expected stochastic embeddings (N, m, D), got shape {e.shape}")
    n, m, _ = e.shape
    if n == 0:
        return np.zeros(0, np.float32)
    e = e / np.maximum(np.linalg.norm(e, axis=2, keepdims=True), 1e-12)
    gram = np.einsum("nid,njd->nij", e, e)
    dist = np.sqrt(np.maximum(2.0 - 2.0 * gram, 0.0))  # ||x_i - x_j|| of unit vectors
    pair_sum = np.triu(dist, k=1).sum(axis=(1, 2))
    z = (2.0 / (m * m)) * pair_sum
    return (2.0 / (1.0 + np.exp(z))).astype(np.float32)  # 2 * sigmoid(-z)


class SerFiq(BackboneQualityMethod):
    """SER-FIQ on the run's backbone (needs ``stochastic``): m seeded dropout passes of the embedding head."""

    card = MethodCard(
        name="serfiq",
        version="1",
        summary=(
            "SER-FIQ: robustness of m = 100 stochastic embeddings (dropout before the final linear embedding "
            "layer, rate 0.5, seeded masks shared by all images); q = 2 sigmoid(-(2/m^2) sum_{i<j} "
            "||x_i - x_j||) on L2-normalised embeddings"
        ),
        licence="code MIT (written from the paper; the authors' CC BY-NC-SA code was not used)",
        paper=(
            "P. Terhörst, J. N. Kolf, N. Damer, F. Kirchbuchner, A. Kuijper, 'SER-FIQ: Unsupervised Estimation "
            "of Face Image Quality Based on Stochastic Embedding Robustness', CVPR 2020. Open choices here: "
            "dropout on the 512-d input of the final embedding layer (the model was trained without dropout), "
            "rate 0.5, masks from --seed shared by every image"
        ),
        input=InputSpec("face"),
        higher_is_better=True,
        score_range="(0, 1]",
        needs_backbone=True,
        needs_capabilities=("stochastic",),
    )

    def __init__(
        self,
        backbone: Any = None,
        passes: int = 100,
        dropout: float = 0.5,
        seed: int = 0,
        backbone_options: dict | None = None,
    ) -> None:
        passes, dropout = int(passes), float(dropout)
        if passes < 2:
            raise ValueError(f"passes must be >= 2, got {passes}")
        if not 0.0 < dropout < 1.0:
            raise ValueError(f"dropout must be in (0, 1), got {dropout}")
        super().__init__(backbone, backbone_options)
        self.passes, self.dropout, self.seed = passes, dropout, int(seed)

    def parameters(self) -> dict:
        return {"passes": self.passes, "dropout": self.dropout, "seed": self.seed}

    def score_crops(self, crops: np.ndarray) -> np.ndarray:
        """Quality of crops already in the backbone's input format (what :meth:`score` makes of its faces)."""
        if len(crops) == 0:
            return np.zeros(0, np.float32)
        return serfiq_quality(self._backbone().stochastic_embed(crops, self.passes, self.dropout, self.seed))

    def score(self, images: Any) -> np.ndarray:
        faces = list(images)
        return self.score_crops(self.crops(faces)) if faces else np.zeros(0, np.float32)
