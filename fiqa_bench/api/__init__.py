"""The three adapter interfaces. Outside authors may subclass these or just match them (duck typing).

* a quality method: ``card`` (a :class:`MethodCard`) and ``score(images) -> float32 (N,)``;
* an FR backbone: ``card`` (a :class:`BackboneCard`) and ``embed(images) -> float32 (N, D)``;
* a protocol: ``card`` (a :class:`ProtocolCard`) and ``load() -> Benchmark``.

``images`` is what the card's :class:`InputSpec` asks for (aligned uint8 crops, or a list of ``Face``).
Constructors store parameters only: weights load lazily on first use, so listing and constructing are cheap.
An adapter whose registered name takes an argument (``onnx:PATH``) sets ``argument = "PATH"`` and receives it
as the first constructor argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fiqa_bench.api.cards import BackboneCard, MethodCard, ProtocolCard


class QualityMethod:
    card: ClassVar[MethodCard]
    argument: ClassVar[str | None] = None

    def score(self, images: Any) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def identity(self) -> str:
        """What makes two runs' scores interchangeable (cache key): the card plus parameters."""
        return f"{self.card.name}-{self.card.version}-{self.card.card_hash()}"


class Backbone:
    card: ClassVar[BackboneCard]
    argument: ClassVar[str | None] = None

    def embed(self, images: Any) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def identity(self) -> str:
        """Name, weights sha256 and preprocessing: what makes two runs' embeddings interchangeable."""
        return f"{self.card.name}-{self.card.version}-{self.card.card_hash()}"


class Protocol:
    card: ClassVar[ProtocolCard]
    argument: ClassVar[str | None] = None

    def __init__(self, root: str | Path | None = None, **options: Any) -> None:
        self.root = Path(root) if root is not None else None
        self.options = options

    def load(self):  # pragma: no cover - interface
        raise NotImplementedError

    def benchmark(
        self, faces, pairs, *, root: Path, source_files: list, notes: list, name: str | None = None, detect_pad=0.0
    ):
        """The :class:`~fiqa_bench.pipeline.benchmark.Benchmark` a ``load`` returns, with what the card declares
        (its name unless ``name`` is given, its kind, metrics and version) filled in from the card, once."""
        from fiqa_bench.pipeline.benchmark import Benchmark

        return Benchmark(
            name=name or self.card.name,
            root=root,
            faces=faces,
            pairs=pairs,
            metric=self.card.metric,
            metrics=self.card.metrics,
            version=self.card.version,
            source_files=source_files,
            detect_pad=detect_pad,
            notes=notes,
        )


def _numeric(values: Any, who: str, what: str) -> np.ndarray:
    """``values`` as float32, refusing anything that is not already numbers: NumPy would turn the strings
    ``"0.5"`` into 0.5 and an object array of mixed things into whatever it can, hiding a broken adapter."""
    from fiqa_bench.errors import AdapterError

    try:
        raw = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise AdapterError(f"{who} returned {what} that are not a numeric array: {exc}") from exc
    if raw.dtype.kind not in "iuf":
        raise AdapterError(
            f"{who} returned {what} of dtype {raw.dtype} ({type(values).__name__}); expected a numeric (float32) array"
        )
    return raw.astype(np.float32, copy=False)


def check_scores(values: Any, n: int, who: str) -> np.ndarray:
    """Validate an adapter's output at run time; name the adapter when it misbehaves."""
    from fiqa_bench.errors import AdapterError

    arr = _numeric(values, who, "scores")
    if arr.ndim != 1 or arr.shape[0] != n:
        raise AdapterError(f"{who} returned shape {arr.shape}, expected ({n},)")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise AdapterError(f"{who} returned {int(bad.sum())} non-finite value(s) (NaN/inf) out of {n}")
    return arr


def check_embeddings(values: Any, n: int, dim: int | None, who: str) -> np.ndarray:
    from fiqa_bench.errors import AdapterError

    arr = _numeric(values, who, "embeddings")
    if arr.ndim != 2 or arr.shape[0] != n or (dim is not None and arr.shape[1] != dim):
        raise AdapterError(f"{who} returned shape {arr.shape}, expected ({n}, {dim if dim else 'D'})")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise AdapterError(f"{who} returned non-finite embeddings for {int(bad.sum())} of {n} images")
    return arr


Images = Sequence[Any] | np.ndarray
