"""One base for quality methods that are an exported network (:mod:`fiqa_bench.models.onnx_contract`), run without
torch.

tinyFQnet and the re-trained FaceQnet differ only in their card, input size and bundled file: both load an ONNX
file lazily, check that its metadata says it was exported for the method's input (size, normalisation, colour,
layout) and its input/output names, include the file's sha256 in ``identity()`` (scores from other weights never
share a cache entry), and run batches of aligned uint8 crops through onnxruntime.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from fiqa_bench.api import QualityMethod
from fiqa_bench.errors import AdapterError
from fiqa_bench.models.onnx_contract import INPUT_NAME, OUTPUT_NAME, expected_metadata, metadata_of_session, preprocess


def bundled_weights_dir() -> Path:
    """``fiqa_bench/methods/weights/`` inside the installed package: where every bundled model lives."""
    from importlib.resources import files

    return Path(str(files("fiqa_bench.methods").joinpath("weights")))


def bundled_weights_path(filename: str) -> Path:
    """``fiqa_bench/methods/weights/<filename>`` inside the installed package (the file may not exist)."""
    return bundled_weights_dir() / filename


class ExportedQualityNet(QualityMethod):
    """A network that honours :mod:`fiqa_bench.models.onnx_contract` (as ``fiqa-bench train`` writes them), scored on
    onnxruntime (no torch, no training code).

    Subclasses set ``card`` (whose ``input.size`` is the crop side), ``BUNDLED`` (file name in
    ``methods/weights/``), ``MISSING_HINT`` (how to make the bundled file) and ``DEFAULT_BATCH``.
    """

    OPTION_HELP = {
        "weights": "an ONNX file of this network (default: the bundled one)",
        "batch_size": "images per onnxruntime call",
    }

    BUNDLED: str = ""
    MISSING_HINT: str = ""
    DEFAULT_BATCH: int = 64

    def __init__(self, weights: str | os.PathLike | None = None, batch_size: int | None = None) -> None:
        batch_size = self.DEFAULT_BATCH if batch_size is None else int(batch_size)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.weights = Path(weights).expanduser() if weights is not None else None
        self.batch_size = batch_size
        self._session = None
        self._sha256: str | None = None

    @property
    def size(self) -> int:
        return int(self.card.input.size)

    def weights_path(self) -> Path:
        path = self.weights if self.weights is not None else bundled_weights_path(self.BUNDLED)
        if not path.is_file():
            if self.weights is None:
                raise AdapterError(
                    f"{self.card.name}: no bundled weights at {path} ({self.MISSING_HINT}); pass "
                    f"weights=PATH, an ONNX file written by `fiqa-bench train`"
                )
            raise AdapterError(f"{self.card.name}: weights file not found: {path}")
        return path

    def _load(self):
        if self._session is not None:
            return self._session
        from fiqa_bench.backbones.onnx_arcface import make_session
        from fiqa_bench.data.download import file_sha256

        name, path = self.card.name, self.weights_path()
        session = make_session(path)
        meta = metadata_of_session(session)
        expected = expected_metadata(self.size)
        wrong = {k: meta.get(k) for k, v in expected.items() if meta.get(k) != v}
        if wrong:
            raise AdapterError(
                f"{name}: {path} was not exported for this method's input (metadata {wrong}, expected {expected})"
            )
        names = [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]
        if names != ([INPUT_NAME], [OUTPUT_NAME]):
            raise AdapterError(
                f"{name}: {path} has inputs/outputs {names}, expected ([{INPUT_NAME!r}], [{OUTPUT_NAME!r}])"
            )
        self._sha256 = file_sha256(path)
        self._session = session
        return session

    def identity(self) -> str:
        """The card plus the weights file's sha256: scores from different weights never share a cache entry."""
        self._load()
        assert self._sha256 is not None  # set by _load
        return f"{super().identity()}-sha256-{self._sha256[:16]}"

    def score(self, images: Any) -> np.ndarray:
        if len(images) == 0:
            return np.zeros(0, dtype=np.float32)
        batch, s = np.asarray(images), self.size
        if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[1:] != (s, s, 3):
            raise AdapterError(
                f"{self.card.name}: expected uint8 aligned crops (N, {s}, {s}, 3), got {batch.dtype} {batch.shape}"
            )
        session = self._load()
        out = []
        for start in range(0, len(batch), self.batch_size):
            x = preprocess(batch[start : start + self.batch_size])
            out.append(np.asarray(session.run([OUTPUT_NAME], {INPUT_NAME: x})[0], dtype=np.float32).reshape(-1))
        return np.concatenate(out).astype(np.float32)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_session"] = None  # onnxruntime sessions do not pickle; reloaded lazily
        return state
