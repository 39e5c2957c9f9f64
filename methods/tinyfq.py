"""``tinyfq``: tinyFQnet (Peng et al.), a 13k-parameter CNN that predicts recognition-oriented quality.

The network (Table 1; :mod:`fiqa_bench.training.nets`) regresses Eq. 1 labels: the cosine between a face's FR
embedding and the centre of its identity, so a high score means "the FR model will place this face near its
identity". Inference runs the exported ONNX file on onnxruntime (no torch):

1. 64x64 RGB crop aligned on the ArcFace 5-point template scaled to 64 (the paper aligns at 112 and resizes to 64;
   scaling the template gives the same framing);
2. ``(x - 127.5) / 128`` per channel, NCHW float32 (:func:`fiqa_bench.models.onnx_contract.preprocess`);
3. the network's sigmoid output, a score in (0, 1); higher = better.

Weights: ``TinyFQ()`` uses the bundled ``weights/tinyfq.onnx`` (its training card is ``weights/tinyfq.json``);
``TinyFQ(weights=PATH)`` any file honouring :mod:`fiqa_bench.models.onnx_contract` (``fiqa-bench train`` writes them);
a bare file name that is not a file here names a bundled alternative: ``weights=tinyfq-pnj1-e24.onnx`` (bundled
before the current one: pair weight 1, 24 epochs), ``weights=tinyfq-m4-flip.onnx`` (issue 15's
first recipe: MobileFaceNet labels, SGD, 8 epochs) or ``weights=tinyfq-v1.onnx`` (the model bundled before issue 15:
dlib labels, one degraded copy per photo).
The file's metadata must say 64x64 (or 112x112: the card's crop then follows the file) RGB input with the
normalisation above, else loading fails with a clear error.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from fiqa_bench.api.cards import InputSpec, MethodCard, Weights
from fiqa_bench.models.quality_net import ExportedQualityNet, bundled_weights_path

SIZE = 64
SIZES = (64, 112)  # Table 1's crop, and the same network on 112x112 crops (fiqa_bench.training.nets: tinyfqnet-112)
BUNDLED = "tinyfq.onnx"


def weights_input_size(path: Path) -> int | None:
    """The crop side a weights file was exported for, if it is one of :data:`SIZES` (None: no such file, or
    another size, which loading then refuses with the metadata it expected)."""
    if not Path(path).is_file():
        return None
    from fiqa_bench.models.onnx_contract import read_metadata

    try:
        size = int(read_metadata(path).get("input_size", ""))
    except Exception:  # unreadable or not an ONNX file: loading reports it
        return None
    return size if size in SIZES else None


def bundled_weights() -> Path:
    """Where the bundled weights live inside the installed package (the file may not exist yet)."""
    return bundled_weights_path(BUNDLED)


class TinyFQ(ExportedQualityNet):
    """tinyFQnet on 64x64 aligned RGB crops, run with onnxruntime; scores in (0, 1), higher is better."""

    card = MethodCard(
        name="tinyfq",
        version="1",
        summary=(
            "tinyFQnet: 13k-parameter MobileNetV2-style CNN regressing the cosine between a face's FR embedding "
            "and its identity centre (Eq. 1); 64x64 aligned RGB, (x - 127.5) / 128, sigmoid output"
        ),
        licence=(
            "code MIT; the bundled weights also carry the terms of their training data and labelling "
            "backbone, named in weights/tinyfq.json"
        ),
        paper=("Peng et al., Deep Tiny Network for Recognition-Oriented Face Image Quality Assessment"),
        input=InputSpec("aligned", SIZE, "RGB"),
        higher_is_better=True,
        score_range="(0, 1)",
        weights=Weights(
            filename=BUNDLED,
            bundled=True,
            note="bundled in fiqa_bench/methods/weights/ with its training card tinyfq.json; "
            "or pass weights=PATH (an ONNX file from fiqa_bench.training.export)",
        ),
    )

    BUNDLED = BUNDLED

    OPTION_HELP = {
        **ExportedQualityNet.OPTION_HELP,
        "weights": "an ONNX file of this network, or the file name of a bundled alternative "
        "(tinyfq-m4-flip.onnx, tinyfq-v1.onnx); default: the bundled tinyfq.onnx",
    }

    def __init__(self, weights: str | os.PathLike | None = None, batch_size: int | None = None) -> None:
        bundled = self.locate_option_file("weights", weights) if weights is not None else None
        super().__init__(bundled if bundled is not None else weights, batch_size)
        size = weights_input_size(self.weights if self.weights is not None else bundled_weights())
        if size is not None and size != SIZE:
            # api.QualityMethod declares card a ClassVar; here the weights file decides the crop, per instance
            self.card = replace(type(self).card, input=InputSpec("aligned", size, "RGB"))  # type: ignore[misc]

    @classmethod
    def locate_option_file(cls, name: str, value) -> Path | None:
        """The bundled alternative a bare file name names (``weights=tinyfq-v1.onnx``), when it is not a file here;
        the option parser asks this before refusing the name (:mod:`fiqa_bench.api.options`)."""
        text = str(value)
        if name != "weights" or Path(text).name != text or Path(text).exists():
            return None
        bundled = bundled_weights_path(text)
        return bundled if bundled.is_file() else None

    MISSING_HINT = "not trained yet: `fiqa-bench label` then `fiqa-bench train`"
    DEFAULT_BATCH = 256
