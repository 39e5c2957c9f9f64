"""insightface's public ArcFace releases as named backbones (``r50``, ``mbf``, ``r100``).

Each has a fixed card: what it was trained on, its input and normalisation, and the pinned sha256 of the
weights so every result names the exact file. ``r50`` and ``mbf`` are downloaded on first use (mirror of
insightface's buffalo_l / buffalo_s files as pinned by the ``uniface`` package). ``r100`` (glintr100.onnx from
insightface's antelopev2.zip) has no published per-file hash, so it is never downloaded blindly: the user
places the file, and the instance card records the sha256 of the file actually used.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from fiqa_bench.api.cards import BackboneCard, InputSpec, Weights
from fiqa_bench.backbones.onnx_arcface import OnnxArcFace, PerInstanceCard
from fiqa_bench.data.download import resolve_weights

_LICENCE = "insightface models: non-commercial research use only"
_ARCFACE_PAPER = "J. Deng et al., 'ArcFace: Additive Angular Margin Loss for Deep Face Recognition', CVPR 2019"
_NORM = "arcface: (x - 127.5) / 127.5"


class _Zoo(OnnxArcFace):
    """A pinned ArcFace ONNX: no path argument; weights resolved (and verified) on first use."""

    argument: ClassVar[str | None] = None

    def __init__(self, flip: bool = False, batch_size: int = 32):
        super().__init__(None, normalisation="arcface", flip=flip, batch_size=batch_size, colour="RGB")
        self._resolved: Path | None = None

    def model_path(self) -> Path:
        if self._resolved is None:
            weights = type(self).card.weights
            assert weights is not None
            self._resolved = resolve_weights(weights)
        return self._resolved


class R50(_Zoo):
    card = PerInstanceCard(
        BackboneCard(
            name="r50",
            version="1",
            summary="ArcFace ResNet-50 trained on WebFace600K (insightface buffalo_l w600k_r50)",
            licence=_LICENCE,
            paper=_ARCFACE_PAPER,
            input=InputSpec("aligned", 112, "RGB"),
            normalisation=_NORM,
            embedding_dim=512,
            capabilities=("raw_features",),  # insightface exports do not L2-normalise
            weights=Weights(
                "w600k_r50.onnx",
                url="https://github.com/yakhyo/uniface/releases/download/weights/w600k_r50.onnx",
                sha256="4c06341c33c2ca1f86781dab0e829f88ad5b64be9fba56e56bc9ebdefc619e43",
                note="= w600k_r50.onnx inside insightface's buffalo_l.zip (release v0.7)",
            ),
        )
    )


class MBF(_Zoo):
    card = PerInstanceCard(
        BackboneCard(
            name="mbf",
            version="1",
            summary="ArcFace MobileFaceNet trained on WebFace600K (insightface buffalo_s w600k_mbf)",
            licence=_LICENCE,
            paper="S. Chen et al., 'MobileFaceNets', CCBR 2018; " + _ARCFACE_PAPER,
            input=InputSpec("aligned", 112, "RGB"),
            normalisation=_NORM,
            embedding_dim=512,
            capabilities=("raw_features",),  # insightface exports do not L2-normalise
            weights=Weights(
                "w600k_mbf.onnx",
                url="https://github.com/yakhyo/uniface/releases/download/weights/w600k_mbf.onnx",
                sha256="9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f",
                note="= w600k_mbf.onnx inside insightface's buffalo_s.zip (release v0.7)",
            ),
        )
    )


class R100(_Zoo):
    card = PerInstanceCard(
        BackboneCard(
            name="r100",
            version="1",
            summary="ArcFace ResNet-100 trained on Glint360K (insightface antelopev2 glintr100); "
            "place the file by hand (no pinned per-file hash to download against)",
            licence=_LICENCE,
            paper=_ARCFACE_PAPER + "; X. An et al., 'Partial FC', ICCVW 2021",
            input=InputSpec("aligned", 112, "RGB"),
            normalisation=_NORM,
            embedding_dim=512,
            capabilities=("raw_features",),  # insightface exports do not L2-normalise
            weights=Weights(
                "glintr100.onnx",
                note="Download https://github.com/deepinsight/insightface/releases/download/v0.7/antelopev2.zip "
                "and extract glintr100.onnx from it (no per-file sha256 is published, so fiqa-bench does not "
                "download it itself; results record the sha256 of the file you use).",
            ),
        )
    )
