"""``norm``: the L2 norm of the raw (unnormalised) face embedding as its quality.

Margin-based FR training (ArcFace, CosFace; made explicit by MagFace, Meng et al., CVPR 2021) leaves easy,
clear faces with large feature norms and hard or unrecognisable ones with small norms; the norm is therefore
the cheapest training-free quality there is: it costs nothing beyond the embedding the FR stage computes anyway.

Needs the ``raw_features`` capability (the backbone must not L2-normalise its output): ``onnx:PATH`` ArcFace-style
models and ``torch-mobilefacenet`` declare it. In ``fiqa-bench run`` the runner feeds :meth:`score_embeddings`
from its embedding cache, so the quality stage and the FR stage share one pass over the images. With ``--flip``
the norm is that of the flip-summed embedding the run compares.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from fiqa_bench.api.capabilities import BackboneQualityMethod
from fiqa_bench.api.cards import InputSpec, MethodCard
from fiqa_bench.errors import AdapterError


class EmbeddingNorm(BackboneQualityMethod):
    """||f(x)||_2 of the run's backbone's raw embedding; higher is better."""

    card = MethodCard(
        name="norm",
        version="1",
        summary="L2 norm of the raw (unnormalised) embedding of the run's FR backbone (needs raw_features)",
        licence="code MIT",
        paper=(
            "embedding magnitude as quality: Q. Meng, S. Zhao, Z. Huang, F. Zhou, 'MagFace: A Universal "
            "Representation for Face Recognition and Quality Assessment', CVPR 2021 (made explicit there for a "
            "magnitude-aware loss; here read off any backbone with raw features, no training)"
        ),
        input=InputSpec("face"),
        higher_is_better=True,
        score_range="[0, inf)",
        needs_backbone=True,
        needs_capabilities=("raw_features",),
    )

    def score_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        """Quality of raw embeddings (N, D) of the run's backbone: their L2 norms (float64 sum, float32 out)."""
        e = np.asarray(embeddings)
        if e.ndim != 2:
            raise AdapterError(f"norm: expected embeddings (N, D), got shape {e.shape}")
        return np.sqrt((e.astype(np.float64) ** 2).sum(axis=1)).astype(np.float32)

    def score_crops(self, crops: np.ndarray) -> np.ndarray:
        """Quality of crops already in the backbone's input format (what :meth:`score` makes of its faces)."""
        if len(crops) == 0:
            return np.zeros(0, np.float32)
        return self.score_embeddings(np.asarray(self._backbone().embed(crops), np.float32))

    def score(self, images: Any) -> np.ndarray:
        faces = list(images)
        return self.score_crops(self.crops(faces)) if faces else np.zeros(0, np.float32)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        backbone: Any = state.get("backbone")
        if getattr(backbone, "_session", None) is not None:
            # an onnxruntime session does not pickle: send a copy without it (the backbone reloads lazily)
            backbone = copy.copy(backbone)
            backbone._session = None
            state["backbone"] = backbone
        return state
