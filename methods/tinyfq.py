"""``tinyfq``: tinyFQnet (Peng et al.), a 13k-parameter CNN that predicts recognition-oriented quality.

The network (Table 1; :mod:`fiqa_bench.training.nets`) regresses Eq. 1 labels: the cosine between a face's FR
embedding and the centre of its identity, so a high score means "the FR model will place this face near its
identity". Inference runs the exported ONNX file on onnxruntime (no torch):

1. 64x64 RGB crop aligned on the ArcFace 5-point template scaled to 64 (the paper aligns at 112 and resizes to 64;
   scaling the template gives the same framing);
2. ``(x - 127.5) / 128`` per channel, NCHW float32 (:func:`fiqa_bench.training.export.preprocess`);
3. the network's sigmoid output, a score in (0, 1); higher = better.

Weights: ``TinyFQ()`` uses the bundled ``weights/tinyfq.onnx`` (its training card is ``weights/tinyfq.json``);
``TinyFQ(weights=PATH)`` any file written by :func:`fiqa_bench.training.export.export_onnx`. The file's metadata
must say 64x64 RGB input with the normalisation above, else loading fails with a clear error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from fiqa_bench.api import QualityMethod
from fiqa_bench.cards import InputSpec, MethodCard, Weights
from fiqa_bench.errors import AdapterError
from fiqa_bench.training.export import INPUT_NAME, NORMALISATION, OUTPUT_NAME, preprocess

SIZE = 64
BUNDLED = "tinyfq.onnx"


def bundled_weights() -> Path:
    """Where the bundled weights live inside the installed package (the file may not exist yet)."""
    from importlib.resources import files

    return Path(str(files("fiqa_bench.methods").joinpath("weights", BUNDLED)))


class TinyFQ(QualityMethod):
    """tinyFQnet on 64x64 aligned RGB crops, run with onnxruntime; scores in (0, 1), higher is better."""

    card = MethodCard(
        name="tinyfq",
        version="1",
        summary=(
            "tinyFQnet: 13k-parameter MobileNetV2-style CNN regressing the cosine between a face's FR embedding "
            "and its identity centre (Eq. 1); 64x64 aligned RGB, (x - 127.5) / 128, sigmoid output"
        ),
        licence=("code MIT; the bundled weights also carry the terms of their training data and labelling "
                 "backbone, named in weights/tinyfq.json"),
        paper=(
            "Peng et al., Deep Tiny Network for Recognition-Oriented Face Image Quality Assessment"
        ),
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

    def __init__(self, weights: str | os.PathLike | None = None, batch_size: int = 256) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.weights = Path(weights).expanduser() if weights is not None else None
        self.batch_size = int(batch_size)
        self._session = None
        self._sha256: str | None = None

    def weights_path(self) -> Path:
        path = self.weights if self.weights is not None else bundled_weights()
        if not path.is_file():
            if self.weights is None:
                raise AdapterError(
                    f"tinyfq: no bundled weights at {path} (not trained yet); pass weights=PATH, an ONNX file "
                    f"written by fiqa_bench.training.export.export_onnx")
            raise AdapterError(f"tinyfq: weights file not found: {path}")
        return path

    def _load(self):
        if self._session is not None:
            return self._session
        from fiqa_bench.backbones.onnx_arcface import make_session
        from fiqa_bench.download import file_sha256
        from fiqa_bench.training.export import META_PREFIX

        path = self.weights_path()
        session = make_session(path)
        props = session.get_modelmeta().custom_metadata_map
        meta = {k[len(META_PREFIX):]: v for k, v in props.items() if k.startswith(META_PREFIX)}
        expected = {"input_size": str(SIZE), "normalisation": NORMALISATION, "colour": "RGB", "layout": "NCHW"}
        wrong = {k: meta.get(k) for k, v in expected.items() if meta.get(k) != v}
        if wrong:
            raise AdapterError(f"tinyfq: {path} was not exported for this method's input (metadata {wrong}, "
                               f"expected {expected})")
        names = [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]
        if names != ([INPUT_NAME], [OUTPUT_NAME]):
            raise AdapterError(f"tinyfq: {path} has inputs/outputs {names}, expected ([{INPUT_NAME!r}], "
                               f"[{OUTPUT_NAME!r}])")
        self._sha256 = file_sha256(path)
        self._session = session
        return session

    def identity(self) -> str:
        """The card plus the weights file's sha256: scores from different weights never share a cache entry."""
        self._load()
        return f"{super().identity()}-sha256-{self._sha256[:16]}"

    def score(self, images: Any) -> np.ndarray:
        if len(images) == 0:
            return np.zeros(0, dtype=np.float32)
        batch = np.asarray(images)
        if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[1:] != (SIZE, SIZE, 3):
            raise AdapterError(f"tinyfq: expected uint8 aligned crops (N, {SIZE}, {SIZE}, 3), "
                               f"got {batch.dtype} {batch.shape}")
        session = self._load()
        out = []
        for start in range(0, len(batch), self.batch_size):
            x = preprocess(batch[start:start + self.batch_size])
            out.append(np.asarray(session.run([OUTPUT_NAME], {INPUT_NAME: x})[0], dtype=np.float32).reshape(-1))
        return np.concatenate(out).astype(np.float32)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_session"] = None  # onnxruntime sessions do not pickle; reloaded lazily
        return state
