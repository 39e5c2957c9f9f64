"""Cards: frozen metadata that says what an adapter wants and where it comes from.

A card is readable without importing heavy packages or loading weights, so ``fiqa-bench list`` is cheap, and
its hash goes into every results file so that numbers can be traced to the exact adapter that made them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

INPUT_KINDS = ("aligned", "face")
#: Card fields that declare capabilities (see :mod:`fiqa_bench.api.capabilities`); not part of the card hash.
CAPABILITY_FIELDS = ("capabilities", "needs_capabilities")
COLOURS = ("RGB", "BGR", "GRAY")


@dataclass(frozen=True)
class InputSpec:
    """What ``score``/``embed`` receive.

    * ``aligned``: a uint8 array (N, size, size, 3) of faces warped with the ArcFace 5-point similarity
      transform (template scaled to ``size``), in colour order ``colour``.
    * ``face``: a list of :class:`fiqa_bench.faces.Face` (decoded BGR image + 5 landmarks + box) for adapters
      that crop in their own way (e.g. dlib's chip extraction, a loose-crop method).
    """

    kind: str = "aligned"
    size: int = 112
    colour: str = "RGB"

    def __post_init__(self) -> None:
        if self.kind not in INPUT_KINDS:
            raise ValueError(f"InputSpec.kind must be one of {INPUT_KINDS}, got {self.kind!r}")
        if self.colour not in COLOURS:
            raise ValueError(f"InputSpec.colour must be one of {COLOURS}, got {self.colour!r}")
        if self.kind == "aligned" and not (16 <= int(self.size) <= 1024):
            raise ValueError(f"InputSpec.size out of range: {self.size}")

    def describe(self) -> str:
        if self.kind == "aligned":
            return f"aligned {self.size}x{self.size} {self.colour} (ArcFace 5-point)"
        return "face (decoded image + 5 landmarks + box)"


@dataclass(frozen=True)
class Weights:
    """A weights file: where to get it and how to check it."""

    filename: str
    url: str | None = None
    sha256: str | None = None
    bundled: bool = False  # shipped inside the package
    note: str = ""

    def describe(self) -> str:
        if self.bundled:
            return f"bundled {self.filename}"
        if self.url:
            return f"{self.url} (sha256 {self.sha256[:12] if self.sha256 else '?'}...)"
        return self.note or self.filename


def _hash(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class _Card:
    name: str
    version: str
    summary: str
    licence: str = "unknown"
    paper: str = ""

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def card_hash(self) -> str:
        """Stable short hash of everything on the card (goes into results files and cache keys).

        Capability declarations (:data:`CAPABILITY_FIELDS`) are left out: they say what else an adapter offers or
        needs and change no number, so declaring them does not invalidate existing caches and results."""
        return _hash({k: v for k, v in self.as_dict().items() if k not in CAPABILITY_FIELDS})

    def lines(self) -> list[tuple[str, str]]:
        """(label, value) rows for ``fiqa-bench list``."""
        rows = [("version", self.version), ("what", self.summary), ("licence", self.licence)]
        if self.paper:
            rows.append(("paper", self.paper))
        return rows


@dataclass(frozen=True)
class MethodCard(_Card):
    """A face image quality method."""

    input: InputSpec = field(default_factory=InputSpec)
    higher_is_better: bool = True
    score_range: str = "unbounded"
    weights: Weights | None = None
    needs_backbone: bool = False  # constructed with the run's FR backbone (e.g. SVM on FR features)
    # backbone capabilities the method uses (fiqa_bench.api.capabilities.CAPABILITIES), e.g. ("stochastic",)
    needs_capabilities: tuple = ()

    def lines(self) -> list[tuple[str, str]]:
        rows = super().lines()
        rows.insert(2, ("input", self.input.describe()))
        rows.append(("scores", f"{self.score_range}, {'higher' if self.higher_is_better else 'lower'} is better"))
        rows.append(("weights", self.weights.describe() if self.weights else "none (no learned weights)"))
        if self.needs_capabilities:
            rows.append(("needs", "the run's backbone with " + ", ".join(self.needs_capabilities)))
        return rows


@dataclass(frozen=True)
class BackboneCard(_Card):
    """A face recognition backbone."""

    input: InputSpec = field(default_factory=InputSpec)
    normalisation: str = "(x - 127.5) / 127.5"
    embedding_dim: int = 512
    weights: Weights | None = None
    # what it offers beyond embed() (fiqa_bench.api.capabilities.CAPABILITIES), e.g. ("raw_features", "stochastic")
    capabilities: tuple = ()

    def lines(self) -> list[tuple[str, str]]:
        rows = super().lines()
        rows.insert(2, ("input", f"{self.input.describe()}, {self.normalisation}"))
        rows.insert(3, ("embedding", f"{self.embedding_dim}-d, compared by cosine"))
        rows.append(("weights", self.weights.describe() if self.weights else "none"))
        if self.capabilities:
            rows.append(("offers", ", ".join(self.capabilities)))
        return rows


@dataclass(frozen=True)
class ProtocolCard(_Card):
    """An evaluation protocol (how comparisons are made and which metric is reported)."""

    metric: str = ""  # the protocol kind (required), a label: e.g. template 1:1 or k-fold pair verification
    data: str = ""  # how to obtain the data
    metrics: tuple = ()  # the declared metrics it reports (registered keys), in display order

    def lines(self) -> list[tuple[str, str]]:
        rows = super().lines()
        rows.insert(2, ("metric", self.metric))
        if self.metrics:
            rows.insert(3, ("metrics", ", ".join(self.metrics)))
        if self.data:
            rows.append(("data", self.data))
        return rows
